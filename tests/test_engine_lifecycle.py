"""The whole stack lifecycle through the real `pulumi` CLI, against the spec-validated Twilio fake.

Each step runs the command a user would (the PIN command is read from the README), and checks what the
engine shows and what the fake saw. The steps build on each other, so they run in one test per stack.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from callmask.studio.flow_template import load_template, render_flow
from callmask.config.settings import parse_settings
from callmask.config.stack_config import from_files
from conftest import TEST_PINS
from pulumi_cli import PASSPHRASE, REPO, PulumiProject
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, LocalTwilio

API_KEY, API_SECRET = "SK" + "c" * 32, "fake-api-secret-0a9b8c7d6e5f4a3b"
TESTER, CALLER, DESTINATION = "+14155550188", "+14155550123", "14155550777"
NEW_GOODBYE = "Thank you for calling. Goodbye."
SECRETS = (*TEST_PINS, AUTH_TOKEN, API_SECRET, PASSPHRASE, TESTER)
PREVIOUS_VOICE_URL = "https://voice.example.com/previous"
PREVIOUS_APPLICATION = "AP" + "b" * 32
PROD_NUMBER = "+14155550142"
TYPES = ("twilio:DialingPermissions", "twilio:StudioFlow", "twilio:PhoneNumber", "twilio:VoiceBinding")


def readme_pin_command() -> str:
    """The README's one command that sets the PINs, exactly as written there."""
    readme = (REPO / "README.md").read_text()
    return next(line.strip() for line in readme.splitlines() if line.strip().startswith("pulumi config set-all"))


def checked_account(twilio: LocalTwilio):
    """A new account with numbers for sale; afterwards, every request it saw was one Twilio's spec allows."""
    twilio.available["US"] = ["+14155550100", "+14155550101", "+12125550100"]
    yield twilio
    twilio.settle()
    assert twilio.spec_violations == [], "the fake saw traffic that Twilio's OpenAPI spec does not allow"
    assert twilio.unserved == [], "requests reached routes the local Twilio does not serve"


@pytest.fixture
def fake(fresh_twilio):
    yield from checked_account(fresh_twilio)


def project(tmp_path, fake: LocalTwilio, secrets_provider: str = "passphrase", **environment: str) -> PulumiProject:
    return PulumiProject(tmp_path, {"CALLMASK_TWILIO_BASE_URL": fake.base_url, **environment},
                         secrets_provider=secrets_provider)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret ({len(secret)} characters) appears in {where}"


def rendered_definition(stack: str, root) -> dict:
    values, _ = from_files(stack, root)
    values["pins"], values["testUsers"] = TEST_PINS, []  # the test users do not change the definition
    values["pinCheck"] = "studio"
    values.pop("publish", None)
    return render_flow(load_template(root / "flow" / "conference.json"), parse_settings(values).flow_values(),
                       TEST_PINS)


def callmask(line: PulumiProject, *args: str) -> subprocess.CompletedProcess:
    """The `callmask` command in the project, with the environment `pulumi` runs in."""
    return subprocess.run([sys.executable, "-m", "callmask", *args], cwd=line.root, env=line.environ,
                          capture_output=True, text=True, timeout=120)


def goodbye_heard(fake: LocalTwilio, caller: str, pin: str = TEST_PINS[0]) -> str:
    """Plays a call to the prod line that is connected; what the caller hears at the end."""
    execution = fake.place_call(PROD_NUMBER, caller, [pin + "#", DESTINATION + "#"], duration=61)
    revision = fake.flows[execution["flow_sid"]]["revisions"][execution["revision"] - 1]
    return next(s for s in revision["definition"]["states"] if s["name"] == "say_goodbye")["properties"]["say"]


