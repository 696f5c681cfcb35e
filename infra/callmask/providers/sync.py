"""Twilio Sync: the Service and the Map where the PIN guard's Function keeps its counters
(`callmask:pinGuard`). The Map's items (one per caller who got a PIN wrong, and one for all callers) belong
to the Function: they expire by their own TTL, are never in the state, and go with the Map.

A Sync Service has no unique name, so the stack's is found again by its friendly name after a lost answer;
the Map by its unique name. The Map is `deleted_with` its Service: deleting the Service takes it along.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult
from twilio.base.exceptions import TwilioException

from callmask.providers.twilio_provider import (
    NOT_FOUND,
    DetailedDiff,
    TwilioProvider,
    answer_of,
    create_once,
    friendly_name_checked,
    replacing,
    required_text,
    twilio_operation,
    unless_gone,
)

MAP_NAME = "pin-guard"


class SyncServiceProvider(TwilioProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return friendly_name_checked(news)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = ["friendly_name"] if olds.get("friendly_name") != news.get("friendly_name") else []
        return DetailedDiff(changed + (["drift"] if olds.get("drift") else []), stables=["sid"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        client, name = self.client(), props["friendly_name"]
        services = client.sync.v1.services
        with twilio_operation(f"SyncService {name}", "create"):
            service = create_once(f"SyncService {name}", lambda: _service_named(services, name),
                                  lambda: services.create(friendly_name=name))
        return CreateResult(service.sid, {**props, "sid": service.sid, "drift": ""})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self.client()
        with twilio_operation(f"SyncService {id_}", "update"):
            client.sync.v1.services(id_).update(friendly_name=news["friendly_name"])
        return UpdateResult({**news, "sid": id_, "drift": ""})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"SyncService {id_}", "read"):
            service = unless_gone(client, client.sync.v1.services(id_).fetch)
        if service is None:
            return ReadResult("", {})
        drift = "" if service.friendly_name == props.get("friendly_name") else "renamed outside callmask"
        return ReadResult(id_, {**props, "sid": id_, "drift": drift})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Takes the Map and its items along."""
        client = self.client()
        with twilio_operation(f"SyncService {id_}", "delete"):
            service = client.sync.v1.services(id_)
            unless_gone(client, service.delete, confirm=service.fetch)


class SyncService(Resource, module="twilio", name="SyncService"):
    """Outputs: `sid`, `drift`."""

    sid: pulumi.Output[str]
    drift: pulumi.Output[str]

    def __init__(self, name: str, *, friendly_name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(SyncServiceProvider(), name, {"friendly_name": friendly_name, "sid": None, "drift": None},
                         opts)


class SyncMapProvider(TwilioProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return required_text(news, "service_sid", "unique_name")

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return replacing(olds, news, ("service_sid", "unique_name"))

    def create(self, props: dict[str, Any]) -> CreateResult:
        client, name = self.client(), props["unique_name"]
        maps = client.sync.v1.services(props["service_sid"]).sync_maps
        with twilio_operation(f"SyncMap {name}", "create"):
            sync_map = create_once(f"SyncMap {name}", lambda: _map_named(maps, name),
                                   lambda: maps.create(unique_name=name))
        return CreateResult(sync_map.sid, {**props, "sid": sync_map.sid})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"SyncMap {id_}", "read"):
            sync_map = unless_gone(client, client.sync.v1.services(props["service_sid"]).sync_maps(id_).fetch)
        return ReadResult(id_, {**props, "sid": id_}) if sync_map else ReadResult("", {})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = self.client()
        with twilio_operation(f"SyncMap {id_}", "delete"):
            sync_map = client.sync.v1.services(props["service_sid"]).sync_maps(id_)
            unless_gone(client, sync_map.delete, confirm=sync_map.fetch)


def _service_named(services, name: str):
    return next((service for service in services.stream(page_size=50) if service.friendly_name == name), None)


def _map_named(maps, name: str):
    try:
        return maps(name).fetch()
    except TwilioException as error:
        if answer_of(error).status == NOT_FOUND:
            return None
        raise


class SyncMap(Resource, module="twilio", name="SyncMap"):
    """Output: `sid`."""

    sid: pulumi.Output[str]

    def __init__(self, name: str, *, service_sid: pulumi.Input[str], unique_name: str = MAP_NAME,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(SyncMapProvider(), name, {"service_sid": service_sid, "unique_name": unique_name, "sid": None},
                         opts)
