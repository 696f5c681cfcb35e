"""Voice binding: points a number's voice webhook at the flow; on delete puts the old settings back.

It never buys or releases a number: it only updates the number's voice fields.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from callmask.providers.twilio_provider import TwilioProvider, is_unknown, unless_gone

BOUND_FIELDS = ("voice_url", "voice_method")


class BindingError(Exception):
    pass


class VoiceBindingProvider(TwilioProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("phone_number_sid", "flow_sid", *BOUND_FIELDS) if olds.get(key) != news.get(key)]
        if is_unknown(news.get("voice_url")) and news.get("flow_sid") == olds.get("flow_sid"):
            # A preview of a flow update: its webhook URL is not known yet, but a flow's webhook URL is
            # derived from its SID, which is unchanged.
            changed.remove("voice_url")
        replaces = ["phone_number_sid"] if "phone_number_sid" in changed else []
        return DiffResult(changes=bool(changed), replaces=replaces, stables=[], delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        number = self.client().incoming_phone_numbers(props["phone_number_sid"])
        current = number.fetch()
        if current.trunk_sid:
            raise BindingError(f"Number {current.phone_number} is attached to SIP trunk {current.trunk_sid}, which "
                               "takes precedence over a voice URL. Detach it from the trunk first.")
        previous = {"previous_voice_url": current.voice_url or "", "previous_voice_method": current.voice_method or "POST",
                    "previous_voice_application_sid": current.voice_application_sid or ""}
        # A voice application overrides the voice URL, so it is cleared while the flow owns the number.
        clear_application = {"voice_application_sid": ""} if current.voice_application_sid else {}
        number.update(voice_url=props["voice_url"], voice_method=props["voice_method"], **clear_application)
        return CreateResult(props["phone_number_sid"], {**props, **previous})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.client().incoming_phone_numbers(id_).update(voice_url=news["voice_url"], voice_method=news["voice_method"])
        return UpdateResult({**news, **{key: olds[key] for key in olds if key.startswith("previous_")}})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        number = unless_gone(self.client().incoming_phone_numbers(id_).fetch)
        if number is None:
            return ReadResult("", {})
        return ReadResult(id_, {**props, "voice_url": number.voice_url or "", "voice_method": number.voice_method or ""})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        restore = {"voice_url": props.get("previous_voice_url", ""),
                   "voice_method": props.get("previous_voice_method") or "POST"}
        if props.get("previous_voice_application_sid"):
            restore["voice_application_sid"] = props["previous_voice_application_sid"]
        unless_gone(lambda: self.client().incoming_phone_numbers(id_).update(**restore))


class VoiceBinding(Resource, module="twilio", name="VoiceBinding"):
    """The number's voice webhook bound to the flow (`voice_url`, method POST)."""

    voice_url: pulumi.Output[str]
    previous_voice_url: pulumi.Output[str]

    def __init__(self, name: str, *, phone_number_sid: pulumi.Input[str], flow_sid: pulumi.Input[str],
                 voice_url: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        props = {"phone_number_sid": phone_number_sid, "flow_sid": flow_sid, "voice_url": voice_url, "voice_method": "POST",
                 "previous_voice_url": None, "previous_voice_method": None, "previous_voice_application_sid": None}
        super().__init__(VoiceBindingProvider(), name, props, opts)
