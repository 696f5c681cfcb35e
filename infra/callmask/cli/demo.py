"""`make demo`: the whole loop on a local Twilio, with no account and no network.

A local Twilio on 127.0.0.1, a `file://` backend and a passphrase in a temporary folder, a `demo` stack with
freshly generated PINs (shown once); then, through the real `pulumi` CLI as a user would run it: a preview,
`up`, the stack outputs, calls simulated through the definition the local Twilio now holds and read back
with `callmask calls`, a prompt change with its preview, and `destroy`. Everything it started or wrote is
gone when it ends, also on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from callmask.cli.flow_commands import mask
from callmask.config.settings import pin_problem
from callmask.config.stack_config import PROJECT_DIR
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, NUMBERS_FOR_SALE, with_numbers_for_sale
from callmask.operations.deployed_stack import StackUnreadable, pulumi_cli
from callmask.studio import call_simulation
from callmask.studio.call_transcript import transcript
from callmask.twilio.twilio_api import BASE_URL_VARIABLE, connect

STACK = "demo"
PIN_LENGTH = 8
PROJECT_FILES = ("Pulumi.yaml", "flow", "functions", "infra")
STACK_FILE = """\
# The demo line: a number bought from the local Twilio (and released on destroy).
config:
  callmask:phoneNumber:
    search:
      country: US
      areaCode: "415"
  callmask:releaseNumberOnDestroy: true
"""
ALLOWED_DESTINATION, REFUSED_DESTINATION = "14155550123", "18765550123"  # +1 876 is Jamaica, not the US
NEW_GOODBYE = "Thanks for trying callmask. Goodbye."
STOP_SECONDS = 10


def copy_project(target: Path, names: tuple[str, ...] = PROJECT_FILES) -> None:
    """The project's files a `pulumi` run needs, copied into `target` (the demo's and the tests' projects),
    with the compiled Python beside them (valid there too: the copies keep their times)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("node_modules"))
        else:
            shutil.copy2(source, target / name)


class DemoFailed(Exception):
    """A step failed: said in one line, after that step's own output."""


def demo_pins() -> list[str]:
    """Two random PINs that the stack's own checks accept (not repeated, not a run, not a pattern)."""
    pins: list[str] = []
    while len(pins) < 2:
        pin = "".join(secrets.choice("0123456789") for _ in range(PIN_LENGTH))
        if pin_problem(pin, PIN_LENGTH) is None and pin not in pins:
            pins.append(pin)
    return pins