@pytest.mark.slow
def test_prod_lifecycle_with_credentials_in_stack_config(tmp_path, fake, kms_key):
    owned = fake.own_number(PROD_NUMBER, voice_url=PREVIOUS_VOICE_URL, voice_application_sid=PREVIOUS_APPLICATION)
    line = project(tmp_path, fake, kms_key)
    unknown = callmask(line, "calls", "--stack", "prod")
    assert unknown.returncode == 1 and unknown.stderr.strip() == (
        "callmask: error: `pulumi config --stack prod` failed: no stack named 'prod' found")
    line.init_stack("prod")
    stack_file = (line.root / "Pulumi.prod.yaml").read_text()
    assert "secretsprovider: awskms://" in stack_file and "encryptionsalt" not in stack_file, "a KMS key encrypts"
    line.run_line(readme_pin_command())
    # The staged rollout on a prod line that checks its PINs in Studio (function mode:
    # tests/test_pin_function_lifecycle.py).
    line.run("config", "set-all", "--path", "--plaintext", "callmask:pinCheck=studio",
             "--plaintext", f"twilio:accountSid={ACCOUNT_SID}", "--secret", f"twilio:authToken={AUTH_TOKEN}",
             "--secret", f"callmask:testUsers[0]={TESTER}")  # a test user may be secret
    permissions = callmask(line, "account", "--stack", "prod")  # works before the first up, and reads only
    assert permissions.returncode == 0, permissions.stderr
    assert [row.split()[:3] for row in permissions.stdout.splitlines()[1:4]] == [
        ["US", "US", "on"], ["CA", "US", "on"], ["GB", "GB", "on"]]
    assert "Stack prod dials US, CA, GB." in permissions.stdout and fake.writes() == []
    not_deployed = callmask(line, "calls", "--stack", "prod")
    assert not_deployed.returncode == 1 and not_deployed.stderr.strip() == (
        "callmask: error: stack prod has no flowSid output: it is not deployed yet (pulumi up --stack prod)")

    # preview: three resources to create, readable widgets and prompts, the PINs only as [secret]
    preview = line.run("preview", "--diff")
    for type_name in TYPES:
        assert re.search(rf"\+ .*{type_name}", preview.stdout), f"{type_name} is not shown as created"
    assert "That destination is not permitted from this line." in preview.stdout
    assert "gather_pin" in preview.stdout and "[secret]" in preview.stdout
    assert fake.writes() == [], "a preview must not write to Twilio"

    # up: the flow (its first revision published: no caller had one), the number and the binding
    line.apply("up")
    (flow_sid,) = fake.flows
    assert fake.numbers[owned["sid"]]["voice_url"] == fake._flow(flow_sid)["webhook_url"]
    assert fake.numbers[owned["sid"]]["voice_application_sid"] is None
    assert fake.flows[flow_sid]["definition"] == rendered_definition("prod", line.root)
    assert fake.flows[flow_sid]["status"] == "published" and fake.flows[flow_sid]["test_users"] == [TESTER]
    outputs = json.loads(line.run("stack", "output", "--json").stdout)
    assert outputs == {"flowSid": flow_sid, "webhookUrl": fake._flow(flow_sid)["webhook_url"],
                       "phoneNumber": PROD_NUMBER, "phoneNumberSid": owned["sid"], "liveRevision": 1}
    # (no draftRevision: Pulumi leaves out an output with no value, and there is no draft)

    # a second up: no changes, and not one write to Twilio
    writes = len(fake.writes())
    again = line.apply("up")
    assert re.search(r"6 unchanged", again.stdout), again.stdout
    assert len(fake.writes()) == writes

    # a prompt change (prod stages drafts, publish: false): the preview shows that prompt and says it is a
    # draft; up validates and writes a draft revision, touching no number; only the test user hears it
    old_goodbye = goodbye_heard(fake, CALLER)
    line.run("config", "set", "--path", "callmask:prompts.goodbye", NEW_GOODBYE)
    changed = line.run("preview", "--diff")
    marked = [line.strip() for line in changed.stdout.splitlines() if line.strip().startswith("~")]
    assert marked == [
        "~ pulumi-python:dynamic/twilio:StudioFlow: (update)",
        "~ values: (json) {",
        f'~ prompts.goodbye      : "{old_goodbye}" => "{NEW_GOODBYE}"',
        "~ 1 to update"], "only the changed prompt is marked as changed"
    assert len(changed.stdout.splitlines()) <= 40, "the changed input alone, not the unchanged template"
    assert "a change becomes a draft revision for 1 test user(s); every other caller keeps the live revision" \
        in changed.output, "the preview says a draft is made and which revision stays live"
    assert re.search(r"\+ draftRevision\s*: \[unknown\]", changed.stdout), "and that a draft is coming"
    calls = len(fake.calls)
    line.apply("up")
    step = fake.calls[calls:]
    assert [(c.method, c.path) for c in step if c.method != "GET"] == [
        ("POST", "/v2/Flows/Validate"), ("POST", f"/v2/Flows/{flow_sid}")]
    assert not [c for c in step if "IncomingPhoneNumbers" in c.path], "a prompt change must not touch the number"
    assert [r["status"] for r in fake.flows[flow_sid]["revisions"]] == ["published", "draft"]
    outputs = json.loads(line.run("stack", "output", "--json").stdout)
    assert (outputs["liveRevision"], outputs["draftRevision"]) == (1, 2)
    assert goodbye_heard(fake, TESTER) == NEW_GOODBYE
    assert goodbye_heard(fake, CALLER) == old_goodbye, "every other caller keeps the published revision"
    fake.place_call(PROD_NUMBER, CALLER, [TEST_PINS[1] + "#", "18765550123#"])  # Jamaica: refused
    fake.place_call(PROD_NUMBER, CALLER, ["13572468#"])  # not a PIN of the line

    # the review tools read what Twilio holds: the draft against the published revision, and the calls
    review = callmask(line, "diff", "--stack", "prod", "--deployed")
    assert review.returncode == 0, review.stderr
    assert "revision 1 (published) → stack prod, revision 2 (draft)" in review.stdout
    assert NEW_GOODBYE in review.stdout and old_goodbye in review.stdout
    played = callmask(line, "simulate", "--stack", "prod", "--deployed", "draft", "--press", TEST_PINS[0] + "#",
                      "--press", DESTINATION + "#")
    assert played.returncode == 0 and NEW_GOODBYE in played.stdout and TEST_PINS[0] not in played.stdout
    report = callmask(line, "calls", "--stack", "prod")
    assert report.returncode == 0, report.stderr
    rows = report.stdout.splitlines()
    assert rows[0].split() == ["WHEN", "(UTC)", "CALLER", "PIN", "DESTINATION", "COUNTRY", "OUTCOME", "DURATION"]
    assert [row.split()[-1] for row in rows[1:5]] == ["-", "-", "61s", "61s"], "newest first"
    assert "refused PIN" in rows[1] and "refused number" in rows[2] and "JM  !! NOT ALLOWED" in rows[2]
    assert re.search(r"PIN accepted\s+\+14155550777\s+US\s", rows[3]) and "connected" in rows[3]
    assert "+1415*****23" in rows[1] and CALLER not in report.stdout
    listed = json.loads(callmask(line, "calls", "--stack", "prod", "--json").stdout)
    assert [call["outcome"] for call in listed] == ["refused PIN", "refused number", *["connected"] * 3]
    assert_no_secret(report.stdout + report.stderr + review.stdout + played.stdout, "callmask's output")
    assert "13572468" not in report.stdout + json.dumps(listed), "no digit of a PIN gather is shown"

    # someone publishes in the Console meanwhile: refresh tells the published revision's drift from the
    # draft's, and up puts callmask's published revision back, then the draft
    fake.edit_flow_in_console(flow_sid, lambda definition: definition["states"][1]["properties"].update(
        say="Published in the Console."))
    refreshed = line.apply("refresh", "--diff")
    assert re.search(r'drift *: ("" => )?"published revision 3 was published outside callmask \(callmask published '
                     r'revision 1\); draft revision 2 is no longer the latest \(revision 3, published\)"',
                     refreshed.stdout), refreshed.stdout
    line.apply("up")
    revisions = fake.flows[flow_sid]["revisions"]
    assert [r["status"] for r in revisions] == ["published", "draft", "published", "published", "draft"]
    assert revisions[3]["definition"] == revisions[0]["definition"] and revisions[4]["definition"] == \
        revisions[1]["definition"]
    assert goodbye_heard(fake, CALLER) == old_goodbye and goodbye_heard(fake, TESTER) == NEW_GOODBYE

    # publishing: what the test user tried goes to every caller
    line.run("config", "set", "callmask:publish", "true")
    publishing = line.run("preview", "--diff")
    assert re.search(r"~ publish\s*: false => true", publishing.stdout), publishing.stdout
    line.apply("up")
    assert [r["status"] for r in revisions][5:] == ["published"]
    assert revisions[5]["definition"] == revisions[4]["definition"]
    assert goodbye_heard(fake, CALLER) == NEW_GOODBYE
    outputs = json.loads(line.run("stack", "output", "--json").stdout)
    assert outputs["liveRevision"] == 6 and "draftRevision" not in outputs
    assert callmask(line, "diff", "--stack", "prod", "--deployed").stdout.strip() == (
        "Stack `prod` has no draft: stack prod, revision 6 (published) is what every caller gets.")

    # a Console edit: refresh reports the drift, the next up puts the template back
    fake.edit_flow_in_console(flow_sid, lambda definition: definition["states"][-1]["properties"].update(
        say="Edited in the Console."))
    refreshed = line.apply("refresh", "--diff")
    assert re.search(r'[+~] drift *: ("" => )?"revision \d+ differs from the template in: widget say_goodbye"',
                     refreshed.stdout), refreshed.stdout
    assert len(refreshed.stdout.splitlines()) <= 40, "the drift alone, not every input of the flow"
    line.apply("up")
    assert fake.flows[flow_sid]["definition"] == rendered_definition("prod", line.root)

    # no secret in the state, its export or anything the CLI printed
    exported = line.run("stack", "export").stdout
    assert '"secure"' in exported or "ciphertext" in exported
    assert_no_secret(exported, "`pulumi stack export`")
    assert_no_secret(line.state_text(), "the state backend's files")
    assert_no_secret((line.root / "Pulumi.prod.yaml").read_text(), "Pulumi.prod.yaml")

    # destroy: the flow is deleted, the number's previous voice settings are back, the number is kept
    line.apply("destroy")
    assert fake.flows == {}
    assert fake.numbers[owned["sid"]]["voice_url"] == PREVIOUS_VOICE_URL
    assert fake.numbers[owned["sid"]]["voice_application_sid"] == PREVIOUS_APPLICATION
    assert_no_secret(line.printed(), "the CLI's output")


