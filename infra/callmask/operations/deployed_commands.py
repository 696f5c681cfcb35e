"""The `callmask` commands that read a deployed stack from Twilio: `calls`, `simulate`/`diff` with
`--deployed` (the published revision every caller gets, the draft only test users get), and `call`, which
rings a stack deployed to the local Twilio."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timezone
from urllib.parse import urlsplit

from twilio.base.exceptions import TwilioException

from callmask.config.settings import list_labels
from callmask.operations import call_audit
from callmask.operations.deployed_stack import DeployedStack, StackUnreadable, read_stack, twilio_failure
from callmask.studio import flow_diff
from callmask.studio.flow_graph import mask_pins

REVISIONS = {"published": "LatestPublished", "draft": "LatestRevision"}


def calls(args: argparse.Namespace, definition: dict, pins: list[str], allowed_countries: tuple[str, ...],
          attempts_per_call: int = 1) -> str:
    """The report; `definition` is the stack's flow rendered with stand-in `pins`, for the widgets' roles."""
    since = call_audit.since_moment(args.since, datetime.now(timezone.utc))
    known = [call_audit.outcome_key(outcome) for outcome in call_audit.OUTCOMES]
    if args.outcome and args.outcome not in known:
        raise StackUnreadable(f"--outcome {args.outcome!r}: expected one of {', '.join(known)}")
    stack = read_stack(args.stack, args.project_dir)
    secret_pins = list(stack_pins(stack).values())
    roles = call_audit.FlowRoles(definition, pins, allowed_countries, attempts_per_call)
    records = call_audit.read_calls(stack, roles, since, secret_pins)
    if args.outcome:
        records = [record for record in records if call_audit.outcome_key(record.outcome) == args.outcome]
    text = call_audit.as_json(records) if args.json else call_audit.table(records, stack.name, since)
    return mask_pins(text, secret_pins)


def stack_pins(stack: DeployedStack) -> dict[str, str]:
    """The stack's PINs by label (a list's are labeled pins[0], pins[1], ...)."""
    pins = stack.config.get("callmask:pins")
    if isinstance(pins, list) and pins:
        return dict(zip(list_labels(len(pins)), map(str, pins)))
    if isinstance(pins, dict) and pins:
        return {str(label): str(pin) for label, pin in pins.items()}
    raise StackUnreadable(f"stack {stack.name} has no callmask:pins, so the PINs in its deployed flow could not "
                          "be masked: nothing is shown")


def revision(stack: DeployedStack, which: str) -> tuple[dict, int, str]:
    """The deployed definition (`published`, or `draft`: the latest revision), its number and its name."""
    flow = stack.client().studio.v2.flows(stack.flow_sid)
    try:
        found = flow.revisions(REVISIONS[which]).fetch()
    except TwilioException as error:
        raise twilio_failure(stack.name, f"the flow's {which} revision", error) from None
    return found.definition or {}, found.revision, f"stack {stack.name}, revision {found.revision} ({found.status})"


def deployed_flow(args: argparse.Namespace) -> tuple[dict, str, dict[str, str], str | None]:
    """For `simulate --deployed`: the definition, its name, the stack's PINs and its number."""
    stack = read_stack(args.stack, args.project_dir)
    definition, _, source = revision(stack, args.deployed)
    return definition, source, stack_pins(stack), stack.outputs.get("phoneNumber")


def deployed_diff(args: argparse.Namespace) -> str:
    """The draft test users get against the published revision every other caller gets."""
    stack = read_stack(args.stack, args.project_dir)
    pins = list(stack_pins(stack).values())
    published, published_number, published_name = revision(stack, "published")
    draft, draft_number, draft_name = revision(stack, "draft")
    if draft_number == published_number:
        return f"Stack `{stack.name}` has no draft: {published_name} is what every caller gets."
    changes = flow_diff.compare(published, draft, pins)
    title = f"Call flow of stack `{stack.name}`: {published_name} → {draft_name}"
    return mask_pins(flow_diff.markdown(changes, title), pins)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def call(args: argparse.Namespace) -> str:
    """Rings the stack's number on the local Twilio with the caller's keypresses: played as the local Twilio
    plays every call (the published revision, the draft for a test user, the deployed Function), kept as a
    Studio execution. The transcript comes back with the stack's PINs masked."""
    from callmask.twilio import twilio_api

    base_url = os.environ.get(twilio_api.BASE_URL_VARIABLE, "")
    if urlsplit(base_url).hostname not in LOCAL_HOSTS:
        raise StackUnreadable(f"callmask call rings a stack deployed to the local Twilio (callmask local-twilio, "
                              f"with {twilio_api.BASE_URL_VARIABLE} set to it); on Twilio itself, call the line's "
                              "number from a phone")
    stack = read_stack(args.stack, args.project_dir)
    number = stack.outputs.get("phoneNumber")
    if not number:
        raise StackUnreadable(f"stack {stack.name} has no phoneNumber output: it is not deployed yet "
                              f"(pulumi up --stack {stack.name})")
    pins = list(stack_pins(stack).values())
    form = {"To": number, "From": args.caller, "Press": args.presses or [], "DialStatus": args.dial_status,
            "Hangup": "true" if args.hangup else "false"}
    try:
        answer = stack.client().request("POST", f"{base_url.rstrip('/')}{twilio_api.INCOMING_CALL_PATH}", data=form)
    except TwilioException as error:
        raise twilio_failure(stack.name, "the local Twilio", error) from None
    body = json.loads(answer.text or "{}")
    if answer.status_code != 201:
        raise StackUnreadable(mask_pins(f"stack {stack.name}: the local Twilio refused the call (HTTP "
                                        f"{answer.status_code}): {body.get('message', answer.text[:200])}", pins))
    said = (f"{body['transcript']}\nrecorded as execution {body['execution_sid']} of flow {body['flow_sid']} "
            f"(revision {body['revision']}): callmask calls --stack {stack.name}")
    return mask_pins(said, pins)
