"""The prod stack as committed (`callmask:pinCheck function`, labeled PINs) through the real `pulumi` CLI
against the local Twilio: up, the PIN guard (a caller who keys wrong PINs is locked out, stays locked with the
right PIN while another caller connects, an alert arrives, `callmask lockouts --clear` lifts it), a second up
that writes nothing, a PIN revoked by name (new code, build and deployment, no flow revision), Console drift
found by refresh, the switch to `studio` and back, destroy; and no PIN or key secret in any flow revision, in
the state, the export or anything the CLI printed."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from callmask.function import pin_function
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN
from conftest import TEST_PINS
from test_engine_lifecycle import PROD_NUMBER, TESTER, assert_no_secret, callmask, checked_account, project

CALLER, DESTINATION = "+14155550123", "14155550777"
ALICE, BOB = TEST_PINS
CAROL = "61829374"
FUNCTION_TYPES = ("ServerlessService", "ServerlessEnvironment", "ServerlessFunction", "FunctionVersion",
                  "ServerlessBuild", "EnvironmentVariables", "ServerlessDeployment", "PinSalt", "ApiKey",
                  "SyncService", "SyncMap")
ATTACKER, WRONG = "+14155550166", "13572468"


@pytest.fixture
def fake(fresh_twilio):
    yield from checked_account(fresh_twilio)


def call(fake, pin: str) -> list[str]:
    """A call keying `pin` (at every attempt the call allows, if it is wrong), then the destination."""
    execution = fake.place_call(PROD_NUMBER, CALLER, [pin + "#"] * (1 if pin in (ALICE, CAROL) else 3)
                                + [DESTINATION + "#"])
    return [step["transitioned_from"] for step in execution["steps"]]


@pytest.fixture
def alerts():
    """A receiver of the PIN guard's alerts (callmask:pinGuard.alertUrl): what it was sent, parsed."""
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", received
    server.shutdown()


def revisions_text(fake) -> str:
    return json.dumps([r["definition"] for flow in fake.flows.values() for r in flow["revisions"]])


def writes_since(fake, calls: int) -> list[str]:
    return [re.sub(r"[A-Z]{2}[0-9a-f]{32}", "…", c.path) for c in fake.calls[calls:] if c.method in ("POST", "DELETE")]


