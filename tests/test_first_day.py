"""A new user's first day with their own `dev` stack, through the real `pulumi` CLI and the `callmask` command
against the local Twilio, as the README tells it: a PIN set without `--secret` is refused with nothing
created, the command checks the stack's real (encrypted) PINs as `preview` does, a prompt change previews in
a few lines, and a call rung with `callmask call` shows in `callmask calls`. Nothing prints a traceback or a
secret."""

from __future__ import annotations

import pytest
from conftest import TEST_PINS
from test_engine_lifecycle import assert_no_secret, callmask, fake, project  # noqa: F401 (fixture)
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN

PIN = TEST_PINS[0]
CALLER, OTHER_CALLER, DESTINATION = "+14155550123", "+14155550124", "14155550777"
WRONG_PIN = "13572468"


@pytest.mark.slow
def test_first_day_on_the_dev_stack(tmp_path, fake):  # noqa: F811 (the fixture)
    line = project(tmp_path, fake, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    line.run("stack", "init", "dev")
    outputs = []

    # A PIN set without --secret: preview and up refuse it before anything is registered, naming the fix.
    line.run("config", "set", "--path", "callmask:pins[0]", PIN)
    for command in (["preview"], ["up", "--yes"]):
        refused = line.run(*command, check=False)
        assert refused.exit_code != 0 and "callmask:pins[0] in Pulumi.dev.yaml: a PIN in plaintext is refused" \
            in refused.stdout and "pulumi config set --path --secret 'callmask:pins[0]'" in refused.stdout
        assert PIN not in refused.output
    assert fake.calls == [] and fake.flows == fake.numbers == {}, "nothing was created, nothing was asked"

    # Fixed as the error says (the PIN typed on standard input); a 7-digit PIN is refused by preview and,
    # with no --pins, by `callmask validate --stack dev`, which decrypts the stack's PINs as preview does.
    line.run("config", "set", "--path", "--secret", "callmask:pins[0]", stdin=PIN)
    line.run("config", "set", "--path", "--secret", "callmask:pins[1]", stdin=WRONG_PIN[:7])
    short = "callmask:pins[1]: has 7 digits; every PIN must have exactly pinLength (8) digits"
    assert short in line.run("preview", check=False).stdout
    validated = callmask(line, "validate", "--stack", "dev")
    assert validated.returncode == 1 and short in validated.stderr and "placeholder" not in validated.stderr
    line.run("config", "rm", "--path", "callmask:pins[1]")
    validated = callmask(line, "validate", "--stack", "dev")
    assert validated.returncode == 0 and "sound" in validated.stdout and validated.stderr == ""

    # simulate with the stack's real PIN connects, the PIN masked
    simulated = callmask(line, "simulate", "--stack", "dev", "--press", f"{PIN}#", "--press", f"{DESTINATION}#")
    assert "outcome: connected (dialed +14155550777)" in simulated.stdout and "gathered: ********" in simulated.stdout
    outputs += [simulated.stdout, simulated.stderr, validated.stdout, validated.stderr]

    line.run("up", "--yes")
    # a one-prompt change previews as that prompt, in a few lines
    line.run("config", "set", "--path", "callmask:prompts.goodbye", "See you soon.")
    preview = line.run("preview", "--diff")
    assert '~ prompts.goodbye      : "The call has ended. Goodbye." => "See you soon."' in preview.stdout
    assert len(preview.stdout.splitlines()) <= 40 and "template" not in preview.stdout, preview.stdout
    assert preview.output.count("lockouts per caller and alerts need pinCheck function") == 1, "said once"
    assert "a caller has 3 PIN attempt(s) per call" in preview.output

    # callmask call rings the deployed line; callmask calls shows the calls, refused PINs on their own
    connected = callmask(line, "call", "--stack", "dev", "--from", CALLER, "--press", f"{PIN}#",
                         "--press", f"{DESTINATION}#")
    assert connected.returncode == 0 and "outcome: connected (dialed +14155550777)" in connected.stdout
    refused = callmask(line, "call", "--stack", "dev", "--from", OTHER_CALLER, "--press", f"{WRONG_PIN}#")
    assert refused.returncode == 0 and "[check_pin] branch: noMatch" in refused.stdout
    every = callmask(line, "calls", "--stack", "dev")
    assert "2 calls to stack dev" in every.stdout and "connected" in every.stdout
    wrong = callmask(line, "calls", "--stack", "dev", "--outcome", "refused-pin")
    rows = wrong.stdout.splitlines()[1:-2]
    assert len(rows) == 1 and "+1415*****24" in rows[0] and "refused PIN" in rows[0]
    outputs += [connected.stdout, connected.stderr, refused.stderr, every.stdout, wrong.stdout]
    unguarded = callmask(line, "lockouts", "--stack", "dev")
    assert unguarded.returncode == 1 and unguarded.stderr == (
        "callmask: error: stack dev has no PIN guard deployed: it needs callmask:pinCheck function (and "
        "pinGuard.enabled not false), then pulumi up --stack dev\n")

    printed = line.printed() + "\n".join(outputs)
    assert "Traceback" not in printed
    assert_no_secret(printed + line.state_text(), "the CLI's output or the state")
