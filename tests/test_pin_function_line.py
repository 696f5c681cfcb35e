"""`callmask:pinCheck function`: the Serverless providers over real HTTP against the local Twilio (its
Serverless API checked against twilio_serverless_v1.json, the upload by its own strict check), calls
played through the deployed Function's code under Node, drift, and the switch between the two modes."""

from __future__ import annotations

import json

import pytest
import requests
from callmask.function import pin_function
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN
from callmask.providers.serverless import BUILD_TIMEOUT_VARIABLE, BuildFailed
from callmask.providers.twilio_provider import ProviderError
from conftest import TEST_PINS
from flow_fixtures import FAST_KDF
from line_driver import Line

NUMBER, CALLER = "+14155550142", "+14155550111"


@pytest.fixture
def line(twilio, monkeypatch) -> Line:
    monkeypatch.setattr(pin_function, "kdf", lambda: FAST_KDF)  # the real cost is measured in tests/test_functions.py
    twilio.own_number(NUMBER)
    line = Line("prod", {"mode": "number", "number": NUMBER}, False, dialing_permissions="off")
    line.pin_check = "function"
    return line


def outcome(twilio, presses: list[str]) -> list[tuple[str, str]]:
    execution = twilio.place_call(NUMBER, CALLER, presses)
    return [(step["transitioned_from"], step["name"]) for step in execution["steps"]]


CONNECTED = [("Trigger", "incomingCall"), ("check_pin", "return"), ("pin_verdict", "match"),
             ("gather_number", "keypress"), ("check_number", "match"), ("connect_call", "callCompleted"),
             ("say_goodbye", "audioComplete")]
REFUSED = [("Trigger", "incomingCall"), ("check_pin", "return"), ("pin_verdict", "noMatch"),
           ("say_invalid_pin", "audioComplete")]


def every_revision(twilio) -> str:
    return json.dumps([revision["definition"] for flow in twilio.flows.values() for revision in flow["revisions"]])


def test_the_line_deploys_its_function_and_only_its_pins_connect(twilio, line):
    line.up()
    (service,) = twilio.services.values()
    assert (service["unique_name"], service["include_credentials"], service["ui_editable"]) == ("callmask-prod",
                                                                                               False, False)
    (upload,) = twilio.uploads
    assert (upload["path"], upload["visibility"], upload["content_type"]) == ("/pin-check", "protected",
                                                                             "application/javascript")
    assert pin_function.LINE_MARKER not in upload["content"] and '"label": "alice"' in upload["content"]
    (build,) = service["builds"].values()
    assert build["runtime"] == "node22" and build["dependencies"] == pin_function.build_dependencies()
    (environment,) = service["environments"].values()
    assert environment["build_sid"] == build["sid"]
    assert [v["key"] for v in environment["variables"].values()] == [pin_function.SALT_VARIABLE,
                                                                       *pin_function.GUARD_VARIABLES]
    (flow,) = twilio.flows.values()
    redirect = next(s for s in flow["definition"]["states"] if s["name"] == "check_pin")
    assert redirect["properties"]["url"] == f"https://{environment['domain_name']}/pin-check?flowSid={{{{flow.flow_sid}}}}"
    assert int(redirect["properties"]["timeout"]) < 600

    assert outcome(twilio, [TEST_PINS[1] + "#", "14155550123#"]) == CONNECTED
    assert outcome(twilio, ["13572468#"] * 3) == REFUSED
    context = twilio.executions[max(twilio.executions)]["context"]
    assert context["widgets"]["check_pin"] == {"verdict": "bad", "attempt": "3"}, "Studio gets the verdict, never the digits"
    accepted = next(e for e in twilio.executions.values() if e["steps"][-1]["transitioned_from"] == "say_goodbye")
    assert accepted["context"]["widgets"]["check_pin"] == {"verdict": "ok", "label": "bob", "attempt": "1"}
    stored = every_revision(twilio) + json.dumps([e["context"] for e in twilio.executions.values()])
    assert not any(pin in stored + upload["content"] for pin in TEST_PINS)

    writes = len(twilio.writes())
    line.up()
    assert len(twilio.writes()) == writes, "a second up writes nothing"