@pytest.mark.slow
def test_prod_checks_pins_in_its_function_through_the_real_cli(tmp_path, fake, kms_key, alerts):
    owned = fake.own_number(PROD_NUMBER, voice_url="https://voice.example.com/previous")
    line = project(tmp_path, fake, kms_key, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    line.init_stack("prod")
    alert_url, alerted = alerts
    line.run("config", "set-all", "--path", "--secret", f"callmask:pins.alice={ALICE}", "--secret",
             f"callmask:pins.bob={BOB}", "--secret", f"callmask:testUsers[0]={TESTER}",
             "--secret", f"callmask:pinGuard.alertUrl={alert_url}")

    # preview: the Function's resources, its readable settings and labels, the PINs and salt [secret]
    preview = line.run("preview", "--diff")
    for type_name in FUNCTION_TYPES:
        assert re.search(rf"\+ .*{type_name}", preview.stdout), f"{type_name} is not shown as created"
    assert "add-twiml-redirect" in preview.stdout and "gather_pin" not in preview.stdout
    assert re.search(r'labels\s*: \[\s*\[0\]: "alice"\s*\[1\]: "bob"', preview.stdout), preview.stdout
    assert re.search(r"pins\s*: \[secret\]", preview.stdout) and re.search(r"salt\s*: \[(secret|unknown)\]", preview.stdout)
    assert fake.writes() == []

    line.apply("up")
    (flow_sid, flow), (service,) = next(iter(fake.flows.items())), list(fake.services.values())
    (environment,) = service["environments"].values()
    outputs = json.loads(line.run("stack", "output", "--json").stdout)
    assert outputs["pinCheckUrl"] == f"https://{environment['domain_name']}{pin_function.FUNCTION_PATH}"
    assert fake.numbers[owned["sid"]]["voice_url"] == fake._flow(flow_sid)["webhook_url"]
    assert call(fake, ALICE)[-2:] == ["connect_call", "say_goodbye"]
    assert call(fake, WRONG)[-1] == "say_invalid_pin"
    assert fake.executions[max(fake.executions)]["context"]["widgets"]["check_pin"] == {"verdict": "bad", "attempt": "3"}
    guard_secret = next(iter(fake.api_keys.values()))

    # the PIN guard: wrong PINs from one caller (3 a call) lock them at the 5th; then even the right PIN is
    # refused for them while another caller connects; one alert arrives; `lockouts --clear` lifts it
    keyed = ["--press", f"{WRONG}#"] * 3
    first = callmask(line, "call", "--stack", "prod", "--from", ATTACKER, *keyed)
    assert first.returncode == 0 and "That PIN is not valid" in first.stdout and "[say_invalid_pin]" in first.stdout
    second = callmask(line, "call", "--stack", "prod", "--from", ATTACKER, *keyed)
    assert "[say_locked]" in second.stdout and "not available from your phone" in second.stdout, second.stdout
    right = callmask(line, "call", "--stack", "prod", "--from", ATTACKER, "--press", f"{ALICE}#", "--press", f"{DESTINATION}#")
    assert "[say_locked]" in right.stdout and "dials" not in right.stdout, "a locked caller is locked with the right PIN"
    assert call(fake, ALICE)[-2:] == ["connect_call", "say_goodbye"], "another caller is not affected"
    assert [alert["event"] for alert in alerted] == ["caller-locked"]
    assert (alerted[0]["caller"], alerted[0]["failures"], alerted[0]["stack"]) == ("+1415*****66", 5, "prod")
    locked = callmask(line, "lockouts", "--stack", "prod")
    assert locked.returncode == 0 and re.search(r"\+1415\*{5}66\s+locked\s+5\s+1\s", locked.stdout), locked.stdout
    assert "1 caller(s) locked out" in locked.stdout
    listed = json.loads(callmask(line, "lockouts", "--stack", "prod", "--json").stdout)
    assert [(c["caller"], c["state"]) for c in listed["callers"]] == [("+1415*****66", "locked")], \
        "the other caller's right PIN cleared their count"
    assert listed["failuresThisHour"] == 8  # 3 from the wrong call above, 3 + 2 from the caller locked at the 5th
    outs = callmask(line, "calls", "--stack", "prod", "--outcome", "locked-out").stdout.splitlines()[1:-2]
    assert len(outs) == 2 and all("+1415*****66" in row and "locked out" in row for row in outs), outs
    cleared = callmask(line, "lockouts", "--stack", "prod", "--clear", ATTACKER)
    assert cleared.returncode == 0 and cleared.stdout.startswith("cleared +1415*****66"), cleared.stderr
    again = callmask(line, "call", "--stack", "prod", "--from", ATTACKER, "--press", f"{ALICE}#", "--press", f"{DESTINATION}#")
    assert "outcome: connected (dialed +14155550777)" in again.stdout, again.stdout
    # the key rotated as the security page says: a new key in the Function's variables, the old one gone
    key_urn = next(r["urn"] for r in json.loads(line.run("stack", "export").stdout)["deployment"]["resources"]
                   if r["type"].endswith("twilio:ApiKey"))
    line.apply("up", "--replace", key_urn)
    (new_key, new_secret), = fake.api_keys.items()
    assert new_secret != guard_secret and fake.deployed_function(outputs["pinCheckUrl"])[1]["GUARD_KEY_SID"] == new_key
    assert call(fake, ALICE)[-1] == "say_goodbye", "the guard reaches Sync with the new key"
    unknown = callmask(line, "lockouts", "--stack", "prod", "--clear", "4155550166")
    assert unknown.returncode == 1 and unknown.stderr.startswith("callmask: error: --clear '4155550166': expected")
    assert_no_secret(first.stdout + second.stdout + right.stdout + locked.stdout + json.dumps(alerted), "the guard")
    assert WRONG not in json.dumps(alerted) + locked.stdout, "no keyed digits in an alert or the lockouts"

    # the review tools on a labeled, function-mode stack: whose PIN opened each call; the deployed flow
    # played with the stack's own PINs (the `pulumi` CLI decrypts them) against the Function's code
    report = callmask(line, "calls", "--stack", "prod")
    assert report.returncode == 0, report.stderr
    rows = report.stdout.splitlines()
    oldest = rows[1:-2][-3:]  # the first three calls: alice connects, a wrong PIN at each attempt, alice
    assert "PIN refused (attempt 3/3)" in oldest[1] and "refused PIN" in oldest[1], report.stdout
    assert "PIN accepted (alice)" in oldest[2] and "connected" in oldest[2]
    played = callmask(line, "simulate", "--stack", "prod", "--deployed", "published", "--press", BOB + "#",
                      "--press", DESTINATION + "#")
    assert played.returncode == 0 and "returned attempt=1, label=bob, verdict=ok" in played.stdout, played.stderr
    assert_no_secret(report.stdout + played.stdout + report.stderr + played.stderr, "callmask's output")

    writes = len(fake.writes())
    again = line.apply("up")
    assert re.search(r"17 unchanged", again.stdout), again.stdout
    assert len(fake.writes()) == writes, "a second up writes nothing"

    # bob's PIN revoked and carol's added, by name: new code, build and deployment; the flow untouched
    line.run("config", "rm", "--path", "callmask:pins.bob")
    line.run("config", "set", "--path", "--secret", "callmask:pins.carol", CAROL)
    rotation = line.run("preview", "--diff")
    assert "StudioFlow" not in "".join(l for l in rotation.stdout.splitlines() if l.strip().startswith(("~", "+-")))
    assert re.search(r'- \[1\]: "bob"', rotation.stdout) or re.search(r'~ \[1\]: "bob" => "carol"', rotation.stdout)
    calls = len(fake.calls)
    line.apply("up")
    assert writes_since(fake, calls) == ["/v1/Services/…/Functions/…/Versions", "/v1/Services/…/Builds",
                                         "/v1/Services/…/Environments/…/Deployments", "/v1/Services/…/Builds/…"]
    assert len(flow["revisions"]) == 1, "a PIN change makes no flow revision"
    assert call(fake, BOB)[-1] == "say_invalid_pin" and call(fake, CAROL)[-1] == "say_goodbye"

    # someone deploys other code in the Console: refresh says so, up deploys the stack's build again
    ours = environment["build_sid"]
    theirs = fake.deploy_in_console(next(iter(fake.services)), "exports.handler = (c, e, cb) => cb(null, 'hi');")
    refreshed = line.apply("refresh", "--diff")
    assert f"the environment runs build {theirs}, deployed outside callmask (callmask deployed {ours})" in refreshed.stdout
    line.apply("up")
    assert environment["build_sid"] == ours and call(fake, CAROL)[-1] == "say_goodbye"
    assert not any(pin in revisions_text(fake) for pin in (ALICE, BOB, CAROL)), "no PIN in any flow revision"

    # to studio: refused while publish is false (callers' revision still uses the Function), nothing deleted
    line.run("config", "set", "callmask:pinCheck", "studio")
    refused = line.run("up", "--yes", check=False)
    assert refused.exit_code != 0 and "would delete the PIN-check Function that the published revision" in refused.output
    assert fake.services and call(fake, ALICE)[-1] == "say_goodbye"
    line.run("config", "set", "callmask:publish", "true")
    calls = len(fake.calls)
    line.apply("up")
    step = writes_since(fake, calls)
    assert step.index("/v2/Flows/…") < step.index("/v1/Services/…"), "the flow leaves the Function before it goes"
    assert [path for path in step if path.startswith("/v1/Services")] == ["/v1/Services/…"] * 2, \
        "the Serverless and Sync Services' children go with them (deleted_with): no delete of their own"
    assert fake.sync_services == {} and fake.key_names == {}, "the guard goes with the Function"
    assert fake.services == {} and "gather_pin" in call(fake, ALICE)

    # and back: the Function is deployed before the flow points at it
    line.run("config", "set", "callmask:pinCheck", "function")
    calls = len(fake.calls)
    line.apply("up")
    step = writes_since(fake, calls)
    assert step.index("/v1/Services/…/Environments/…/Deployments") < step.index("/v2/Flows/…")
    assert call(fake, CAROL)[-1] == "say_goodbye" and call(fake, BOB)[-1] == "say_invalid_pin"

    (environment,) = next(iter(fake.services.values()))["environments"].values()
    salt = next(v["value"] for v in environment["variables"].values() if v["key"] == pin_function.SALT_VARIABLE)
    line.apply("destroy")
    assert fake.services == {} and fake.flows == {} and fake.sync_services == {} and fake.key_names == {}
    number = fake.numbers[owned["sid"]]
    assert number["voice_url"] == "https://voice.example.com/previous", "the number's voice settings are back"
    exported = line.run("stack", "export").stdout
    uploads = "".join(upload["content"] for upload in fake.uploads)
    for text, where in ((line.state_text(), "the state"), (exported, "the export"), (line.printed(), "CLI output"),
                        (uploads, "the uploaded code")):
        assert_no_secret(text, where)
        assert CAROL not in text, f"a PIN appears in {where}"
        assert where == "the uploaded code" or salt not in text, f"the salt appears in {where}"
        assert guard_secret not in text and new_secret not in text, f"the guard's API key secret appears in {where}"
        assert alert_url not in text, f"the alert URL (set as a secret) appears in {where}"