class Demo:
    def __init__(self, out: TextIO):
        self.out = out
        self.step = 0
        self.steps = 11
        self.running: subprocess.Popen[str] | None = None
        self.folder = Path(tempfile.mkdtemp(prefix="callmask-demo-"))
        self.project = self.folder / "project"
        self.pins = demo_pins()
        self.twilio = with_numbers_for_sale()

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def announce(self, text: str) -> None:
        self.step += 1
        self.say(f"\n==> [{self.step}/{self.steps}] {text}")

    def pulumi(self, *args: str, stdin: str | None = None, shown: str = "") -> None:
        """Run `pulumi ARGS` in the demo project, its output passed through as it comes."""
        self.say(f"$ pulumi {' '.join(args)}{shown}")
        self.running = subprocess.Popen(
            [self.cli, *args, "--non-interactive"], cwd=self.project, env=self.environ, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            start_new_session=True)  # its own process group: Ctrl-C reaches the demo, which stops it
        if stdin is not None:
            self.running.stdin.write(stdin)
            self.running.stdin.close()
        for line in self.running.stdout:
            self.say(line.rstrip("\n"))
        code = self.running.wait()
        self.running = None
        if code != 0:
            raise DemoFailed(f"`pulumi {args[0]}` exited {code} (its output is above)")

    def run(self) -> None:
        self.announce("Starting a local Twilio on 127.0.0.1 (no account, no network)")
        self.twilio.start()
        self.say(f"{self.twilio.base_url}: Studio Flows and phone numbers, every request checked against Twilio's "
                 f"OpenAPI specs. Numbers for sale: {', '.join(NUMBERS_FOR_SALE['US'])}.")
        self.prepare_project()

        self.announce(f"Creating the `{STACK}` stack, with two new PINs")
        self.pulumi("stack", "init", STACK)
        self.say(f"The demo's PINs (shown this once; Pulumi keeps them encrypted): {', '.join(self.pins)}")
        for index, pin in enumerate(self.pins):  # on standard input: a PIN is never in a command line
            self.pulumi("config", "set", "--path", "--secret", f"callmask:pins[{index}]", stdin=pin,
                        shown="   (the PIN on standard input)")

        self.announce("Previewing the line: what `pulumi up` will create (the PINs stay [secret])")
        self.pulumi("preview", "--diff")
        self.announce("Deploying it: the Studio Flow, a number bought from the local Twilio, and its voice webhook")
        self.pulumi("up", "--yes", "--skip-preview")  # the changes the preview above just showed
        self.announce("The stack's outputs")
        self.pulumi("stack", "output")

        self.announce("Calling the line: simulated through the definition the local Twilio now holds")
        self.calls()
        self.announce("Who called: the flow's executions, as `callmask calls` reads them from Twilio (no PIN shown)")
        self.callmask("calls", "--stack", STACK)

        self.announce("Changing a prompt: the preview shows that one change")
        self.pulumi("config", "set", "--path", "callmask:prompts.goodbye", NEW_GOODBYE)
        self.pulumi("preview", "--diff")

        self.announce("Destroying the line: the flow deleted, the number released")
        self.pulumi("destroy", "--yes")
        self.say(f"The local Twilio now holds {len(self.twilio.flows)} flows and {len(self.twilio.numbers)} numbers.")

        self.announce("Done. The same against a real Twilio account")
        self.say(REAL_ACCOUNT)

    def prepare_project(self) -> None:
        self.announce("A temporary project, a file:// state backend and a passphrase")
        copy_project(self.project)
        (self.project / f"Pulumi.{STACK}.yaml").write_text(STACK_FILE)
        (self.folder / "state").mkdir()
        try:
            self.cli = pulumi_cli()
        except StackUnreadable as error:
            raise DemoFailed(str(error)) from None
        self.environ = {
            **os.environ,
            "PATH": os.pathsep.join((str(Path(self.cli).parent), str(Path(sys.executable).parent),
                                     os.environ.get("PATH", ""))),
            "PULUMI_HOME": str(self.folder / "pulumi-home"),
            "PULUMI_BACKEND_URL": (self.folder / "state").as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            BASE_URL_VARIABLE: self.twilio.base_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        }
        for variable in ("TWILIO_API_KEY", "TWILIO_API_SECRET", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_ACCESS_TOKEN"):
            self.environ.pop(variable, None)
        self.say(f"Working in {self.folder} (removed at the end).")

    def calls(self) -> None:
        client = connect({}, self.environ)
        (flow,) = client.studio.v2.flows.list()
        definition = client.studio.v2.flows(flow.sid).fetch().definition
        (number,) = client.incoming_phone_numbers.list()
        self.say(f"{flow.sid} ({flow.friendly_name}, revision {flow.revision}) answers {number.phone_number}.")
        simulator = call_simulation.CallSimulator(definition, number.phone_number, self.pins)
        wrong_pin = next(pin for pin in demo_pins() if pin not in self.pins)
        calls = ((f"The first PIN, then {ALLOWED_DESTINATION} (US): connected", [self.pins[0], ALLOWED_DESTINATION]),
                 (f"The first PIN, then {REFUSED_DESTINATION} (Jamaica): refused", [self.pins[0], REFUSED_DESTINATION]),
                 ("A PIN that is not on the list: refused", [wrong_pin]))
        for title, presses in calls:
            self.say(f"\n{title}")
            result = simulator.run([call_simulation.CallerInput("keys", keys + "#") for keys in presses])
            self.say(mask(transcript(result), [*self.pins, wrong_pin], reveal=False))
            # The local Twilio keeps the same call as Studio would: an execution with its steps and context.
            self.twilio.place_call(number.phone_number, call_simulation.DEFAULT_CALLER, [k + "#" for k in presses])

    def callmask(self, *args: str) -> None:
        """Run `callmask ARGS` in the demo project, as a user would."""
        self.say(f"$ callmask {' '.join(args)}")
        done = subprocess.run([sys.executable, "-m", "callmask", *args], cwd=self.project, env=self.environ,
                              capture_output=True, text=True, start_new_session=True)
        self.say((done.stdout + done.stderr).rstrip("\n"))
        if done.returncode != 0:
            raise DemoFailed(f"`callmask {args[0]}` exited {done.returncode} (its output is above)")

    def stop(self) -> None:
        """End whatever is still running and remove every file the demo wrote."""
        if self.running and self.running.poll() is None:
            group = os.getpgid(self.running.pid)
            os.killpg(group, signal.SIGINT)  # Pulumi's own graceful stop first
            try:
                self.running.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(group, signal.SIGKILL)  # and every plugin it started
            except ProcessLookupError:
                pass
            stopped_by = time.monotonic() + STOP_SECONDS
            while group_running(group) and time.monotonic() < stopped_by:  # a killed process takes a moment
                time.sleep(0.05)
        if hasattr(self.twilio, "server"):
            self.twilio.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


REAL_ACCOUNT = """\
  export PATH="$PWD/.tools/bin:$PWD/.venv/bin:$PATH"
  pulumi login --local                      # or s3://…, gs://…, azblob://…
  pulumi stack init dev                     # Pulumi.dev.yaml is committed
  pulumi config set-all --path --secret 'callmask:pins[0]=…' --secret 'callmask:pins[1]=…'
  pulumi config set twilio:accountSid AC…
  pulumi config set --secret twilio:authToken
  pulumi preview --diff && pulumi up
(The README's "Deploying a stack" has the details; without CALLMASK_TWILIO_BASE_URL every request goes to Twilio.)"""


def run_demo(out: TextIO = sys.stdout, on_start: Callable[[Demo], None] | None = None) -> int:
    demo = Demo(out)
    if on_start:
        on_start(demo)
    try:
        demo.run()
        return 0
    except DemoFailed as error:
        print(f"callmask demo: {error}", file=out, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\ncallmask demo: interrupted; stopping what it started and removing its files.", file=out, flush=True)
        return 130
    finally:
        demo.stop()


def group_running(group: int) -> bool:
    """Whether a process of this process group still runs (one that ended and awaits its parent does not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, process_group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(process_group) == group and state not in ("Z", "X"):
            return True
    return False


def interrupted(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, interrupted)  # stopped from outside: clean up as on Ctrl-C
    # Ctrl-C stops it even when started from a script in the background (which starts it with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(run_demo())


if __name__ == "__main__":
    main()
