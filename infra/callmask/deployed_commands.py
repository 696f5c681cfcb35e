"""The `callmask` commands that read a deployed stack from Twilio: `calls`, and `simulate`/`diff` with
`--deployed` (the published revision every caller gets, the draft only test users get)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from twilio.base.exceptions import TwilioException

from callmask import call_audit, flow_diff
from callmask.deployed_stack import DeployedStack, StackUnreadable, read_stack, twilio_failure
from callmask.flow_graph import mask_pins
from callmask.settings import list_labels

REVISIONS = {"published": "LatestPublished", "draft": "LatestRevision"}


def calls(args: argparse.Namespace, definition: dict, pins: list[str], allowed_countries: tuple[str, ...]) -> str:
    """The report; `definition` is the stack's flow rendered with stand-in `pins`, for the widgets' roles."""
    since = call_audit.since_moment(args.since, datetime.now(timezone.utc))
    stack = read_stack(args.stack, args.project_dir)
    secret_pins = list(stack_pins(stack).values())
    roles = call_audit.FlowRoles(definition, pins, allowed_countries)
    records = call_audit.read_calls(stack, roles, since, secret_pins)
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
