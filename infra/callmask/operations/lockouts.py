"""`callmask lockouts`: the callers the PIN guard is counting or has locked out, read from the stack's Sync
Map, and `--clear`, an administrator's unlock of one caller.

The Map and the salt its keys are hashed with are found through the stack's PIN-check Function (its
Environment's variables), so nothing new is kept in the state. A caller is shown masked, as the Function
stored them; `--clear` finds their item by the same keyed hash the Function uses.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from twilio.base.exceptions import TwilioException

from callmask.config.settings import E164
from callmask.function import pin_function
from callmask.line.component import service_name
from callmask.operations.call_audit import guarded_caller
from callmask.operations.deployed_stack import DeployedStack, StackUnreadable, twilio_failure
from callmask.twilio.errors import answer_of


@dataclass
class GuardedCaller:
    caller: str  # masked
    state: str  # locked or counting
    failures: int  # in the current window (for a locked caller: those that locked them)
    lockouts: int  # in the last day; each repeat doubles the next
    until: str  # UTC: the lockout's end, or when the count lapses


def guard_map(stack: DeployedStack) -> tuple[Any, str]:
    """(the Sync Map of the stack's PIN guard, the salt its keys are hashed with)."""
    client = stack.client()
    try:
        service = client.serverless.v1.services(client.serverless.v1.services(service_name(stack.name)).fetch().sid)
        environment = next((e for e in service.environments.stream(page_size=20) if e.unique_name == "live"), None)
        variables = {v.key: v.value for v in service.environments(environment.sid).variables.stream(page_size=50)} \
            if environment else {}
    except TwilioException as error:
        if answer_of(error).status != 404:
            raise twilio_failure(stack.name, "the PIN-check Function's variables", error) from None
        variables = {}
    service_variable, map_variable = pin_function.GUARD_VARIABLES[:2]
    if not all(variables.get(name) for name in (service_variable, map_variable, pin_function.SALT_VARIABLE)):
        raise StackUnreadable(f"stack {stack.name} has no PIN guard deployed: it needs callmask:pinCheck function "
                              f"(and pinGuard.enabled not false), then pulumi up --stack {stack.name}")
    sync_map = client.sync.v1.services(variables[service_variable]).sync_maps(variables[map_variable])
    return sync_map, variables[pin_function.SALT_VARIABLE]


def moment(milliseconds: Any) -> datetime:
    return datetime.fromtimestamp(float(milliseconds or 0) / 1000, timezone.utc)


def guarded_callers(stack: DeployedStack, now: datetime, window_minutes: int
                    ) -> tuple[list[GuardedCaller], dict[str, Any]]:
    """(every caller counted or locked, newest lockout first; the count across all callers this hour)."""
    sync_map, _ = guard_map(stack)
    try:
        items = list(sync_map.sync_map_items.stream(page_size=100))
    except TwilioException as error:
        raise twilio_failure(stack.name, "the PIN guard's Sync Map", error) from None
    callers, across = [], {}
    for item in items:
        data = item.data or {}
        if item.key == pin_function.ALL_CALLERS:
            across = data
            continue
        locked_until = moment(data.get("lockedUntil"))
        if locked_until > now:
            state, until = "locked", locked_until
        else:  # the count lapses windowMinutes after its first failure
            state, until = "counting", moment(data.get("windowStart")) + timedelta(minutes=window_minutes)
            if until <= now or not data.get("failures"):  # lapsed, or cleared by a right PIN
                continue
        callers.append(GuardedCaller(str(data.get("caller", "?")), state,
                                     int(data.get("lockedFailures" if state == "locked" else "failures") or 0),
                                     int(data.get("lockouts") or 0), f"{until:%Y-%m-%d %H:%M:%S}"))
    callers.sort(key=lambda c: (c.state != "locked", c.until))
    return callers, across


def lockouts(stack: DeployedStack, as_json: bool, window_minutes: int) -> str:
    callers, across = guarded_callers(stack, datetime.now(timezone.utc), window_minutes)
    if as_json:
        return json.dumps({"callers": [asdict(c) for c in callers],
                           "failuresThisHour": int(across.get("failures") or 0)}, indent=2)
    header = ("CALLER", "STATE", "FAILURES", "LOCKOUTS (24H)", "UNTIL (UTC)")
    rows = [(c.caller, c.state, str(c.failures), str(c.lockouts), c.until) for c in callers]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    locked = sum(c.state == "locked" for c in callers)
    summary = (f"{locked} caller(s) locked out, {len(callers) - locked} counting, on stack {stack.name}; "
               f"{int(across.get('failures') or 0)} wrong PIN(s) across all callers this hour")
    return "\n".join([*lines, "", summary]) if rows else summary


def clear(stack: DeployedStack, caller: str) -> str:
    """Lifts one caller's lockout and count (an administrator's unlock)."""
    if caller != pin_function.ANONYMOUS and not E164.fullmatch(caller):
        raise StackUnreadable(f"--clear {caller!r}: expected the caller's number in E.164 (+14155550123), or "
                              f"{pin_function.ANONYMOUS} for callers who withhold their number")
    sync_map, salt = guard_map(stack)
    item = sync_map.sync_map_items(pin_function.caller_key(salt, caller))
    shown = guarded_caller(caller)
    try:
        item.delete()
    except TwilioException as error:
        if answer_of(error).status == 404:
            return f"{shown} is neither locked out nor counted on stack {stack.name}: nothing to clear"
        raise twilio_failure(stack.name, "the PIN guard's Sync Map", error) from None
    return f"cleared {shown} on stack {stack.name}: their next call may try a PIN again"
