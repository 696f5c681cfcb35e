"""`callmask calls`: who called the line, whether their PIN opened it, where they dialed and how it ended,
read from the stack flow's Studio executions (Twilio keeps 30 days of them).

The roles of the widgets (PIN check, number check, the dial) come from the stack's own rendered flow; an
execution's steps and context say what happened. Only derived facts are printed: never a PIN, never the
digits of any gather other than the destination, and a caller's number only partly.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import phonenumbers
from twilio.base.exceptions import TwilioException

from callmask.function.pin_function import ANONYMOUS
from callmask.operations.deployed_stack import DeployedStack, StackUnreadable, twilio_failure
from callmask.studio.call_simulation import CallSimulator, CannotSimulate
from callmask.studio.flow_graph import FlowGraph
from callmask.twilio.errors import answer_of

SINCE = re.compile(r"(\d{1,4})([mhd])")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
CONNECTED = {"completed": "connected", "answered": "connected", "busy": "busy", "no-answer": "no answer",
             "failed": "failed", "canceled": "canceled"}
REFUSED = ("refused PIN", "locked out", "refused number", "no input", "hung up", "PIN check failed")
OUTCOMES = tuple(dict.fromkeys([*CONNECTED.values(), *REFUSED]))


def outcome_key(outcome: str) -> str:
    """An outcome as `callmask calls --outcome` names it: refused PIN -> refused-pin."""
    return outcome.lower().replace(" ", "-")
LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}|pins\[\d{1,3}\]")  # a PIN's label as settings allow it
PAGE_SIZE = 50


@dataclass
class CallRecord:
    when: str
    caller: str
    pin: str
    destination: str | None
    country: str | None
    allowed: bool | None  # the destination's country is in allowedCountries (None: no destination)
    outcome: str
    duration_seconds: int | None


def since_moment(text: str, now: datetime) -> datetime:
    """`--since`: 30m, 24h or 7d ago, or an ISO date or time (UTC unless it says otherwise)."""
    if match := SINCE.fullmatch(text):
        return now - timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StackUnreadable(f"--since {text!r}: expected a duration such as 30m, 24h or 7d, or an ISO date "
                              "such as 2026-11-30") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class FlowRoles:
    """Which widgets of the stack's flow check the PIN, check the number and dial."""

    def __init__(self, definition: dict[str, Any], pins: list[str], allowed_countries: tuple[str, ...],
                 attempts_per_call: int = 1):
        graph = FlowGraph(definition, pins)
        self.pin_checks = graph.pin_check_names
        # Where the Function checks the PIN: each verdict check, and the TwiML Redirect whose verdict it reads.
        self.verdicts = {str(s.get("name")): str((graph.verdict_source(s) or {}).get("name")) for s in graph.verdict_checks}
        self.number_checks = {str(s.get("name")) for s in graph.number_checks}
        self.dials = {str(s.get("name")): s for s in graph.of_type("connect-call-to")}
        self.gathers = {str(s.get("name")) for s in graph.of_type("gather-input-on-call")}
        self.simulator = CallSimulator(definition)
        self.allowed_countries = allowed_countries
        self.attempts_per_call = attempts_per_call


def read_calls(stack: DeployedStack, roles: FlowRoles, since: datetime, pins: list[str]) -> list[CallRecord]:
    """The calls since `since`, newest first; `pins` (the line's) are never shown, even keyed in as a number."""
    client, flow_sid = stack.client(), stack.flow_sid
    flow = client.studio.v2.flows(flow_sid)
    try:
        executions = list(flow.executions.stream(date_created_from=since, page_size=PAGE_SIZE))
        records = []
        for execution in executions:
            steps = list(flow.executions(execution.sid).steps.stream(page_size=PAGE_SIZE))
            context = flow.executions(execution.sid).execution_context().fetch().context or {}
            records.append(record(execution, steps, context, roles, pins))
    except TwilioException as error:
        if answer_of(error).status == 404:
            raise StackUnreadable(
                f"stack {stack.name}: flow {flow_sid} no longer exists on Twilio (deleted outside callmask?): "
                f"`pulumi refresh --stack {stack.name}` drops it from the state") from None
        raise twilio_failure(stack.name, "Studio executions", error) from None
    return sorted(records, key=lambda r: r.when, reverse=True)


def record(execution: Any, steps: list[Any], context: dict[str, Any], roles: FlowRoles, pins: list[str]) -> CallRecord:
    taken = [(step.transitioned_from, step.name) for step in steps]
    widgets = context.get("widgets") or {}
    destination = dialed_number(roles, context)
    country = region_of(destination)
    dial = next((name for name, _ in taken if name in roles.dials), None)
    status = (widgets.get(dial) or {}).get("DialCallStatus") if dial else None
    duration = (widgets.get(dial) or {}).get("DialCallDuration") if dial else None
    return CallRecord(
        when=execution.date_created.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        caller=masked_caller(execution.contact_channel_address or ""),
        pin=pin_verdict(taken, roles, widgets),
        destination=shown_destination(destination, pins),
        country=country,
        allowed=None if destination is None else country in roles.allowed_countries,
        outcome=outcome(taken, roles, status, widgets),
        duration_seconds=int(duration) if str(duration or "").isdigit() else None,
    )


