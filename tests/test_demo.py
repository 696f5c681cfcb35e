"""`make demo` (callmask.cli.demo): a line deployed to the local Twilio through the real CLI, called, changed and
destroyed, with no account; PINs shown once; nothing left behind, also when it is interrupted."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from callmask.cli.demo import run_demo
from pulumi_cli import REPO, TOOLS_BIN, processes_working_in, require_cli

STEPS = 11


def the_folder(output: str) -> Path:
    return Path(re.search(r"Working in (\S+) \(removed at the end\)", output).group(1))


@pytest.mark.slow
def test_the_demo_deploys_calls_changes_and_destroys_a_line_with_no_account():
    require_cli({"PATH": os.pathsep.join((str(TOOLS_BIN), os.environ.get("PATH", "")))})
    out, demos = io.StringIO(), []
    code = run_demo(out, on_start=demos.append)
    output = out.getvalue()
    assert code == 0, output[-3000:]
    for step in range(1, STEPS + 1):
        assert f"==> [{step}/{STEPS}] " in output, f"step {step} is not announced"
    for command in ("$ pulumi preview --diff", "$ pulumi up --yes --skip-preview", "$ pulumi stack output",
                    "$ pulumi destroy --yes"):
        assert command in output
    assert "+ 6 to create" in output and "+ 6 created" in output and "- 6 deleted" in output
    assert re.search(r"phoneNumber\s+\+1415555010\d", output), "the stack outputs name the number bought"
    outcomes = re.findall(r"^outcome: (\S+)", output, re.MULTILINE)
    assert outcomes == ["connected", "rejected_number", "rejected_pin"]
    audit = output[output.index("$ callmask calls --stack demo"):]
    rows = audit.splitlines()[1:5]
    assert rows[0].startswith("WHEN (UTC)") and ["refused PIN" in rows[1], "refused number" in rows[2],
                                                  "connected" in rows[3]] == [True] * 3
    assert "JM  !! NOT ALLOWED" in rows[2] and "3 calls to stack demo since" in audit
    assert '~ prompts.goodbye      : "The call has ended. Goodbye." => "Thanks for trying callmask. Goodbye."' in output
    assert "The local Twilio now holds 0 flows and 0 numbers." in output
    assert "pulumi login --local" in output, "it ends by saying how to do the same against a real account"

    # The PINs are shown once, on their own line, and nowhere else (not in any pulumi output or transcript).
    (shown,) = re.findall(r"The demo's PINs \(shown this once; Pulumi keeps them encrypted\): (\d+), (\d+)", output)
    for pin in shown:
        assert output.count(pin) == 1, "a PIN appears outside the one line that shows it"

    (demo,) = demos
    assert demo.twilio.spec_violations == [] and demo.twilio.unserved == []
    folder = the_folder(output)
    assert not folder.exists(), "the demo's folder (state, passphrase, project copy) is removed"
    assert processes_working_in(folder) == []
    assert "Traceback" not in output


@pytest.mark.slow
def test_ctrl_c_stops_the_demo_and_leaves_nothing_behind():
    demo = subprocess.Popen([sys.executable, "-m", "callmask.cli.demo"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in demo.stdout:  # until `pulumi up` is running: the engine, its plugins and the program
        lines.append(line)
        if line.startswith("Deploying update") or line.startswith("Updating ("):
            break
    demo.send_signal(signal.SIGINT)
    rest, _ = demo.communicate(timeout=60)
    output = "".join(lines) + rest
    assert demo.returncode == 130, output[-2000:]
    assert "callmask demo: interrupted; stopping what it started and removing its files." in output
    assert "Traceback" not in output
    folder = the_folder(output)
    assert not folder.exists() and processes_working_in(folder) == []
