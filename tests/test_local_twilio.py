"""The local Twilio (the tests' fake, `callmask local-twilio`): its specs, its reset between tests, its held
requests, what it refuses; and the guard that fails a test waiting in real time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from callmask.providers.studio_flow import StudioFlowProvider
from callmask.providers.twilio_provider import ProviderError
from callmask.twilio.twilio_api import TIMEOUT_VARIABLE
from conftest import configured
from openapi_core import OpenAPI
from pulumi.dynamic import Config, ConfigureRequest
from test_providers import flow_props
from callmask.local import twilio as local_twilio
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, LATE, SPEC_DIR, TIMEOUT_BEFORE

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("name", ["twilio_studio_v2.json", "twilio_api_v2010.json", "twilio_voice_v1.json",
                                  "twilio_serverless_v1.json", "twilio_sync_v1.json"])
def test_the_pinned_specs_are_valid_openapi(name):
    """The fake skips this check when it loads the specs (seconds per process); it is done here once."""
    OpenAPI.from_dict(json.loads((SPEC_DIR / name).read_text()))  # raises when the document is not valid


def test_reset_gives_a_new_account_on_the_same_server(twilio):
    configured(StudioFlowProvider).create(flow_props())
    twilio.own_number("+14155550142")
    twilio.fail("GET", "/v2/Flows", status=500)
    base_url = twilio.base_url
    twilio.reset()
    assert (twilio.flows, twilio.numbers, twilio.calls, twilio.faults, twilio.available) == ({}, {}, [], [], {})
    assert twilio.base_url == base_url
    assert twilio.own_number("+14155550142")["sid"] == "PN" + "0" * 31 + "1", "SIDs count from 1 again"


def test_a_held_request_ends_when_the_client_gives_up(twilio, monkeypatch):
    monkeypatch.setenv(TIMEOUT_VARIABLE, "0.05")
    twilio.fail("POST", "/v2/Flows$", kind=TIMEOUT_BEFORE, held_at_most=60)
    with pytest.raises(ProviderError):
        configured(StudioFlowProvider).create(flow_props())
    twilio.settle(seconds=20)  # held at most 60 s: drained only because the client's timeout closed it
    assert twilio.in_flight == 0


def test_a_late_request_lands_before_the_clients_next_one_is_answered(twilio, monkeypatch):
    """Twilio acting on a request after its client gave up: the fake acts on it before it answers that
    client's next request, however late the thread holding it wakes, so every run of a case sees one order.
    Here that thread wakes only once the next request has arrived."""
    gives_up, take_fault = local_twilio._wait_for_the_client_to_give_up, twilio._take_fault
    next_request = threading.Event()

    def noting_the_next(request):
        if request.method == "GET":
            next_request.set()
        return take_fault(request)

    def wakes_late(environ, at_most: float) -> None:
        gives_up(environ, at_most)
        next_request.wait(timeout=5)

    monkeypatch.setattr(twilio, "_take_fault", noting_the_next)
    monkeypatch.setattr(local_twilio, "_wait_for_the_client_to_give_up", wakes_late)
    twilio.fail("POST", "/v2/Flows$", kind=LATE, held_at_most=60)
    definition = {"description": "late", "initial_state": "Trigger", "flags": {"allow_concurrent_calls": True},
                  "states": [{"name": "Trigger", "type": "trigger", "properties": {"offset": {"x": 0, "y": 0}},
                              "transitions": []}]}
    with pytest.raises(requests.Timeout):
        requests.post(f"{twilio.base_url}/v2/Flows", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=0.05,
                      data={"FriendlyName": "late", "Status": "draft", "Definition": json.dumps(definition)})
    listed = requests.get(f"{twilio.base_url}/v2/Flows", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).json()
    assert [flow["friendly_name"] for flow in listed["flows"]] == ["late"]


GUARDED_TESTS = '''
import socket, time
import requests

def test_a_long_sleep():
    time.sleep(0.15)

def test_a_short_sleep():
    time.sleep(0.01)

def test_a_request_that_times_out_slowly():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts the connection, never answers
    try:
        requests.get(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=0.6)
    except requests.Timeout:
        pass
'''


def test_the_guard_fails_a_test_that_waits_in_real_time(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    pytester.makepyfile(test_guarded=GUARDED_TESTS)
    result = pytester.runpytest_subprocess("-p", "real_time_guard", "-p", "no:cacheprovider", "-n", "0")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(["*the test waited in real time: time.sleep(0.15)*",
                                 "*the test waited in real time: GET http://127.0.0.1:*/ timed out after 0.6 s*"])


def test_a_request_outside_the_spec_is_refused_naming_the_parameter_every_time(twilio):
    for _ in range(2):  # the second is the same bytes: its verdict is remembered, and still given
        answer = requests.post(f"{twilio.base_url}/v2/Flows", data={"FriendlyName": "no status, no definition"},
                               auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
        assert answer.status_code == 400 and answer.json()["code"] == 70002
        assert ("parameter Status: required, not sent; parameter Definition: required, not sent"
                in answer.json()["message"])
    assert twilio.flows == {} and len(twilio.spec_violations) == 2
    twilio.spec_violations.clear()  # seen: the fixture's own check would fail the test otherwise


def test_a_route_it_does_not_serve_is_a_404_that_says_so(twilio):
    answer = requests.get(f"{twilio.base_url}/v1/Sims", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert answer.status_code == 404
    assert answer.json()["message"].startswith("The local Twilio does not serve GET /v1/Sims: it serves Studio Flows")
    assert twilio.unserved == ["GET /v1/Sims"]
    twilio.unserved.clear()


def test_callmask_local_twilio_serves_a_stack_and_says_what_it_refuses(monkeypatch):
    command = [str(Path(sys.executable).parent / "callmask"), "local-twilio", "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = [server.stdout.readline() for _ in range(7)]
        exports = dict(line.strip().removeprefix("export ").split("=", 1) for line in printed if "export " in line)
        assert set(exports) == {"CALLMASK_TWILIO_BASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"}, printed
        for variable, value in exports.items():
            monkeypatch.setenv(variable, value)

        provider = StudioFlowProvider()
        provider.configure(ConfigureRequest(Config({}, "callmask")))  # credentials from the environment, as printed
        created = provider.create(flow_props())
        assert created.outs["webhook_url"].endswith(f"/Flows/{created.id}")

        base_url = exports["CALLMASK_TWILIO_BASE_URL"]
        auth = (exports["TWILIO_ACCOUNT_SID"], exports["TWILIO_AUTH_TOKEN"])
        refused = requests.post(f"{base_url}/v2/Flows", data={"FriendlyName": "x", "Status": "live", "Definition": "{}"},
                                auth=auth, timeout=5)
        assert refused.status_code == 400 and "parameter Status: 'live' is not one of ['draft', 'published']" in refused.text
        assert requests.get(f"{base_url}/v1/Sims", auth=auth, timeout=5).status_code == 404
    finally:
        server.send_signal(signal.SIGINT)
        _, log = server.communicate(timeout=20)
    assert server.returncode == 0
    assert "POST /v2/Flows -> 201" in log and "POST /v2/Flows -> 400: Invalid request POST /v2/Flows: parameter Status" in log
    assert "GET /v1/Sims -> 404: The local Twilio does not serve GET /v1/Sims" in log
    assert "Traceback" not in log


def test_sync_data_is_checked_as_the_json_object_twilio_takes(twilio):
    """Sync's `Data` is typed as an object in a form: Twilio takes it as JSON text, and so does the fake."""
    service = requests.post(f"{twilio.base_url}/v1/Services", data={"FriendlyName": "g"}, auth=(ACCOUNT_SID, AUTH_TOKEN),
                            headers={"X-Twilio-Host": "sync.twilio.com"}, timeout=5).json()
    assert service["sid"].startswith("IS") and twilio.services == {}, "a Sync Service, not a Serverless one"
    items = f"{twilio.base_url}/v1/Services/{service['sid']}/Maps"
    map_sid = requests.post(items, data={"UniqueName": "m"}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).json()["sid"]
    made = requests.post(f"{items}/{map_sid}/Items", data={"Key": "k", "Data": '{"a": 1}'}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert made.status_code == 201 and made.json()["data"] == {"a": 1}
    refused = requests.post(f"{items}/{map_sid}/Items", data={"Key": "j", "Data": "[1, 2]"}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert refused.status_code == 400 and "Data" in refused.json()["message"]
    twilio.spec_violations.clear()  # seen: the fixture's own check would fail the test otherwise


def test_a_request_the_spec_allows_but_that_cannot_be_read_is_a_400_not_a_crash(twilio):
    answer = requests.post(f"{twilio.base_url}/v2/Flows", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5,
                           data={"FriendlyName": "x", "Status": "draft", "Definition": "{not json"})
    assert answer.status_code == 400 and answer.json()["message"].startswith(
        "The local Twilio cannot read POST /v2/Flows: JSONDecodeError")
    assert twilio.flows == {}


@pytest.mark.parametrize("username, password", [
    (ACCOUNT_SID, "not-the-token"), ("AC" + "b" * 32, AUTH_TOKEN), ("SK" + "e" * 32, "a-secret-never-issued"),
    (None, None)])
def test_credentials_other_than_the_accounts_are_twilios_401(twilio, username, password):
    """The account SID with its auth token, or an API key the account holds; anything else is refused as
    Twilio refuses it, before any route or spec check."""
    auth = (username, password) if username else None
    answer = requests.get(f"{twilio.base_url}/v2/Flows", auth=auth, timeout=10)
    assert answer.status_code == 401 and answer.json()["code"] == 20003
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(f"{twilio.base_url}/v2/Flows", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10).status_code == 200
    twilio.api_keys["SK" + "e" * 32] = "the-keys-secret"
    assert requests.get(f"{twilio.base_url}/v2/Flows", auth=("SK" + "e" * 32, "the-keys-secret"), timeout=10).ok
    assert twilio.spec_violations == []


def test_local_twilio_holds_a_console_built_line_to_adopt(tmp_path):
    import json as json_module

    from console_flows import console_line

    definition = tmp_path / "console.json"
    definition.write_text(json_module.dumps(console_line()))
    command = [str(Path(sys.executable).parent / "callmask"), "local-twilio", "--port", "0", "--console-flow",
               str(definition)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = [server.stdout.readline() for _ in range(8)]
        said = next(line for line in printed if line.startswith("A line built in the Console"))
        exports = dict(line.strip().removeprefix("export ").split("=", 1) for line in printed if "export " in line)
        flow_sid = said.split("flow ")[1].split(",")[0]
        auth = (exports["TWILIO_ACCOUNT_SID"], exports["TWILIO_AUTH_TOKEN"])
        base_url = exports["CALLMASK_TWILIO_BASE_URL"]
        flow = requests.get(f"{base_url}/v2/Flows/{flow_sid}", auth=auth, timeout=5).json()
        numbers = requests.get(f"{base_url}/2010-04-01/Accounts/{auth[0]}/IncomingPhoneNumbers.json", auth=auth,
                               timeout=5).json()["incoming_phone_numbers"]
        assert flow["definition"] == console_line() and [n["voice_url"] for n in numbers] == [flow["webhook_url"]]
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=20)
    assert server.returncode == 0