def pin_verdict(taken: list[tuple[str, str]], roles: FlowRoles, widgets: dict[str, Any]) -> str:
    if verdict := function_verdict(taken, roles, widgets):
        label, said = verdict.get("label"), verdict.get("verdict")
        if said == "ok":  # the Function says whose PIN it was
            return f"PIN accepted ({label})" if isinstance(label, str) and LABEL.fullmatch(label) else "PIN accepted"
        if said == "locked":
            return "locked out"
        if verdict.get("reason") == "guard-unavailable":
            return "PIN refused (guard unavailable)"
        return "" if said == "noinput" else refused(verdict.get("attempt"), roles)
    events = [event for name, event in taken if name in roles.pin_checks]
    if not events:
        return ""
    return refused(str(events.count("noMatch")), roles) if events[-1] == "noMatch" else "PIN accepted"


def refused(attempt: Any, roles: FlowRoles) -> str:
    """A refused PIN, with the attempt of the call it was (1 to pinGuard.attemptsPerCall)."""
    if isinstance(attempt, str) and attempt.isdigit() and 1 <= int(attempt) <= roles.attempts_per_call:
        return f"PIN refused (attempt {int(attempt)}/{roles.attempts_per_call})"
    return "PIN refused"


def function_verdict(taken: list[tuple[str, str]], roles: FlowRoles, widgets: dict[str, Any]) -> dict[str, Any]:
    """What the PIN-check Function returned to the flow (empty where it checked no PIN)."""
    redirect = next((roles.verdicts[name] for name, _ in taken if name in roles.verdicts), None)
    returned = widgets.get(redirect) if redirect else None
    return returned if isinstance(returned, dict) else {}


def outcome(taken: list[tuple[str, str]], roles: FlowRoles, dial_status: str | None, widgets: dict[str, Any]) -> str:
    if dial_status:
        return CONNECTED.get(dial_status, dial_status)
    if any(name in roles.verdicts.values() and event in ("timeout", "fail") for name, event in taken):
        return "PIN check failed"  # the Function never answered: no call is connected
    verdict = function_verdict(taken, roles, widgets).get("verdict")
    if verdict == "noinput":
        return "no input"
    if verdict == "locked":
        return "locked out"
    if any(name in roles.pin_checks and event == "noMatch" for name, event in taken):
        return "refused PIN"
    if any(name in roles.number_checks and event == "noMatch" for name, event in taken):
        return "refused number"
    if any(name in roles.gathers and event == "timeout" for name, event in taken):
        return "no input"
    return "hung up"


def dialed_number(roles: FlowRoles, context: dict[str, Any]) -> str | None:
    """The number the caller asked for: the dial's `to`, rendered with the execution's own context."""
    for name, dial in roles.dials.items():
        try:
            to = roles.simulator.render((dial.get("properties") or {}).get("to"), context, name).strip()
        except CannotSimulate:
            continue
        if to.strip("+"):
            return to
    return None


def parsed_number(number: str | None) -> phonenumbers.PhoneNumber | None:
    """The number when it could be one (its length fits its country code), else None."""
    if not number:
        return None
    try:
        parsed = phonenumbers.parse(number if number.startswith("+") else f"+{number}")
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_possible_number(parsed) else None


def region_of(number: str | None) -> str | None:
    """The destination's country; for a number in no assigned range, that of its calling code when only one
    country has it (+44: GB; +1 is shared by 25, so then unknown)."""
    if (parsed := parsed_number(number)) is None:
        return None
    if region := phonenumbers.region_code_for_number(parsed):
        return region
    regions = phonenumbers.region_codes_for_country_code(parsed.country_code)
    return regions[0] if len(regions) == 1 else None


def shown_destination(number: str | None, pins: list[str]) -> str | None:
    """A number as dialed; one that holds a PIN of the line (keyed in at the wrong prompt) or cannot be a
    number only by its length."""
    if number is None:
        return None
    digits = sum(c.isdigit() for c in number)
    if any(pin in number for pin in pins):
        return f"(withheld: holds a PIN of the line, {digits} digits)"
    return number if parsed_number(number) else f"(not a phone number, {digits} digits)"


def masked_caller(number: str) -> str:
    if len(number) <= 7:
        return "*" * len(number)
    return number[:5] + "*" * (len(number) - 7) + number[-2:]


def guarded_caller(caller: str) -> str:
    """A caller as the PIN guard's Function stores and shows them: masked, `anonymous` as it is."""
    return caller if caller == ANONYMOUS else masked_caller(caller)


def table(records: list[CallRecord], stack: str, since: datetime) -> str:
    header = ("WHEN (UTC)", "CALLER", "PIN", "DESTINATION", "COUNTRY", "OUTCOME", "DURATION")
    rows = [(r.when, r.caller, r.pin or "-", r.destination or "-",
             f"{r.country or '?'}{'  !! NOT ALLOWED' if r.allowed is False else ''}" if r.destination else "-",
             r.outcome, f"{r.duration_seconds}s" if r.duration_seconds is not None else "-") for r in records]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    flagged = [r for r in records if r.allowed is False]
    dialed = [r for r in flagged if r.outcome not in REFUSED]
    summary = f"{len(records)} calls to stack {stack} since {since:%Y-%m-%d %H:%M} UTC"
    if flagged:
        summary += f"; !! {len(flagged)} asked for destinations outside callmask:allowedCountries"
    if dialed:
        summary += (f"; !! {len(dialed)} of them were DIALED: the flow let them through, so check it for edits "
                    "(pulumi refresh) and the account's dialing permissions")
    return "\n".join([*lines, "", summary])


def as_json(records: list[CallRecord]) -> str:
    return json.dumps([asdict(r) for r in records], indent=2)
