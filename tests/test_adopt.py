"""A line built in the Studio editor, taken over in place: `callmask adopt` recognises it by its widgets'
roles and writes the stack (PINs as secrets, through the `pulumi` CLI); `pulumi up` keeps its flow SID and
its number and buys nothing; `pulumi destroy` publishes the Console's definition again. Through the real
CLI against the local Twilio; no PIN in the stack file, any output, the state or its export."""

from __future__ import annotations

import copy

import pytest
import yaml
from console_flows import CONSOLE_PINS, VARIANTS, console_line, not_a_line
from test_engine_lifecycle import callmask, fake, project  # noqa: F401 (the fixture)
from callmask.line.console_flow import NotTheLine, recognise
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN

CALLER = "+14155550123"


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_line_is_recognised_by_its_widgets_roles(variant):
    options = VARIANTS[variant]
    line = recognise(console_line(**options))
    assert line.pins == options.get("pins", CONSOLE_PINS)
    assert line.values["pinLength"] == options.get("pin_length", 8)
    assert (line.values["gatherTimeout"], line.values["dialTimeout"]) == (7, 40)
    assert (line.values["voice"], line.values["language"]) == ("Polly.Amy", "en-GB")
    assert line.values["prompts"]["greeting"] == "Welcome. Enter your access code, then press pound."
    assert line.values["prompts"]["invalidPin"] == "Wrong code. Goodbye."
    assert line.values["prompts"]["noInput"] == "We heard nothing. Goodbye."
    assert ("goodbye" in line.values["prompts"]) == options.get("goodbye", True)
    assert line.unmapped == (["log_call"] if options.get("extra") else [])
    assert "callerId" not in line.values, "the flow's own number: the line's number"


def test_a_flow_that_is_not_the_line_is_refused_with_reasons():
    with pytest.raises(NotTheLine, match="does not lead to a split comparing its digits with a list of PINs"):
        recognise(not_a_line())