@pytest.mark.slow
def test_dev_lifecycle_with_credentials_in_the_environment(tmp_path, fake, kms_key):
    fake.api_keys[API_KEY] = API_SECRET
    line = project(tmp_path, fake, kms_key, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_KEY=API_KEY,
                   TWILIO_API_SECRET=API_SECRET)
    line.init_stack("dev")
    line.run_line(readme_pin_command())
    line.apply("up")
    (number,) = fake.numbers.values()
    assert number["friendly_name"] == "callmask-dev" and number["phone_number"].startswith("+1415")

    # the spend alert: created, a new amount a new trigger (Twilio cannot change it), the callback in place
    line.run("config", "set", "--path", "callmask:spendAlert.dailyUsd", "25")
    line.run("config", "set", "--path", "callmask:spendAlert.callbackUrl", "https://alerts.example.com/spend")
    line.apply("up")
    (first,) = fake.usage_triggers.values()
    assert (first["trigger_value"], first["usage_category"], first["recurring"]) == ("25.00", "calls-outbound", "daily")
    line.run("config", "set", "--path", "callmask:spendAlert.dailyUsd", "40")
    replacing = line.run("preview", "--diff")
    assert re.search(r"\+-.*twilio:SpendAlert: \(replace\)", replacing.stdout), replacing.stdout
    assert re.search(r'~ daily_usd\s*: "25.00" => "40.00"', replacing.stdout), replacing.stdout
    line.apply("up")
    (second,) = fake.usage_triggers.values()
    assert second["sid"] != first["sid"] and second["trigger_value"] == "40.00"
    line.run("config", "set", "--path", "callmask:spendAlert.callbackUrl", "https://alerts.example.com/v2")
    line.apply("up")
    (third,) = fake.usage_triggers.values()
    assert third["sid"] == second["sid"] and third["callback_url"] == "https://alerts.example.com/v2"

    line.apply("destroy")
    assert fake.flows == {} and fake.numbers == {}, "dev has releaseNumberOnDestroy: true"
    assert fake.usage_triggers == {}, "the spend alert goes with the stack"
    assert_no_secret(line.state_text() + line.printed(), "state and CLI output")


