"""The prod stack as committed (`callmask:pinCheck function`, labeled PINs) through the real `pulumi` CLI
against the local Twilio: up, a second up that writes nothing, a PIN revoked by name (new code, build and
deployment, no flow revision), Console drift found by refresh, the switch to `studio` and back, destroy;
and no PIN in any flow revision, in the state, the export or anything the CLI printed."""

from __future__ import annotations

import json
import re

import pytest
from callmask.function import pin_function
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN
from conftest import TEST_PINS
from test_engine_lifecycle import PROD_NUMBER, TESTER, assert_no_secret, callmask, checked_account, project

CALLER, DESTINATION = "+14155550123", "14155550777"
ALICE, BOB = TEST_PINS
CAROL = "61829374"
FUNCTION_TYPES = ("ServerlessService", "ServerlessEnvironment", "ServerlessFunction", "FunctionVersion",
                  "ServerlessBuild", "EnvironmentVariables", "ServerlessDeployment", "PinSalt")


@pytest.fixture
def fake(fresh_twilio):
    yield from checked_account(fresh_twilio)


def call(fake, pin: str) -> list[str]:
    execution = fake.place_call(PROD_NUMBER, CALLER, [pin + "#", DESTINATION + "#"])
    return [step["transitioned_from"] for step in execution["steps"]]


def revisions_text(fake) -> str:
    return json.dumps([r["definition"] for flow in fake.flows.values() for r in flow["revisions"]])


def writes_since(fake, calls: int) -> list[str]:
    return [re.sub(r"[A-Z]{2}[0-9a-f]{32}", "…", c.path) for c in fake.calls[calls:] if c.method in ("POST", "DELETE")]