@pytest.mark.slow
def test_adopt_up_call_refresh_and_destroy_through_the_cli(tmp_path, fake, kms_key):  # noqa: F811 (the fixture)
    flow_sid, number = fake.console_line(console_line(pin_gather="ask_code", pin_check="code_ok"))
    original = copy.deepcopy(fake.flows[flow_sid]["definition"])
    fake.place_call(number, CALLER, [CONSOLE_PINS[0] + "#", "442071838750#"])  # a call to London last week
    line = project(tmp_path, fake, kms_key, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    line.init_stack("console")
    outputs = []

    refused = callmask(line, "adopt", "--stack", "console", "--flow", "FW" + "9" * 32)
    assert refused.returncode == 1 and "flow FW9" in refused.stderr and "callmask:" not in (
        tmp_path / "Pulumi.console.yaml").read_text()
    writes = len(fake.writes())
    adopted = callmask(line, "adopt", "--stack", "console", "--flow", flow_sid)
    assert adopted.returncode == 0, adopted.stderr
    assert f"Adopted flow {flow_sid} and number {number}" in adopted.stdout
    assert "ask_code: the PIN gather" in adopted.stdout and "2 PIN(s) set as secrets" in adopted.stdout
    assert "set to GB (the countries its calls asked for" in adopted.stdout
    assert len(fake.writes()) == writes, "adopt only reads Twilio"
    config = yaml.safe_load((tmp_path / "Pulumi.console.yaml").read_text())["config"]
    assert config["callmask:flowSid"] == flow_sid and config["callmask:phoneNumber"]["sid"].startswith("PN")
    assert all("secure" in pin for pin in config["callmask:pins"])
    again = callmask(line, "adopt", "--stack", "console", "--flow", flow_sid)
    assert again.returncode == 1 and "never overwrites" in again.stderr
    outputs += [adopted.stdout, adopted.stderr, again.stderr]

    line.run("config", "set", "--path", "callmask:allowedCountries[1]", "US")
    preview = line.run("preview", "--diff")
    assert "[secret]" in preview.stdout and fake.writes()[writes:] == []
    line.apply("up")
    assert list(fake.flows) == [flow_sid] and fake.purchases == [], "the same flow, no number bought"
    assert fake.flows[flow_sid]["commit_message"].startswith("callmask console: adopted from the Console")
    the_number = next(n for n in fake.numbers.values() if n["phone_number"] == number)
    assert the_number["voice_url"] == fake._flow(flow_sid)["webhook_url"]
    assert not [c for c in fake.writes("/IncomingPhoneNumbers") if c.method == "POST"], "the number is untouched"
    assert "6 unchanged" in line.apply("up").stdout
    deployed = copy.deepcopy(fake.flows[flow_sid]["definition"])
    fake.edit_flow_in_console(flow_sid, lambda d: d["states"][-1]["properties"].update(say="Edited again."))
    drift = line.apply("refresh", "--diff").stdout
    assert "differs from the template in: widget say_goodbye" in drift, drift
    line.apply("up")
    assert fake.flows[flow_sid]["definition"] == deployed, "drift on an adopted flow is put back as on any other"

    called = callmask(line, "call", "--stack", "console", "--from", CALLER, "--press", CONSOLE_PINS[1] + "#",
                      "--press", "14155550123#")
    assert "outcome: connected (dialed +14155550123)" in called.stdout, called.stdout + called.stderr
    line.apply("refresh")
    outputs += [called.stdout]

    line.apply("destroy")
    assert flow_sid in fake.flows, "an adopted flow is handed back, never deleted"
    assert fake.published_revision(flow_sid)["definition"] == original
    assert fake.flows[flow_sid]["friendly_name"] == "Dial-out line"
    assert the_number["voice_url"] == fake._flow(flow_sid)["webhook_url"], "the number still calls the flow"

    exported = line.run("stack", "export").stdout
    printed = line.printed() + "\n".join(outputs) + exported + line.state_text()
    printed += (tmp_path / "Pulumi.console.yaml").read_text()
    assert "Traceback" not in printed
    for pin in CONSOLE_PINS:
        assert pin not in printed, "a Console PIN in plaintext"


def test_a_flow_sid_that_is_no_flow_or_another_stacks_stops_the_preview(twilio):
    from callmask.providers.studio_flow import StudioFlowProvider
    from conftest import configured
    from test_providers import flow_props

    provider = configured(StudioFlowProvider)
    missing = provider.check({}, {**flow_props(), "adopt_sid": "FW" + "9" * 32})
    assert [f.reason for f in missing.failures] == [
        f"callmask:flowSid FW{'9' * 32} is not a Studio flow of this Twilio account (check the SID in the Console)"]
    made = provider.create(flow_props("prod"))  # a flow the prod stack manages
    writes = len(twilio.writes())
    taken = provider.check({}, {**flow_props("dev"), "adopt_sid": made.id})
    assert [f.reason for f in taken.failures] == [
        f"callmask:flowSid {made.id} is managed by callmask stack 'prod': adopt a flow no stack manages"]
    console_flow, _ = twilio.console_line(console_line())
    assert provider.check({}, {**flow_props("dev"), "adopt_sid": console_flow}).failures == []
    assert len(twilio.writes()) == writes, "the checks only read"


@pytest.mark.slow
def test_moving_an_adopted_line_to_a_flow_of_its_own_deletes_the_console_flow(tmp_path, fake, kms_key):  # noqa: F811
    flow_sid, number = fake.console_line(console_line())
    line = project(tmp_path, fake, kms_key, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    line.init_stack("console")
    assert callmask(line, "adopt", "--stack", "console", "--flow", flow_sid).returncode == 0
    line.apply("up")
    line.run("config", "rm", "callmask:flowSid")
    line.apply("up")
    (own,) = fake.flows
    assert own != flow_sid, "a new flow, the adopted one (with the Console's PINs in its revisions) deleted"
    the_number = next(n for n in fake.numbers.values() if n["phone_number"] == number)
    assert the_number["voice_url"] == fake._flow(own)["webhook_url"] and fake.purchases == []
    line.apply("destroy")
    assert fake.flows == {} and the_number["voice_url"] in (None, ""), "never left calling a deleted flow"


@pytest.mark.slow
def test_adopting_with_the_pin_checked_by_a_function(tmp_path, fake, kms_key):  # noqa: F811
    """pinCheck function: the same adoption, the PINs then checked by the line's Function (none in the flow)."""
    flow_sid, number = fake.console_line(console_line())
    line = project(tmp_path, fake, kms_key, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    line.init_stack("console")
    assert callmask(line, "adopt", "--stack", "console", "--flow", flow_sid).returncode == 0
    line.run("config", "set", "callmask:pinCheck", "function")
    line.apply("up")
    assert list(fake.flows) == [flow_sid] and fake.purchases == []
    assert not any(pin in str(fake.flows[flow_sid]["definition"]) for pin in CONSOLE_PINS), "no PIN in the flow"
    called = callmask(line, "call", "--stack", "console", "--from", CALLER, "--press", CONSOLE_PINS[0] + "#",
                      "--press", "14155550123#")
    assert "outcome: connected (dialed +14155550123)" in called.stdout, called.stdout + called.stderr
    line.apply("destroy")
    assert fake.published_revision(flow_sid)["commit_message"].startswith("callmask console: handed back")


@pytest.mark.slow
def test_each_variant_is_adopted_by_the_command_and_an_unreadable_flow_writes_nothing(
        tmp_path, fake, kms_key):  # noqa: F811
    line = project(tmp_path, fake, kms_key, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    expected = {"other widget names": "ask_code: the PIN gather", "equal_to branches": "code_ok: the PIN check",
                "no goodbye": "prompts.goodbye: the flow has none", "a 6-digit PIN": "2 PIN(s) set as secrets",
                "a PIN that breaks callmask's rules": "callmask:pins[1] breaks callmask's PIN rules (is one digit "
                                                      "repeated",
                "an extra widget": "not mapped (pulumi up replaces the flow with callmask's, without it): log_call"}
    printed = []
    for index, (variant, said) in enumerate(expected.items()):
        options = {**VARIANTS[variant], **({"pin_gather": "ask_code", "pin_check": "code_ok"} if index < 2 else {})}
        flow_sid, _ = fake.console_line(console_line(**options), phone_number=f"+1415555017{index}")
        stack = f"v{index}"
        line.init_stack(stack)
        adopted = callmask(line, "adopt", "--stack", stack, "--flow", flow_sid)
        assert adopted.returncode == 0 and said in adopted.stdout, (variant, adopted.stdout, adopted.stderr)
        printed += [adopted.stdout, adopted.stderr]
    menu_sid, _ = fake.console_line(not_a_line(), phone_number="+14155550179")
    line.init_stack("menu")
    before = (tmp_path / "Pulumi.menu.yaml").read_text() if (tmp_path / "Pulumi.menu.yaml").exists() else ""
    refused = callmask(line, "adopt", "--stack", "menu", "--flow", menu_sid)
    assert refused.returncode == 1 and "does not lead to a split comparing its digits" in refused.stderr
    assert "nothing was written" in refused.stderr
    after = (tmp_path / "Pulumi.menu.yaml").read_text() if (tmp_path / "Pulumi.menu.yaml").exists() else ""
    assert after == before
    for pin in (*CONSOLE_PINS, "271849", "739205", "11111111"):
        assert pin not in "\n".join(printed) + refused.stderr + line.printed()
