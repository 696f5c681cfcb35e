"""A deployed stack as the `callmask` commands that read Twilio see it: its config, secrets decrypted by the
Pulumi CLI (so the passphrase or secrets provider is used exactly as `pulumi up` uses it), its outputs, and
a Twilio client with the credentials Pulumi would hand the providers (stack config, then TWILIO_*)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callmask.config.stack_config import PROJECT_DIR, STACK_NAME

if TYPE_CHECKING:  # the Twilio SDK loads only for the commands that call Twilio
    from twilio.base.exceptions import TwilioException
    from twilio.rest import Client


PULUMI_SECONDS = 120


class StackUnreadable(Exception):
    """The stack, its credentials or Twilio cannot be read: one line saying what to do."""


def pulumi_cli(project_dir: Path = PROJECT_DIR) -> str:
    """The `pulumi` that `make setup` built (.tools/bin), else the one on PATH."""
    search = os.pathsep.join((str(project_dir / ".tools" / "bin"), str(PROJECT_DIR / ".tools" / "bin"),
                              os.environ.get("PATH", "")))
    found = shutil.which("pulumi", path=search)
    if not found:
        raise StackUnreadable("the Pulumi CLI is not in .tools/bin or on PATH: run `make setup` first")
    return found


@dataclass
class DeployedStack:
    name: str
    config: dict[str, Any]  # every key, secrets decrypted
    outputs: dict[str, Any]

    @property
    def flow_sid(self) -> str:
        flow_sid = self.outputs.get("flowSid")
        if not flow_sid:
            raise StackUnreadable(f"stack {self.name} has no flowSid output: it is not deployed yet "
                                  f"(pulumi up --stack {self.name})")
        return flow_sid

    def client(self) -> Client:
        from callmask.twilio import twilio_api

        credentials = {key: self.config[key] for key in twilio_api.CREDENTIAL_KEYS if self.config.get(key)}
        try:
            return twilio_api.connect(credentials)
        except twilio_api.MissingCredentials as error:
            raise StackUnreadable(f"stack {self.name}: {error}") from None


def read_stack(name: str, project_dir: Path = PROJECT_DIR) -> DeployedStack:
    """The stack's config and outputs, read by two `pulumi` commands at once (each is a whole CLI start);
    a failure of the config's read is the one told."""
    from concurrent.futures import ThreadPoolExecutor  # not for the commands that never read a stack

    reads = (config_read(name), ["stack", "output", "--stack", name, "--json"])
    with ThreadPoolExecutor(max_workers=len(reads)) as pool:
        listed, outputs = pool.map(lambda args: run_pulumi(args, project_dir), reads)
    return DeployedStack(name, config_values(listed), outputs)


def read_config(name: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """Every config key of the stack, secrets decrypted by the `pulumi` CLI (lists and maps as data)."""
    return config_values(run_pulumi(config_read(name), project_dir))


def config_read(name: str) -> list[str]:
    """The `pulumi` arguments that list the stack's config, secrets decrypted."""
    if not STACK_NAME.fullmatch(name):
        raise StackUnreadable(f"{name!r} is not a stack name: letters, digits, '-', '_' and '.'")
    return ["config", "--stack", name, "--show-secrets", "--json"]


def config_values(listed: dict[str, Any]) -> dict[str, Any]:
    return {key: entry.get("objectValue", entry.get("value")) for key, entry in listed.items()}


def run_pulumi(args: list[str], project_dir: Path) -> Any:
    done = subprocess.run([pulumi_cli(project_dir), *args, "--non-interactive"], cwd=project_dir,
                          capture_output=True, text=True, timeout=PULUMI_SECONDS)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1].removeprefix("error: ") if lines else f"exit status {done.returncode}"
        command = " ".join(args[:args.index("--stack") + 2])
        raise StackUnreadable(f"`pulumi {command}` failed: {reason}")
    return json.loads(done.stdout or "{}")


def twilio_failure(stack: str, what: str, error: TwilioException) -> StackUnreadable:
    """A failed read of Twilio in one line, with what to do."""
    from callmask.twilio.errors import answer_of

    answer = answer_of(error)
    if answer.status == 401:
        return StackUnreadable(f"stack {stack}: Twilio refused the credentials (HTTP 401): check twilio:accountSid "
                               "and twilio:authToken or twilio:apiKey/apiSecret (or TWILIO_* in the environment)")
    if answer.status == 403:
        return StackUnreadable(f"stack {stack}: these credentials may not read {what} (HTTP 403): use an API key "
                               "of the account with Studio read access")
    return StackUnreadable(f"stack {stack}: cannot read {what}: {answer.describe()}")
