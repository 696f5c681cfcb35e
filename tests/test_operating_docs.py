"""docs/operating.md, run as written: each `sh` block in order, in one shell session (what a block exports
the next one sees), in a git checkout of the project, against the local Twilio through the real `pulumi`
CLI, with the environment the local Twilio tells a user to export. What each how-to promises is checked
after its block."""

from __future__ import annotations

import copy
import os
import re
import subprocess

import pytest
from conftest import TEST_PINS
from console_flows import CONSOLE_PINS, console_line
from pulumi_cli import REPO, PulumiProject
from test_engine_lifecycle import assert_no_secret
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, with_numbers_for_sale

DOC = REPO / "docs" / "operating.md"
ALICE, BOB, CAROL = TEST_PINS[0], TEST_PINS[1], "61839274"
NEW_PASSPHRASE = "rotated-passphrase-3b8e1f"
BLOCK_SECONDS = 300


def blocks() -> list[tuple[str, str]]:
    """(the heading above it, the block) for every `sh` block of the page, in order."""
    found, heading = [], ""
    for part in re.split(r"(^## [^\n]*$|^```sh\n.*?^```$)", DOC.read_text(), flags=re.M | re.S):
        if part.startswith("## "):
            heading = part[3:].strip()
        elif part.startswith("```sh"):
            found.append((heading, part.removeprefix("```sh\n").removesuffix("```")))
    return found


class Shell:
    """One shell session: each block runs in bash (-e, -u, pipefail) with what the ones before exported."""

    def __init__(self, root, environ: dict[str, str]):
        self.root, self.environ = root, environ
        self.printed: list[str] = []

    def run(self, block: str) -> str:
        dump = self.root / ".environment"
        script = f"set -euo pipefail\n{block}\nenv -0 > {dump}\n"
        done = subprocess.run(["bash", "-c", script], cwd=self.root, env=self.environ, capture_output=True,
                              text=True, timeout=BLOCK_SECONDS)
        self.printed.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"this block failed (exit {done.returncode}):\n{block}\n{done.stdout}{done.stderr}"
        self.environ = dict(item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
        return done.stdout


@pytest.mark.slow
def test_every_how_to_works_as_written(tmp_path, fresh_twilio):
    fresh_twilio.available = with_numbers_for_sale().available
    # What `callmask local-twilio` prints for the user to export, and the PINs the page pipes in.
    exported = {"CALLMASK_TWILIO_BASE_URL": fresh_twilio.base_url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "ALICE_PIN": ALICE, "BOB_PIN": BOB, "CAROL_PIN": CAROL,
                "NEW_PASSPHRASE": NEW_PASSPHRASE, "GIT_AUTHOR_NAME": "operator", "GIT_AUTHOR_EMAIL": "op@example.com",
                "GIT_COMMITTER_NAME": "operator", "GIT_COMMITTER_EMAIL": "op@example.com"}
    project = PulumiProject(tmp_path, exported)
    (tmp_path / ".gitignore").write_text(".state/\n.pulumi-home/\n.environment\n")
    for command in (["init", "--quiet"], ["add", "-A"], ["commit", "--quiet", "-m", "the project"]):
        subprocess.run(["git", *command], cwd=tmp_path, env=project.environ, check=True)
    shell = Shell(tmp_path, {**os.environ, **project.environ})
    said = {heading: block for heading, block in blocks()}
    assert list(said) == ["Before you start: the shell", "What to commit after `stack init`",
                          "Add, rotate or revoke a PIN", "Find refused PINs", "Rotate the passphrase",
                          "Run `prod` on the local Twilio", "See who is locked out, and unlock a caller",
                          "Adopt a line built in the Console"]

    shell.run(said["Before you start: the shell"])
    shell.run(said["What to commit after `stack init`"])
    committed = subprocess.run(["git", "show", "HEAD:Pulumi.dev.yaml"], cwd=tmp_path, capture_output=True,
                               text=True, check=True).stdout
    assert "encryptionsalt: " in committed and "secure: " in committed
    (flow,) = fresh_twilio.flows.values()

    preview = shell.run(said["Add, rotate or revoke a PIN"])
    assert re.search(r"~ pins\s*: \[secret\]", preview) and "[diff: ~pins]" in preview, preview
    refused_call = fresh_twilio.place_call(next(iter(fresh_twilio.numbers.values()))["phone_number"], "+14155550123",
                                           [f"{BOB}#"] * 3)
    assert refused_call["steps"][-1]["transitioned_from"] == "say_invalid_pin", "bob's PIN is refused now"

    refused = shell.run(said["Find refused PINs"])
    rows = [row for row in refused.splitlines() if "refused PIN" in row]
    assert len(rows) == 2 and "+1415*****24" in rows[0] and "+1415*****23" in rows[1], "bob's and the guess"

    shell.run(said["Rotate the passphrase"])
    assert shell.environ["PULUMI_CONFIG_PASSPHRASE"] == NEW_PASSPHRASE
    old = subprocess.run([project.cli, "config", "--show-secrets", "--stack", "dev", "--non-interactive"],
                         cwd=tmp_path, env={**shell.environ, "PULUMI_CONFIG_PASSPHRASE": project.environ[
                             "PULUMI_CONFIG_PASSPHRASE"]}, capture_output=True, text=True)
    assert old.returncode != 0, "the old passphrase no longer opens the stack"

    prod = shell.run(said["Run `prod` on the local Twilio"])
    assert "outcome: connected (dialed +14155550777)" in prod and "PIN accepted (alice)" in prod, prod
    assert flow["sid"] in fresh_twilio.flows, "dev's line is untouched by prod's"
    unlocked = shell.run(said["See who is locked out, and unlock a caller"])
    assert "[say_locked]" in unlocked and re.search(r"\+1415\*{5}66\s+locked\s+5\s", unlocked), unlocked
    assert "cleared +1415*****66 on stack prod" in unlocked and fresh_twilio.sync_services == {}

    console_flow, console_number = fresh_twilio.console_line(console_line())
    shell.environ.update(CONSOLE_FLOW=console_flow, CONSOLE_PIN=CONSOLE_PINS[0])
    before = copy.deepcopy(fresh_twilio.flows[console_flow]["definition"])
    adopted = shell.run(said["Adopt a line built in the Console"])
    assert "outcome: connected (dialed +14155550777)" in adopted and f"Adopted flow {console_flow}" in adopted
    assert fresh_twilio.published_revision(console_flow)["definition"] == before, "handed back on destroy"

    printed = "\n".join(shell.printed)
    assert "Traceback" not in printed
    for pin in (ALICE, BOB, CAROL, *CONSOLE_PINS):
        assert pin not in printed + project.state_text() + committed, "a PIN in plaintext"
    assert_no_secret(project.state_text(), "the state")
