"""`callmask adopt`: a line built in the Studio editor brought under the stack's code, in place. It reads the
flow's published definition and its number from Twilio, recognises the line by its widgets' roles, writes
the stack file (callmask:flowSid and phoneNumber.sid keep the same flow and number), sets the PINs it found
as secrets through the `pulumi` CLI, and says what `pulumi up` will change. It never prints a PIN."""

from __future__ import annotations

import argparse
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from twilio.base.exceptions import TwilioException

from callmask.config.settings import FLOW_SID, PHONE_NUMBER_SID, pin_problem
from callmask.line.console_flow import ConsoleLine, NotTheLine, recognise
from callmask.operations.call_audit import region_of
from callmask.operations.deployed_stack import (
    PULUMI_SECONDS,
    DeployedStack,
    StackUnreadable,
    pulumi_cli,
    read_config,
    twilio_failure,
)
from callmask.studio.flow_graph import mask_pins

EXECUTION_DAYS = 30


def adopt(args: argparse.Namespace) -> str:
    if not FLOW_SID.fullmatch(args.flow or ""):
        raise StackUnreadable(f"--flow {args.flow!r}: expected a Studio flow SID (FW followed by 32 hex digits)")
    path = args.project_dir / f"Pulumi.{args.stack}.yaml"
    document = yaml.safe_load(path.read_text()) if path.exists() else {}
    document = document if isinstance(document, dict) else {}
    if any(str(key).startswith("callmask:") for key in (document.get("config") or {})):
        raise StackUnreadable(f"{path.name} already holds callmask: keys; adopt writes a stack's settings once and "
                              "never overwrites them: adopt into a new stack (pulumi stack init NAME)")
    stack = DeployedStack(args.stack, read_config(args.stack, args.project_dir), {})
    client = stack.client()
    try:
        flow = client.studio.v2.flows(args.flow).fetch()
        definition = client.studio.v2.flows(args.flow).revisions("LatestPublished").fetch().definition or {}
    except TwilioException as error:
        raise twilio_failure(stack.name, f"flow {args.flow}", error) from None
    try:
        line = recognise(definition)
    except NotTheLine as error:
        raise StackUnreadable(f"flow {args.flow}: {error}; nothing was written") from None
    number = the_number(client, stack.name, flow.webhook_url, args.number)
    countries = dialled_countries(client, args.flow, line.number_gather)
    values = {**line.values, "phoneNumber": {"sid": number.sid}, "flowSid": args.flow,
              "allowedCountries": countries or ["US"]}
    document["config"] = {**(document.get("config") or {}), **{f"callmask:{k}": v for k, v in values.items()}}
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    for index, pin in enumerate(line.pins):
        set_secret(args.stack, f"callmask:pins[{index}]", pin, args.project_dir)
    return mask_pins(summary(args, line, number, countries) + "\n\n" + review(args, definition, line), line.pins)


def review(args: argparse.Namespace, live: dict[str, Any], line: ConsoleLine) -> str:
    """Widget by widget: the Console's flow against what `pulumi up` will deploy for the stack."""
    from callmask.config.settings import SettingsError
    from callmask.operations.command_flow import load_stack_flow
    from callmask.studio import flow_diff

    args.pins, args.placeholders_announced = ",".join(line.pins), True
    try:
        deployed = load_stack_flow(args.stack, args, args.project_dir)
    except SettingsError as error:
        return f"pulumi up would refuse the stack as it is: {error}"
    return flow_diff.markdown(flow_diff.compare(live, deployed.definition, line.pins),
                              f"Flow {args.flow}: the Console's → what `pulumi up` deploys")


def the_number(client, stack: str, webhook_url: str, wanted: str | None):
    """The number given (E.164 or PN SID), else the account's number whose voice URL is the flow's webhook."""
    try:
        if wanted and PHONE_NUMBER_SID.fullmatch(wanted):
            return client.incoming_phone_numbers(wanted).fetch()
        numbers = client.incoming_phone_numbers.list(limit=1000)
    except TwilioException as error:
        raise twilio_failure(stack, "the account's phone numbers", error) from None
    found = [n for n in numbers if (n.phone_number == wanted if wanted else n.voice_url == webhook_url)]
    if len(found) != 1:
        what = f"no number {wanted}" if wanted else \
            f"{len(found) or 'no'} numbers whose voice URL is the flow's webhook"
        raise StackUnreadable(f"stack {stack}: the account has {what}; name the line's number with --number "
                              "+1… or PN…; nothing was written")
    return found[0]


def dialled_countries(client, flow_sid: str, number_gather: str) -> list[str]:
    """The countries the flow's calls of the last 30 days asked for (what allowedCountries should allow)."""
    since = datetime.now(timezone.utc) - timedelta(days=EXECUTION_DAYS)
    found: set[str] = set()
    try:
        for execution in client.studio.v2.flows(flow_sid).executions.stream(date_created_from=since, page_size=50):
            context = client.studio.v2.flows(flow_sid).executions(execution.sid).execution_context().fetch().context
            digits = (((context or {}).get("widgets") or {}).get(number_gather) or {}).get("Digits")
            if region := region_of(str(digits)) if digits else None:
                found.add(region)
    except TwilioException:
        return []  # a proposal only: without the executions, the default stands (said in the summary)
    return sorted(found)


def set_secret(stack: str, key: str, value: str, project_dir: Path) -> None:
    """`pulumi config set --secret`, the value on standard input (never on a command line)."""
    done = subprocess.run([pulumi_cli(project_dir), "config", "set", "--stack", stack, "--path", "--secret", key,
                           "--non-interactive"], input=value, cwd=project_dir, capture_output=True, text=True,
                          timeout=PULUMI_SECONDS)
    if done.returncode != 0:
        raise StackUnreadable(f"`pulumi config set --path --secret {key}` failed: "
                              f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")


def summary(args: argparse.Namespace, line: ConsoleLine, number: Any, countries: list[str]) -> str:
    lines = [f"Adopted flow {args.flow} and number {number.phone_number} ({number.sid}) into Pulumi.{args.stack}.yaml:"]
    lines += [f"  {name}: {role}" for name, role in line.roles.items()]
    lines += [f"  not mapped (pulumi up replaces the flow with callmask's, without it): {name}" for name in line.unmapped]
    lines += [f"  note: {note}" for note in line.notes]
    lines.append(f"{len(line.pins)} PIN(s) set as secrets (callmask:pins[0]…), never shown.")
    length = line.values.get("pinLength")
    lines += [f"  callmask:pins[{index}] breaks callmask's PIN rules ({reason}): pulumi up refuses it until it is "
              "changed" for index, pin in enumerate(line.pins) if (reason := pin_problem(pin, length))]
    lines.append("The Console flow dials any number; callmask allows only allowedCountries: set to "
                 + (f"{', '.join(countries)} (the countries its calls asked for in the last {EXECUTION_DAYS} days)"
                    if countries else f"US (no call in the last {EXECUTION_DAYS} days to go by): check it"))
    lines.append("Every earlier revision of the flow keeps the old PINs readable for as long as the flow exists: "
                 "rotate the PINs after the move, or remove callmask:flowSid to move to a new flow.")
    lines.append(f"Next: pulumi preview --stack {args.stack} (one new revision of the same flow, the number "
                 "untouched), then pulumi up; destroy hands the Console's definition back.")
    return "\n".join(lines)
