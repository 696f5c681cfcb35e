"""The Twilio Functions' own tests (`functions/test/`, Node's test runner), run from the suite so the
README's one test command runs them too; and the Function's code as callmask deploys it, run under Node
against digests Python made."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from callmask.function import pin_function
from callmask.studio.twiml_call import play

NODE_TESTS = pin_function.FUNCTIONS_DIR / "test"


@pytest.mark.slow
def test_the_functions_pass_their_node_tests():
    node = shutil.which("node")
    assert node, "Node 20+ is needed (the machines have it): the Function's tests run under it"
    done = subprocess.run([node, "--test", str(NODE_TESTS)], cwd=pin_function.FUNCTIONS_DIR, capture_output=True,
                          text=True, timeout=300)
    summary = dict(re.findall(r"^# (tests|pass|fail|skipped|todo|cancelled) (\d+)$", done.stdout, re.MULTILINE))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert int(summary["tests"]) >= 10 and summary["fail"] == "0" and summary["skipped"] == "0", summary


FLOW_SID = "FW" + "b" * 32
ACCOUNT = "AC" + "a" * 32
WEBHOOK = f"https://webhooks.twilio.com/v1/Accounts/{ACCOUNT}/Flows/{FLOW_SID}"
URL = f"https://callmask-prod-1234.twil.io{pin_function.FUNCTION_PATH}?flowSid={FLOW_SID}"
CALL = {"AccountSid": ACCOUNT, "CallSid": "CA" + "c" * 32, "From": "+14155550123"}
VALUES = {"pinLength": 8, "gatherTimeout": 20, "voice": "Polly.Matthew", "language": "en-US", "greeting": "Your PIN?"}
PINS = {"alice": "27184926", "bob": "73920561"}


def keyed(*presses: str):
    pending = list(presses)
    return lambda: pending.pop(0) if pending else None


def test_python_digests_open_the_node_function_at_the_real_cost(tmp_path):
    """Digests made by hashlib.scrypt with functions/pin-kdf.json are what Node's crypto.scrypt checks."""
    salt = pin_function.new_salt()
    code = pin_function.deployed_code(pin_function.source(), VALUES, PINS, salt)
    assert not any(pin in code for pin in PINS.values()) and f'"N": {pin_function.kdf()["N"]}' in code
    with pin_function.LocalFunction(code, tmp_path) as function:
        service = function.service({pin_function.SALT_VARIABLE: salt})
        right = play(service, URL, CALL, WEBHOOK, keyed(PINS["bob"] + "#"))
        assert (right.returned, right.said, right.digits) == ({"verdict": "ok", "label": "bob", "attempt": "1"},
                                                              ["Your PIN?"], PINS["bob"])
        assert play(service, URL, CALL, WEBHOOK, keyed("27184927#")).returned == {"verdict": "bad", "attempt": "1"}
        assert play(service, URL, CALL, WEBHOOK, keyed()).returned == {"verdict": "noinput"}
        other_salt = function.service({pin_function.SALT_VARIABLE: pin_function.new_salt()})
        assert play(other_salt, URL, CALL, WEBHOOK, keyed(PINS["bob"] + "#")).returned["verdict"] == "bad"


@pytest.mark.parametrize("code, ended", [
    ("exports.handler = (", "answered HTTP 500"),  # does not load
    ("exports.handler = (context, event, callback) => callback(new Error('down'));", "answered HTTP 500"),
    ("exports.handler = (context, event, callback) => callback(null, {ok: true});", "not TwiML"),
])
def test_a_function_that_fails_ends_the_call_before_any_dial(tmp_path, code, ended):
    from callmask.studio.call_simulation import CallSimulator
    from flow_fixtures import rendered

    with pin_function.LocalFunction(code, tmp_path) as function:
        simulator = CallSimulator(rendered("prod"), pins=["27184926"], twiml_service=function.service({}))
        result = simulator.run(["27184926#", "14155550123#"])
    assert result.outcome == "ended_outside_flow" and result.dialed is None
    assert [step.widget for step in result.steps] == ["Trigger", "check_pin"] and ended in result.steps[-1].note