def test_prod_checks_pins_in_its_function_through_the_real_cli(tmp_path, fake):
    owned = fake.own_number(PROD_NUMBER, voice_url="https://voice.example.com/previous")
    line = project(tmp_path, fake, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    line.run("stack", "init", "prod")
    line.run("config", "set", "--path", "--secret", "callmask:pins.alice", ALICE)
    line.run("config", "set", "--path", "--secret", "callmask:pins.bob", BOB)
    line.run("config", "set", "--path", "--secret", "callmask:testUsers[0]", TESTER)

    # preview: the Function's resources, its readable settings and labels, the PINs and salt [secret]
    preview = line.run("preview", "--diff")
    for type_name in FUNCTION_TYPES:
        assert re.search(rf"\+ .*{type_name}", preview.stdout), f"{type_name} is not shown as created"
    assert "add-twiml-redirect" in preview.stdout and "gather_pin" not in preview.stdout
    assert re.search(r'labels\s*: \[\s*\[0\]: "alice"\s*\[1\]: "bob"', preview.stdout), preview.stdout
    assert re.search(r"pins\s*: \[secret\]", preview.stdout) and re.search(r"salt\s*: \[(secret|unknown)\]", preview.stdout)
    assert fake.writes() == []

    line.run("up", "--yes")
    (flow_sid, flow), (service,) = next(iter(fake.flows.items())), list(fake.services.values())
    (environment,) = service["environments"].values()
    outputs = json.loads(line.run("stack", "output", "--json").stdout)
    assert outputs["pinCheckUrl"] == f"https://{environment['domain_name']}{pin_function.FUNCTION_PATH}"
    assert fake.numbers[owned["sid"]]["voice_url"] == fake._flow(flow_sid)["webhook_url"]
    assert call(fake, ALICE)[-2:] == ["connect_call", "say_goodbye"]
    assert call(fake, "13572468")[-1] == "say_invalid_pin"
    assert fake.executions[max(fake.executions)]["context"]["widgets"]["check_pin"] == {"verdict": "bad"}

    # the review tools on a labeled, function-mode stack: whose PIN opened each call; the deployed flow
    # played with the stack's own PINs (the `pulumi` CLI decrypts them) against the Function's code
    report = callmask(line, "calls", "--stack", "prod")
    assert report.returncode == 0, report.stderr
    rows = report.stdout.splitlines()
    assert "refused PIN" in rows[1] and "PIN accepted (alice)" in rows[2] and "connected" in rows[2]
    played = callmask(line, "simulate", "--stack", "prod", "--deployed", "published", "--press", BOB + "#",
                      "--press", DESTINATION + "#")
    assert played.returncode == 0 and "returned label=bob, verdict=ok" in played.stdout, played.stderr
    assert_no_secret(report.stdout + played.stdout + report.stderr + played.stderr, "callmask's output")

    writes = len(fake.writes())
    again = line.run("up", "--yes")
    assert re.search(r"14 unchanged", again.stdout), again.stdout
    assert len(fake.writes()) == writes, "a second up writes nothing"

    # bob's PIN revoked and carol's added, by name: new code, build and deployment; the flow untouched
    line.run("config", "rm", "--path", "callmask:pins.bob")
    line.run("config", "set", "--path", "--secret", "callmask:pins.carol", CAROL)
    rotation = line.run("preview", "--diff")
    assert "StudioFlow" not in "".join(l for l in rotation.stdout.splitlines() if l.strip().startswith(("~", "+-")))
    assert re.search(r'- \[1\]: "bob"', rotation.stdout) or re.search(r'~ \[1\]: "bob" => "carol"', rotation.stdout)
    calls = len(fake.calls)
    line.run("up", "--yes")
    assert writes_since(fake, calls) == ["/v1/Services/…/Functions/…/Versions", "/v1/Services/…/Builds",
                                         "/v1/Services/…/Environments/…/Deployments", "/v1/Services/…/Builds/…"]
    assert len(flow["revisions"]) == 1, "a PIN change makes no flow revision"
    assert call(fake, BOB)[-1] == "say_invalid_pin" and call(fake, CAROL)[-1] == "say_goodbye"

    # someone deploys other code in the Console: refresh says so, up deploys the stack's build again
    ours = environment["build_sid"]
    theirs = fake.deploy_in_console(next(iter(fake.services)), "exports.handler = (c, e, cb) => cb(null, 'hi');")
    refreshed = line.run("refresh", "--yes", "--diff")
    assert f"the environment runs build {theirs}, deployed outside callmask (callmask deployed {ours})" in refreshed.stdout
    line.run("up", "--yes")
    assert environment["build_sid"] == ours and call(fake, CAROL)[-1] == "say_goodbye"
    assert not any(pin in revisions_text(fake) for pin in (ALICE, BOB, CAROL)), "no PIN in any flow revision"

    # to studio: refused while publish is false (callers' revision still uses the Function), nothing deleted
    line.run("config", "set", "callmask:pinCheck", "studio")
    refused = line.run("up", "--yes", check=False)
    assert refused.exit_code != 0 and "would delete the PIN-check Function that the published revision" in refused.output
    assert fake.services and call(fake, ALICE)[-1] == "say_goodbye"
    line.run("config", "set", "callmask:publish", "true")
    calls = len(fake.calls)
    line.run("up", "--yes")
    step = writes_since(fake, calls)
    assert step[-1] == "/v1/Services/…" and "/v2/Flows/…" in step[:-1], "the flow leaves the Function before it goes"
    assert [path for path in step if path.startswith("/v1/Services")] == ["/v1/Services/…"], \
        "the Service's children go with it (deleted_with): no delete of their own"
    assert fake.services == {} and "gather_pin" in call(fake, ALICE)

    # and back: the Function is deployed before the flow points at it
    line.run("config", "set", "callmask:pinCheck", "function")
    calls = len(fake.calls)
    line.run("up", "--yes")
    step = writes_since(fake, calls)
    assert step.index("/v1/Services/…/Environments/…/Deployments") < step.index("/v2/Flows/…")
    assert call(fake, CAROL)[-1] == "say_goodbye" and call(fake, BOB)[-1] == "say_invalid_pin"

    salt = next(v["value"] for v in next(iter(fake.services.values()))["environments"][
        next(iter(next(iter(fake.services.values()))["environments"]))]["variables"].values())
    line.run("destroy", "--yes")
    assert fake.services == {} and fake.flows == {}
    number = fake.numbers[owned["sid"]]
    assert number["voice_url"] == "https://voice.example.com/previous", "the number's voice settings are back"
    exported = line.run("stack", "export").stdout
    uploads = "".join(upload["content"] for upload in fake.uploads)
    for text, where in ((line.state_text(), "the state"), (exported, "the export"), (line.printed(), "CLI output"),
                        (uploads, "the uploaded code")):
        assert_no_secret(text, where)
        assert CAROL not in text, f"a PIN appears in {where}"
        assert where == "the uploaded code" or salt not in text, f"the salt appears in {where}"
