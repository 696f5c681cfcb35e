"""Voice binding: points a number's voice webhook at the flow; on delete puts the old settings back.

It never buys or releases a number: it only updates the number's voice fields. The settings it puts
back are the ones the phone number resource recorded when the stack took the number, before any write,
so a binding re-created after a lost answer never takes the flow's own webhook for "what was there".
A Studio webhook of a callmask flow, or of a flow that no longer exists, is never put back: the webhook
is cleared instead, and the program warns about it.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, UpdateResult
from twilio.base.exceptions import TwilioException

from callmask.providers.twilio_provider import (
    DetailedDiff,
    ProviderError,
    TwilioProvider,
    answer_of,
    is_unknown,
    twilio_operation,
    unless_gone,
)

BOUND_FIELDS = ("voice_url", "voice_method")
STUDIO_WEBHOOK = re.compile(r"https://webhooks\.twilio\.com/v1/Accounts/AC\w+/Flows/(FW\w+)")
CALLMASK_FLOW_PREFIX = "callmask-"


class BindingError(ProviderError):
    pass


class VoiceBindingProvider(TwilioProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("phone_number_sid", "flow_sid", *BOUND_FIELDS) if olds.get(key) != news.get(key)]
        if is_unknown(news.get("voice_url")) and news.get("flow_sid") == olds.get("flow_sid"):
            # A preview of a flow update: its webhook URL is not known yet, but a flow's webhook URL is
            # derived from its SID, which is unchanged.
            changed.remove("voice_url")
        replaces = ["phone_number_sid"] if "phone_number_sid" in changed else []
        return DetailedDiff(changed, replaces, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client, sid = self.client(), props["phone_number_sid"]
        with twilio_operation(f"VoiceBinding {sid}", "create"):
            number = client.incoming_phone_numbers(sid)
            current = number.fetch()
            if current.trunk_sid:
                raise BindingError(f"VoiceBinding: number {current.phone_number} is attached to SIP trunk "
                                   f"{current.trunk_sid}, which takes precedence over a voice URL. Detach it first.")
            before = props.get("voice_before") or {"voice_url": current.voice_url or "",
                                                   "voice_method": current.voice_method or "POST",
                                                   "voice_application_sid": current.voice_application_sid or ""}
            if props.get("adopted") and bound_already(current, props):
                # A Console-built line adopted in place: the number already calls the flow, and keeps calling
                # it after `destroy` (the flow is handed back, not deleted). Nothing to write.
                return CreateResult(sid, {**props, "previous_voice_url": current.voice_url,
                                          "previous_voice_method": current.voice_method or "POST",
                                          "previous_voice_application_sid": "", "previous_known": True})
            previous = previous_settings(client, before, props["flow_sid"])
            # A voice application overrides the voice URL, so it is cleared while the flow owns the number.
            clear_application = {"voice_application_sid": ""} if current.voice_application_sid else {}
            number.update(voice_url=props["voice_url"], voice_method=props["voice_method"], **clear_application)
        return CreateResult(sid, {**props, **previous})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with twilio_operation(f"VoiceBinding {id_}", "update"):
            self.client().incoming_phone_numbers(id_).update(voice_url=news["voice_url"], voice_method=news["voice_method"])
        previous = {key: olds[key] for key in olds if key.startswith("previous_")}
        if olds.get("adopted") and not news.get("adopted"):
            # Moved off the adopted flow, which is deleted: there is nothing to point the number back at.
            previous.update(previous_voice_url="", previous_known=False)
        return UpdateResult({**news, **previous})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"VoiceBinding {id_}", "read"):
            number = unless_gone(client, client.incoming_phone_numbers(id_).fetch)
        if number is None:
            return ReadResult("", {})
        return ReadResult(id_, {**props, "voice_url": number.voice_url or "", "voice_method": number.voice_method or ""})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        restore = {"voice_url": props.get("previous_voice_url") or "",
                   "voice_method": props.get("previous_voice_method") or "POST"}
        if props.get("previous_voice_application_sid"):
            restore["voice_application_sid"] = props["previous_voice_application_sid"]
        client = self.client()
        with twilio_operation(f"VoiceBinding {id_}", "restore the voice settings"):
            number = client.incoming_phone_numbers(id_)
            unless_gone(client, lambda: number.update(**restore), confirm=number.fetch)


def bound_already(number, props: dict[str, Any]) -> bool:
    return (number.voice_url == props["voice_url"] and (number.voice_method or "POST") == props["voice_method"]
            and not number.voice_application_sid)


def previous_settings(client, before: dict[str, str], flow_sid: str) -> dict[str, Any]:
    """What delete puts back: the recorded settings, unless they point at a callmask flow or a dead flow."""
    known = not is_callmask_or_dead_flow(client, before.get("voice_url") or "", flow_sid)
    return {"previous_voice_url": before.get("voice_url", "") if known else "",
            "previous_voice_method": before.get("voice_method") or "POST",
            "previous_voice_application_sid": before.get("voice_application_sid", ""),
            "previous_known": known}


def is_callmask_or_dead_flow(client, voice_url: str, flow_sid: str) -> bool:
    match = STUDIO_WEBHOOK.fullmatch(voice_url)
    if not match:
        return False
    if match.group(1) == flow_sid:
        return True
    try:
        flow = client.studio.v2.flows(match.group(1)).fetch()
    except TwilioException as error:
        if answer_of(error).status == 404:
            return True
        raise
    return flow.friendly_name.startswith(CALLMASK_FLOW_PREFIX)


class VoiceBinding(Resource, module="twilio", name="VoiceBinding"):
    """The number's voice webhook bound to the flow (`voice_url`, method POST). `previous_known` is false
    when the number's earlier voice settings could not be known: delete then clears the webhook."""

    voice_url: pulumi.Output[str]
    previous_voice_url: pulumi.Output[str]
    previous_known: pulumi.Output[bool]

    def __init__(self, name: str, *, phone_number_sid: pulumi.Input[str], flow_sid: pulumi.Input[str],
                 voice_url: pulumi.Input[str], voice_before: pulumi.Input[dict] | None = None,
                 adopted: bool = False, opts: pulumi.ResourceOptions | None = None):
        props = {"phone_number_sid": phone_number_sid, "flow_sid": flow_sid, "voice_url": voice_url,
                 "voice_method": "POST", "voice_before": voice_before, "previous_voice_url": None,
                 "previous_voice_method": None, "previous_voice_application_sid": None, "previous_known": None}
        if adopted:  # a Console-built line's number, already on its flow (only then: other stacks' inputs stay)
            props["adopted"] = True
        super().__init__(VoiceBindingProvider(), name, props, opts)
