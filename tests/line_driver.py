"""The providers driven as the Pulumi engine drives them (check, create or diff/update or a replacement
made before the old one is deleted, read, delete in dependency order, children `deleted_with` their
Service skipped; a failed step leaves the state as it was), for tests that need many runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from callmask.function import pin_function
from callmask.studio.flow_template import canonical_json, load_template, FUNCTION_FLOW_FILE
from callmask.providers.api_key import ApiKeyProvider
from callmask.providers.dialing_permissions import DialingPermissionsProvider
from callmask.providers.phone_number import PhoneNumberProvider
from callmask.providers.pin_salt import PinSaltProvider
from callmask.providers.serverless import (
    BuildProvider,
    DeploymentProvider,
    EnvironmentProvider,
    FunctionProvider,
    FunctionVersionProvider,
    ServiceProvider,
    VariablesProvider,
)
from callmask.providers.twilio_provider import ProviderError
from callmask.providers.studio_flow import StudioFlowProvider
from callmask.providers.sync import MAP_NAME, SyncMapProvider, SyncServiceProvider
from callmask.providers.usage_trigger import SpendAlertProvider
from callmask.providers.voice_binding import VoiceBindingProvider
from callmask.config.settings import parse_settings
from conftest import TEST_PINS, configured
from flow_fixtures import stack_values
from test_providers import flow_props

GUARD_PARTS = ("guard_key", "sync_service", "sync_map")
FUNCTION_PARTS = ("salt", "service", "environment", "function", "version", "build", *GUARD_PARTS, "variables",
                  "deployment")
ORDER = ("permissions", *FUNCTION_PARTS, "flow", "number", "binding", "alert")
# What goes with what when that is deleted (`deleted_with`): the Serverless Service's children, the Sync Map.
DELETED_WITH = {**{key: "service" for key in ("environment", "function", "version", "build", "variables",
                                              "deployment")}, "sync_map": "sync_service"}
# Told the index of each step of a command before it is taken (`start` resumes a command at one).
BeforeStep = Callable[[int], None]


def no_hook(_: int) -> None:
    pass


class Line:
    def __init__(self, stack: str, selection: dict[str, str], release: bool, spend_alert: dict | None = None,
                 dialing_permissions: str = "check", countries: tuple[str, ...] = ("US",)):
        self.stack, self.selection, self.release, self.spend_alert = stack, selection, release, spend_alert
        self.dialing_permissions, self.countries = dialing_permissions, countries
        self.prompts: dict[str, str] = {}
        self.publish, self.test_users = True, []  # the stack's callmask:publish and callmask:testUsers
        self.pin_check, self.pins = "studio", {"alice": TEST_PINS[0], "bob": TEST_PINS[1]}  # callmask:pinCheck, :pins
        self.state: dict[str, tuple[str, dict[str, Any]]] = {}
        self.warned_voice_unknown = False  # the program's warning: destroy will clear, not restore
        self.providers = {"flow": configured(StudioFlowProvider), "number": configured(PhoneNumberProvider),
                          "binding": configured(VoiceBindingProvider), "alert": configured(SpendAlertProvider),
                          "permissions": configured(DialingPermissionsProvider), "salt": PinSaltProvider(),
                          "service": configured(ServiceProvider), "environment": configured(EnvironmentProvider),
                          "function": configured(FunctionProvider), "version": configured(FunctionVersionProvider),
                          "build": configured(BuildProvider), "variables": configured(VariablesProvider),
                          "deployment": configured(DeploymentProvider), "guard_key": configured(ApiKeyProvider),
                          "sync_service": configured(SyncServiceProvider), "sync_map": configured(SyncMapProvider)}

    def sid(self, key: str) -> str:
        return self.state[key][1]["sid"]

    def inputs(self, key: str) -> dict[str, Any]:
        if key == "flow":
            flow = {**flow_props(self.stack, **self.prompts), "publish": self.publish,
                    "test_users": list(self.test_users)}
            if self.pin_check != "function":
                return flow
            values = stack_values(self.stack)
            values.update(pins=self.pins, pinCheck="function", prompts={**values.get("prompts", {}), **self.prompts})
            domain = self.state["environment"][1]["domain_name"]
            return {**flow, "template": canonical_json(load_template(FUNCTION_FLOW_FILE)), "pins": [],
                    "values": canonical_json(parse_settings(values).flow_values()),
                    "pin_check_url": f"https://{domain}{pin_function.FUNCTION_PATH}"}
        if key in FUNCTION_PARTS:
            return self.function_inputs(key)
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

    def function_inputs(self, key: str) -> dict[str, Any]:
        """The PIN-check Function's resources, as infra/callmask/line.py declares them."""
        if key == "salt":
            return {"stack": self.stack}
        if key == "service":
            return {"unique_name": f"callmask-{self.stack}", "friendly_name": f"callmask {self.stack}: PIN check"}
        if key in ("guard_key", "sync_service"):
            return {"friendly_name": f"callmask-{self.stack} PIN guard"}
        if key == "sync_map":
            return {"service_sid": self.sid("sync_service"), "unique_name": MAP_NAME}
        service, salt = {"service_sid": self.sid("service")}, self.state["salt"][1]["salt"]
        if key == "environment":
            return {**service, "unique_name": "live"}
        if key == "function":
            return {**service, "friendly_name": "pin-check"}
        if key == "version":
            values = stack_values(self.stack)
            values.update(pins=self.pins, pinCheck="function")
            function_values = parse_settings(values).function_values()
            return {**service, "function_sid": self.sid("function"), "path": pin_function.FUNCTION_PATH,
                    "visibility": "protected", "source": pin_function.source(),
                    "values": canonical_json(function_values), "labels": sorted(self.pins), "pins": dict(self.pins),
                    "salt": salt}
        if key == "build":
            return {**service, "function_versions": [self.sid("version")],
                    "dependencies": json.dumps(pin_function.build_dependencies()), "runtime": pin_function.RUNTIME}
        environment = {**service, "environment_sid": self.sid("environment")}
        if key == "variables":
            guard = pin_function.guard_variables(self.sid("sync_service"), self.sid("sync_map"), self.sid("guard_key"),
                                                 self.state["guard_key"][1]["secret"])
            return {**environment, "variables": {pin_function.SALT_VARIABLE: salt, **guard}}
        return {**environment, "build_sid": self.sid("build")}

    def keys(self) -> tuple[str, ...]:
        return tuple(key for key in ORDER if (key != "alert" or self.spend_alert)
                     and (key != "permissions" or self.dialing_permissions != "off")
                     and (key not in FUNCTION_PARTS or self.pin_check == "function"))

    def up(self, start: int = 0, before_step: BeforeStep = no_hook) -> None:
        """Creates and updates in order, then what was replaced or is no longer declared is deleted, as
        the engine does it (a Service's children go with it). Step i < len(keys) applies the i-th key; the
        last step deletes."""
        if start == 0:
            self.replaced: list[tuple[str, str, dict[str, Any]]] = []
        keys = self.keys()
        for index, key in enumerate(keys[start:], start):
            before_step(index)
            self.apply(key, self.inputs(key))
        before_step(len(keys))
        removed = [key for key in reversed(ORDER) if key in self.state and key not in self.keys()]
        for key, id_, outs in [*self.replaced, *((key, *self.state[key]) for key in removed)]:
            if DELETED_WITH.get(key) not in removed:  # else deleted with its Service
                self.providers[key].delete(id_, outs)
        for key in removed:
            del self.state[key]

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
        if diff.replaces:
            assert key in FUNCTION_PARTS, f"{key}: these tests never change what forces a replacement"
            created = provider.create(checked.inputs)
            self.state[key] = (created.id, created.outs)
            self.replaced.append((key, id_, olds))
        elif diff.changes:
            self.state[key] = (id_, provider.update(id_, olds, checked.inputs).outs)

    def refresh(self, start: int = 0, before_step: BeforeStep = no_hook) -> None:
        for index, key in enumerate(ORDER[start:], start):
            before_step(index)
            if key in self.state:
                id_, outs = self.state[key]
                read = self.providers[key].read(id_, outs)
                if read.id:
                    self.state[key] = (read.id, read.outs)
                else:
                    del self.state[key]

    def destroy(self, start: int = 0, before_step: BeforeStep = no_hook) -> None:
        for index, key in enumerate(ORDER[::-1][start:], start):
            before_step(index)
            if key not in self.state:
                continue
            id_, outs = self.state[key]
            # Without releaseNumberOnDestroy the number has retainOnDelete: the engine never deletes it.
            if (key != "number" or self.release) and DELETED_WITH.get(key) not in self.state:
                self.providers[key].delete(id_, outs)
            del self.state[key]


def checked_inputs(provider, olds: dict[str, Any], news: dict[str, Any]):
    """The provider's check, as the engine runs it: a failure stops the command with its reasons."""
    checked = provider.check(olds, news)
    if checked.failures:
        raise ProviderError("; ".join(f"{failure.property}: {failure.reason}" for failure in checked.failures))
    return checked