@pytest.mark.slow
def test_a_bad_config_value_is_one_clear_error_and_creates_nothing(tmp_path, fake, kms_key):
    line = project(tmp_path, fake, kms_key, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    line.init_stack("dev")
    line.run_line(readme_pin_command())
    line.run("config", "set", "callmask:dialTimeout", "2")
    failed = line.run("up", "--yes", check=False)
    assert failed.exit_code != 0
    assert "callmask:dialTimeout: expected a whole number from 5 to 600, got 2" in failed.output
    assert "Traceback" not in failed.output
    assert fake.calls == [] and fake.flows == {} and fake.numbers == {}
    assert_no_secret(failed.output, "the error output")

    # A PIN typed into a prompt would land in the non-secret `values` input: the gate stops it first.
    line.run("config", "set", "callmask:dialTimeout", "30")
    line.run("config", "set", "--path", "callmask:prompts.goodbye", f"Your PIN {TEST_PINS[1]} worked.")
    refused = line.run("preview", check=False)
    assert refused.exit_code != 0
    assert "callmask:prompts.goodbye: contains one of the PINs" in refused.output
    assert "Traceback" not in refused.output and fake.calls == []
    assert_no_secret(refused.output, "the gate's error output")

    # A misspelled namespace, which Pulumi itself ignores, is named.
    line.run("config", "set", "--path", "callmask:prompts.goodbye", "Goodbye.")
    line.run("config", "set", "callmsk:dialTimeout", "20")
    misspelled = line.run("preview", check=False)
    assert "callmsk:dialTimeout: unknown namespace 'callmsk'; did you mean callmask:dialTimeout?" in misspelled.output
    assert misspelled.exit_code != 0 and fake.calls == []


def test_the_command_reads_stack_files_as_the_engine_does(tmp_path, fake):
    """The values the program gets from the engine and those `callmask` reads from the same files give
    the same settings (PINs are encrypted in the files, so both sides get the test PINs)."""
    line = project(tmp_path, fake)
    for stack in ("dev", "prod"):
        line.run("stack", "init", stack)
        line.run("config", "set", "--stack", stack, "--path", "callmask:prompts.goodbye", "Goodbye from the engine.")
        listed = json.loads(line.run("config", "--json", "--stack", stack).stdout)
        from_engine = {key.removeprefix("callmask:"): entry["value"] for key, entry in listed.items()
                       if key.startswith("callmask:") and not entry["secret"]}
        from_command, _ = from_files(stack, line.root)
        assert set(from_engine) == set(from_command) - {"pins"}
        assert parse_settings({**from_engine, "pins": TEST_PINS}) == parse_settings({**from_command, "pins": TEST_PINS})


@pytest.mark.slow
def test_a_number_that_cannot_be_had_stops_preview_and_up_before_anything_is_created(tmp_path, fake, kms_key):
    fake.available["US"] = []
    line = project(tmp_path, fake, kms_key, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    line.init_stack("dev")
    line.run_line(readme_pin_command())
    expected = ("No voice-capable local number is available for country US, area_code 415. Widen "
                "callmask:phoneNumber.search (drop areaCode or contains), or pick a number.")
    for command in ("preview", "up"):
        failed = line.run(command, *(["--yes"] if command == "up" else []), check=False)
        assert failed.exit_code != 0 and expected in failed.stdout and "Traceback" not in failed.output
    line.run("config", "rm", "--path", "callmask:phoneNumber.search")
    line.run("config", "set", "--path", "--type", "string", "callmask:phoneNumber.number", "+14155550177")
    failed = line.run("up", "--yes", check=False)
    assert "callmask:phoneNumber.number +14155550177 is neither on this Twilio account nor for sale to it" \
        in failed.stdout and "Traceback" not in failed.output
    assert fake.flows == fake.numbers == fake.usage_triggers == {} and fake.writes() == [], "nothing is created"
    assert_no_secret(line.printed(), "the error output")


@pytest.mark.slow
def test_a_purchase_twilio_refuses_at_up_is_one_line_and_leaves_nothing_else(tmp_path, fake, kms_key):
    """Sold to someone else between the look at `check` and the purchase: Twilio's refusal is one line (no
    traceback), and the number is bought before the rest, so nothing else was created."""
    line = project(tmp_path, fake, kms_key, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    line.init_stack("dev")
    line.run_line(readme_pin_command())
    line.run("config", "rm", "--path", "callmask:phoneNumber.search")
    line.run("config", "set", "--path", "--type", "string", "callmask:phoneNumber.number", "+14155550100")
    fake.fail("POST", r"/IncomingPhoneNumbers\.json$", status=400, code=21422, times=10,
              message="PhoneNumber requested is not available")
    failed = line.run("up", "--yes", check=False)
    errors = [text.strip() for text in failed.stdout.splitlines() if "error:" in text]
    assert failed.exit_code != 0 and "Traceback" not in failed.output and "File \"" not in failed.output
    assert any("is not available to buy (Twilio error 21422)" in error for error in errors), failed.stdout
    assert fake.flows == {} and fake.numbers == {} and fake.purchases == []
    assert_no_secret(failed.output, "the error output")