def test_a_pin_rotation_deploys_new_code_and_leaves_the_flow_alone(twilio, line):
    line.up()
    (flow_sid, flow), (service_sid, service) = next(iter(twilio.flows.items())), next(iter(twilio.services.items()))
    old_build = next(iter(service["builds"]))
    line.pins = {"alice": TEST_PINS[0]}  # bob's PIN revoked by name
    calls = len(twilio.calls)
    line.up()
    written = [(c.method, c.path.replace(service_sid, "ZS…")) for c in twilio.calls[calls:] if c.method != "GET"]
    environment_sid = next(iter(service["environments"]))
    assert [(method, path.split("/")[-1]) for method, path in written] == [
        ("POST", "Versions"), ("POST", "Builds"), ("POST", "Deployments"), ("DELETE", old_build)]
    assert len(flow["revisions"]) == 1, "no flow revision"
    assert service["environments"][environment_sid]["build_sid"] != old_build
    assert outcome(twilio, [TEST_PINS[1] + "#"] * 3) == REFUSED, "the revoked PIN is refused"
    assert outcome(twilio, [TEST_PINS[0] + "#", "14155550123#"]) == CONNECTED
    assert flow_sid in twilio.flows


def test_switching_modes_each_way_keeps_a_pin_gate_at_every_step(twilio, line):
    line.pin_check = "studio"
    line.up()
    (flow,) = twilio.flows.values()
    line.pin_check = "function"
    line.up()
    assert len(flow["revisions"]) == 2 and twilio.services, "the Function is live before the flow points at it"
    order = [c.path for c in twilio.calls if c.method == "POST" and ("Deployments" in c.path or "/v2/Flows/FW" in c.path)]
    assert "Deployments" in order[0] and "/v2/Flows/FW" in order[-1]
    assert outcome(twilio, [TEST_PINS[0] + "#", "14155550123#"]) == CONNECTED
    assert outcome(twilio, ["13572468#"] * 3) == REFUSED

    calls = len(twilio.calls)
    line.pin_check = "studio"
    line.up()
    step = [(c.method, c.path) for c in twilio.calls[calls:] if c.method in ("POST", "DELETE")]
    assert [path for _, path in step][-1].startswith("/v1/Services/"), "the Service goes only after the flow left it"
    assert any(path.startswith("/v2/Flows/FW") for _, path in step[:-1])
    assert twilio.services == {} and len(flow["revisions"]) == 3
    assert outcome(twilio, [TEST_PINS[0] + "#", "14155550123#"])[1] == ("gather_pin", "keypress")
    line.destroy()
    assert twilio.flows == {} and twilio.services == {}


def test_a_failed_build_deploys_nothing_and_says_so_in_one_line(twilio, line):
    twilio.build_outcome = "failed"
    with pytest.raises(BuildFailed) as failed:
        line.up()
    message = str(failed.value)
    assert "failed on Twilio" in message and "Nothing was deployed" in message and "\n" not in message
    assert twilio.flows == {}, "the flow is not created before its Function runs"
    (service,) = twilio.services.values()
    assert all(e["build_sid"] is None for e in service["environments"].values())
    twilio.build_outcome = "completed"
    line.up()
    assert outcome(twilio, [TEST_PINS[0] + "#", "14155550123#"]) == CONNECTED


def test_a_build_that_never_completes_times_out_in_one_line(twilio, line, monkeypatch):
    monkeypatch.setenv(BUILD_TIMEOUT_VARIABLE, "0.05")
    monkeypatch.setenv("CALLMASK_TWILIO_BACKOFF", "0.01")
    twilio.build_polls = 10_000
    with pytest.raises(BuildFailed, match=r"is still building after 0.05 s \(CALLMASK_BUILD_TIMEOUT\). Nothing was deployed"):
        line.up()
    (service,) = twilio.services.values()
    (build,) = service["builds"].values()
    build["polls_left"] = 0  # Twilio finishes it meanwhile
    line.up()  # the re-run adopts the build: one build, never two
    assert list(service["builds"]) == [build["sid"]] and build["status"] == "completed"


