"""The three providers driven as the Pulumi engine drives them (check, create or diff/update, read,
delete in dependency order; a failed step leaves the state as it was), for tests that need many runs."""

from __future__ import annotations

from typing import Any

from callmask.providers.dialing_permissions import DialingPermissionsProvider
from callmask.providers.phone_number import PhoneNumberProvider
from callmask.providers.twilio_provider import ProviderError
from callmask.providers.studio_flow import StudioFlowProvider
from callmask.providers.usage_trigger import SpendAlertProvider
from callmask.providers.voice_binding import VoiceBindingProvider
from conftest import configured
from test_providers import flow_props

ORDER = ("permissions", "flow", "number", "binding", "alert")


class Line:
    def __init__(self, stack: str, selection: dict[str, str], release: bool, spend_alert: dict | None = None,
                 dialing_permissions: str = "check", countries: tuple[str, ...] = ("US",)):
        self.stack, self.selection, self.release, self.spend_alert = stack, selection, release, spend_alert
        self.dialing_permissions, self.countries = dialing_permissions, countries
        self.prompts: dict[str, str] = {}
        self.publish, self.test_users = True, []  # the stack's callmask:publish and callmask:testUsers
        self.state: dict[str, tuple[str, dict[str, Any]]] = {}
        self.warned_voice_unknown = False  # the program's warning: destroy will clear, not restore
        self.providers = {"flow": configured(StudioFlowProvider), "number": configured(PhoneNumberProvider),
                          "binding": configured(VoiceBindingProvider), "alert": configured(SpendAlertProvider),
                          "permissions": configured(DialingPermissionsProvider)}

    def inputs(self, key: str) -> dict[str, Any]:
        if key == "flow":
            return {**flow_props(self.stack, **self.prompts), "publish": self.publish,
                    "test_users": list(self.test_users)}
        if key == "alert":
            return {"stack": self.stack, **self.spend_alert}
        if key == "permissions":
            return {"stack": self.stack, "mode": self.dialing_permissions, "countries": list(self.countries),
                    "number_types": ["fixedLine", "mobile"]}
        if key == "number":
            return {"selection": self.selection, "friendly_name": f"callmask-{self.stack}",
                    "release_on_destroy": self.release}
        (flow_sid, flow), (_, number) = self.state["flow"], self.state["number"]
        return {"phone_number_sid": number["sid"], "flow_sid": flow_sid, "voice_url": flow["webhook_url"],
                "voice_method": "POST", "voice_before": number.get("voice_before")}

    def keys(self) -> tuple[str, ...]:
        return tuple(key for key in ORDER if (key != "alert" or self.spend_alert)
                     and (key != "permissions" or self.dialing_permissions != "off"))

    def up(self) -> None:
        for key in self.keys():
            self.apply(key, self.inputs(key))

    def apply(self, key: str, news: dict[str, Any]) -> None:
        provider = self.providers[key]
        if key not in self.state:
            checked = checked_inputs(provider, {}, news)
            created = provider.create(checked.inputs)
            self.state[key] = (created.id, created.outs)
            self.warned_voice_unknown |= created.outs.get("previous_known") is False
            return
        id_, olds = self.state[key]
        checked = checked_inputs(provider, olds, news)
        diff = provider.diff(id_, olds, checked.inputs)
        assert not diff.replaces, f"{key}: these tests never change what forces a replacement"
        if diff.changes:
            self.state[key] = (id_, provider.update(id_, olds, checked.inputs).outs)

    def refresh(self) -> None:
        for key in ORDER:
            if key in self.state:
                id_, outs = self.state[key]
                read = self.providers[key].read(id_, outs)
                if read.id:
                    self.state[key] = (read.id, read.outs)
                else:
                    del self.state[key]

    def destroy(self) -> None:
        for key in reversed(ORDER):
            if key not in self.state:
                continue
            id_, outs = self.state[key]
            # Without releaseNumberOnDestroy the number has retainOnDelete: the engine never deletes it.
            if key != "number" or self.release:
                self.providers[key].delete(id_, outs)
            del self.state[key]


def checked_inputs(provider, olds: dict[str, Any], news: dict[str, Any]):
    """The provider's check, as the engine runs it: a failure stops the command with its reasons."""
    checked = provider.check(olds, news)
    if checked.failures:
        raise ProviderError("; ".join(f"{failure.property}: {failure.reason}" for failure in checked.failures))
    return checked