def test_refresh_finds_console_changes_and_up_puts_them_back(twilio, line):
    line.up()
    service_sid, service = next(iter(twilio.services.items()))
    deployed = next(iter(service["environments"].values()))["build_sid"]
    other = twilio.deploy_in_console(service_sid, "exports.handler = (c, e, cb) => cb(null, 'hello');")
    twilio.set_variable_in_console(service_sid, pin_function.SALT_VARIABLE, "c2FsdA==")
    service["include_credentials"] = True
    line.refresh()
    assert line.state["deployment"][1]["drift"] == (
        f"the environment runs build {other}, deployed outside callmask (callmask deployed {deployed})")
    assert line.state["variables"][1]["drift"] == "changed outside callmask: PIN_SALT"
    assert line.state["service"][1]["drift"] == "include_credentials turned on outside callmask"
    line.up()
    assert next(iter(service["environments"].values()))["build_sid"] == deployed
    assert service["include_credentials"] is False
    assert outcome(twilio, [TEST_PINS[0] + "#", "14155550123#"]) == CONNECTED, "the salt is put back too"
    line.refresh()
    assert {line.state[key][1]["drift"] for key in ("deployment", "variables", "service")} == {""}


def test_a_function_that_fails_fails_closed(twilio, line):
    line.up()
    service_sid = next(iter(twilio.services))
    twilio.deploy_in_console(service_sid, "exports.handler = () => { throw new Error('down'); };")
    steps = outcome(twilio, [TEST_PINS[0] + "#", "14155550123#"])
    assert steps == [("Trigger", "incomingCall")], "the call ends in the Function: nothing after it, no dial"


def upload(twilio, **parts):
    line_service = twilio.services[next(iter(twilio.services))]
    url = (f"{twilio.base_url}/v1/Services/{line_service['sid']}/Functions/"
           f"{next(iter(line_service['functions']))}/Versions")
    return requests.post(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5, **parts)


def test_the_upload_endpoint_is_checked_strictly(twilio, line):
    line.up()
    good = {"data": {"Path": "/pin-check", "Visibility": "protected"},
            "files": {"Content": ("pin-check.js", b"exports.handler = () => {};", "application/javascript")}}
    refusals = {
        "expected multipart/form-data": {"data": {"Path": "/pin-check", "Visibility": "protected"}},
        "not public or protected (a Function cannot be private)": {**good, "data": {**good["data"], "Visibility": "private"}},
        "expected the fields Path and Visibility and one file Content": {**good, "data": {"Path": "/pin-check"}},
        "Content must be JavaScript": {**good, "files": {"Content": ("x.txt", b"x", "text/plain")}},
        "is not 1 to 255 URL path characters": {**good, "data": {**good["data"], "Path": "/" + "a" * 300}},
        "Content is not UTF-8 text": {**good, "files": {"Content": ("x.js", b"\xff\xfe", "application/javascript")}},
    }
    for reason, parts in refusals.items():
        answer = upload(twilio, **parts)
        assert answer.status_code == 400 and reason in answer.json()["message"], (reason, answer.text)
    accepted = upload(twilio, **good)
    assert accepted.status_code == 201 and accepted.json()["sid"].startswith("ZN")


def test_function_mode_errors_never_show_a_pin(twilio, line):
    twilio.fail("POST", r"/Versions$", status=400, code=20001,
                message=f"Invalid upload with {TEST_PINS[0]} inside")
    with pytest.raises(ProviderError) as failed:
        line.up()
    assert TEST_PINS[0] not in str(failed.value) and "[secret]" in str(failed.value)


def test_the_providers_check_their_inputs_before_any_request(twilio):
    from callmask.providers.serverless import BuildProvider, DeploymentProvider, VariablesProvider

    assert [f.reason for f in BuildProvider().check({}, {"runtime": "node12", "function_versions": []}).failures] == [
        "runtime must be one of node18, node20, node22", "a build needs at least one function version"]
    assert [f.property for f in DeploymentProvider().check({}, {"service_sid": "ZS1"}).failures] == [
        "environment_sid", "build_sid"]
    too_long = VariablesProvider().check({}, {"variables": {"PIN_SALT": "x" * 451}}).failures
    assert [f.reason for f in too_long] == ["PIN_SALT: a value is at most 450 bytes"]
    too_many = VariablesProvider().check({}, {"variables": {f"K{i}": "x" * 400 for i in range(6)}}).failures
    assert "Twilio's 3 KB limit (error 82006)" in too_many[0].reason
    assert twilio.calls == []
