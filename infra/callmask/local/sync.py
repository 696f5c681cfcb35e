"""The local Twilio's Sync API (Services, Maps, Map Items with per-item TTL and `If-Match`) and the account's
standard API keys (API 2010 `Keys`), checked against `twilio_sync_v1.json` and `twilio_api_v2010.json` like
every other route. The PIN guard's Function keeps its counters here; a key made here authenticates like the
account's auth token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from werkzeug.wrappers import Request, Response

from callmask.function.pin_function import GUARD_VARIABLES, guard_variables

SYNC_HOST = "https://sync.twilio.com"
SERVED = "Sync Services with their Maps and Map Items (TTL, If-Match), and the account's API keys"
MAX_KEY_LENGTH = 320
MAX_DATA_BYTES = 16 * 1024


@dataclass
class LocalSync:
    """Mixed into LocalTwilio, whose lock, SIDs, clock and JSON answers it uses."""

    sync_services: dict[str, dict[str, Any]] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)  # SK... -> secret, besides the account's auth token
    key_names: dict[str, dict[str, Any]] = field(default_factory=dict)  # SK... -> friendly name and dates
    # Key secrets are drawn from the account's seed and the key's SID: random for each new account, and the
    # same again for an account restored from a snapshot (a test's cases then send the same requests).
    key_seed: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def sync_routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        service, maps = r"/v1/Services/(IS\w+)", r"/v1/Services/(IS\w+)/Maps"
        item = maps + r"/(MP\w+|[\w-]+)/Items/([^/]+)"
        return [
            ("GET", r"/v1/Services", self._list_sync_services),
            ("POST", r"/v1/Services", self._create_sync_service),
            ("GET", service, self._fetch_sync_service),
            ("DELETE", service, self._delete_sync_service),
            ("GET", maps, self._list_maps),
            ("POST", maps, self._create_map),
            ("GET", maps + r"/(MP\w+|[\w-]+)", self._fetch_map),
            ("DELETE", maps + r"/(MP\w+|[\w-]+)", self._delete_map),
            ("GET", maps + r"/(MP\w+|[\w-]+)/Items", self._list_items),
            ("POST", maps + r"/(MP\w+|[\w-]+)/Items", self._create_item),
            ("GET", item, self._fetch_item),
            ("POST", item, self._update_item),
            ("DELETE", item, self._delete_item),
        ]

    def key_routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        keys = r"/2010-04-01/Accounts/AC\w+/Keys"
        return [
            ("GET", keys + r"\.json", self._list_keys),
            ("POST", keys + r"\.json", self._create_key),
            ("GET", keys + r"/(SK\w+)\.json", self._fetch_key),
            ("POST", keys + r"/(SK\w+)\.json", self._update_key),
            ("DELETE", keys + r"/(SK\w+)\.json", self._delete_key),
        ]

    # ---- what tests and a simulated call use ----
    def pin_guard(self, friendly_name: str) -> dict[str, str]:
        """A Sync Service and Map and an API key, made as a stack's PIN guard makes them: the Function
        variables that reach them here (with the base URL its Twilio client is sent to)."""
        service_sid, map_sid, key_sid = self._sid("IS"), self._sid("MP"), self._sid("SK")
        self.sync_services[service_sid] = {"sid": service_sid, "friendly_name": friendly_name, "date": self._now(),
                                           "maps": {map_sid: {"sid": map_sid, "unique_name": "pin-guard", "items": {},
                                                              "revision": 0, "date": self._now()}}}
        self.key_names[key_sid] = {"friendly_name": friendly_name, "date": self._now()}
        self.api_keys[key_sid] = self._key_secret(key_sid)
        return guard_variables(service_sid, map_sid, key_sid, self.api_keys[key_sid])

    def lock_caller(self, variables: dict[str, str], key: str, masked: str, minutes: int) -> None:
        """The guard's item of a caller locked out for `minutes` from now, as the Function writes it."""
        until = self._now() + timedelta(minutes=minutes)
        milliseconds = int(until.timestamp() * 1000)
        service_variable, map_variable = GUARD_VARIABLES[:2]
        items = self.sync_services[variables[service_variable]]["maps"][variables[map_variable]]["items"]
        items[key] = {"key": key, "revision": 0, "date": self._now(), "updated": self._now(),
                      "expires": until + timedelta(days=1),
                      "data": {"caller": masked, "failures": 0, "windowStart": milliseconds, "lockouts": 1,
                               "lockedUntil": milliseconds, "lockedFailures": 0}}

    # ---- what tests use ----
    def map_items(self, service_sid: str, map_sid: str) -> dict[str, dict[str, Any]]:
        """The live (unexpired) items of a Map, by key."""
        found = self._map_of(service_sid, map_sid)
        return {key: item for key, item in (found[1]["items"] if found else {}).items() if self._alive(item)}

    def expire_items(self, after: timedelta) -> None:
        """Time passes for every item: `after` from now, those whose TTL has run out are gone."""
        for service in self.sync_services.values():
            for sync_map in service["maps"].values():
                for item in sync_map["items"].values():
                    if item["expires"] is not None:
                        item["expires"] -= after

    # ---- Services ----
    def _list_sync_services(self, request, form) -> Response:
        items = [self._sync_service(s) for s in self.sync_services]
        return self._json(200, self._studio_page("services", request, items, SYNC_HOST))

    def _create_sync_service(self, request, form) -> Response:
        service_sid = self._sid("IS")
        self.sync_services[service_sid] = {"sid": service_sid, "friendly_name": form.get("FriendlyName"),
                                           "maps": {}, "date": self._now()}
        return self._json(201, self._sync_service(service_sid))

    def _fetch_sync_service(self, request, form, service_sid) -> Response:
        if service_sid not in self.sync_services:
            return self._not_found(request)
        return self._json(200, self._sync_service(service_sid))

    def _delete_sync_service(self, request, form, service_sid) -> Response:
        if self.sync_services.pop(service_sid, None) is None:
            return self._not_found(request)
        return Response(status=204)

    def _sync_service(self, service_sid: str) -> dict[str, Any]:
        service = self.sync_services[service_sid]
        url = f"{SYNC_HOST}/v1/Services/{service_sid}"
        return {"sid": service_sid, "unique_name": None, "account_sid": self.account(),
                "friendly_name": service["friendly_name"], "date_created": _iso(service["date"]),
                "date_updated": _iso(service["date"]), "url": url, "webhook_url": None,
                "webhooks_from_rest_enabled": False, "reachability_webhooks_enabled": False, "acl_enabled": False,
                "reachability_debouncing_enabled": False, "reachability_debouncing_window": 5000,
                "links": {name: f"{url}/{name}" for name in ("Documents", "Lists", "Maps", "Streams")}}

    # ---- Maps ----
    def _map_of(self, service_sid: str, key: str) -> tuple[str, dict[str, Any]] | None:
        maps = self.sync_services.get(service_sid, {}).get("maps", {})
        return next(((s, m) for s, m in maps.items() if key in (s, m["unique_name"])), None)

    def _list_maps(self, request, form, service_sid) -> Response:
        if service_sid not in self.sync_services:
            return self._not_found(request)
        items = [self._map(service_sid, s) for s in self.sync_services[service_sid]["maps"]]
        return self._json(200, self._studio_page("maps", request, items, SYNC_HOST))

    def _create_map(self, request, form, service_sid) -> Response:
        service = self.sync_services.get(service_sid)
        if service is None:
            return self._not_found(request)
        if form.get("UniqueName") and self._map_of(service_sid, form["UniqueName"]):
            return self._error(409, 54301, f"Unique name {form['UniqueName']} already exists")
        map_sid = self._sid("MP")
        service["maps"][map_sid] = {"sid": map_sid, "unique_name": form.get("UniqueName") or map_sid, "items": {},
                                    "revision": 0, "date": self._now()}
        return self._json(201, self._map(service_sid, map_sid))

    def _fetch_map(self, request, form, service_sid, key) -> Response:
        found = self._map_of(service_sid, key)
        return self._json(200, self._map(service_sid, found[0])) if found else self._not_found(request)

    def _delete_map(self, request, form, service_sid, key) -> Response:
        found = self._map_of(service_sid, key)
        if found is None:
            return self._not_found(request)
        del self.sync_services[service_sid]["maps"][found[0]]
        return Response(status=204)

    def _map(self, service_sid: str, map_sid: str) -> dict[str, Any]:
        sync_map = self.sync_services[service_sid]["maps"][map_sid]
        url = f"{SYNC_HOST}/v1/Services/{service_sid}/Maps/{map_sid}"
        return {"sid": map_sid, "unique_name": sync_map["unique_name"], "account_sid": self.account(),
                "service_sid": service_sid, "url": url, "links": {"items": f"{url}/Items",
                                                                  "permissions": f"{url}/Permissions"},
                "revision": str(sync_map["revision"]), "date_expires": None, "date_created": _iso(sync_map["date"]),
                "date_updated": _iso(sync_map["date"]), "created_by": "system"}

    # ---- Map Items ----
    def _alive(self, item: dict[str, Any]) -> bool:
        return item["expires"] is None or item["expires"] > self._now()

    def _live_item(self, sync_map: dict[str, Any], key: str) -> dict[str, Any] | None:
        item = sync_map["items"].get(key)
        if item is not None and not self._alive(item):
            del sync_map["items"][key]  # Sync deletes an item once its TTL has run out
            return None
        return item

    def _map_or_error(self, service_sid, map_key) -> tuple[str, dict[str, Any]] | Response:
        found = self._map_of(service_sid, map_key)
        return found if found else self._error(404, 54200, f"Map {map_key} not found")

    def _item_or_error(self, request: Request, service_sid, map_key, key, written: bool
                       ) -> tuple[str, dict[str, Any], dict[str, Any]] | Response:
        """(the Map's SID, the Map, the live item), or the error Sync answers; a write (`written`) is also
        refused when its If-Match names another revision."""
        found = self._map_or_error(service_sid, map_key)
        if isinstance(found, Response):
            return found
        item = self._live_item(found[1], key)
        if item is None:
            return self._error(404, 54201, f"Map Item with key {key} not found")
        wanted = request.headers.get("If-Match")
        if written and wanted is not None and wanted != str(item["revision"]):
            return self._error(412, 20412, f"The revision {wanted} does not match the Map Item's current revision")
        return (*found, item)

    def _list_items(self, request, form, service_sid, map_key) -> Response:
        found = self._map_or_error(service_sid, map_key)
        if isinstance(found, Response):
            return found
        keys = sorted(key for key in list(found[1]["items"]) if self._live_item(found[1], key))
        items = [self._item(service_sid, found[0], found[1]["items"][key]) for key in keys]
        return self._json(200, self._studio_page("items", request, items, SYNC_HOST))

    def _create_item(self, request, form, service_sid, map_key) -> Response:
        found = self._map_or_error(service_sid, map_key)
        if isinstance(found, Response):
            return found
        key = form["Key"]
        if problem := _item_problem(key, form["Data"]):
            return self._error(400, 54006, problem)
        if self._live_item(found[1], key):
            return self._error(409, 54208, f"Map Item with key {key} already exists")
        found[1]["items"][key] = {"key": key, "data": json.loads(form["Data"]), "revision": 0, "date": self._now(),
                                  "updated": self._now(), "expires": self._expiry(form)}
        return self._json(201, self._item(service_sid, found[0], found[1]["items"][key]))

    def _fetch_item(self, request, form, service_sid, map_key, key) -> Response:
        found = self._item_or_error(request, service_sid, map_key, key, written=False)
        if isinstance(found, Response):
            return found
        map_sid, _, item = found
        return self._json(200, self._item(service_sid, map_sid, item))

    def _update_item(self, request, form, service_sid, map_key, key) -> Response:
        found = self._item_or_error(request, service_sid, map_key, key, written=True)
        if isinstance(found, Response):
            return found
        map_sid, _, item = found
        if "Data" in form:
            if problem := _item_problem(key, form["Data"]):
                return self._error(400, 54006, problem)
            item["data"] = json.loads(form["Data"])
        if "ItemTtl" in form or "Ttl" in form:
            item["expires"] = self._expiry(form)
        item["revision"] += 1
        item["updated"] = self._now()
        return self._json(200, self._item(service_sid, map_sid, item))

    def _delete_item(self, request, form, service_sid, map_key, key) -> Response:
        found = self._item_or_error(request, service_sid, map_key, key, written=True)
        if isinstance(found, Response):
            return found
        del found[1]["items"][key]
        return Response(status=204)

    def _expiry(self, form) -> datetime | None:
        seconds = int(form.get("ItemTtl") or form.get("Ttl") or 0)
        return self._now() + timedelta(seconds=seconds) if seconds > 0 else None

    def _item(self, service_sid: str, map_sid: str, item: dict[str, Any]) -> dict[str, Any]:
        return {"key": item["key"], "account_sid": self.account(), "service_sid": service_sid, "map_sid": map_sid,
                "url": f"{SYNC_HOST}/v1/Services/{service_sid}/Maps/{map_sid}/Items/{item['key']}",
                "revision": str(item["revision"]), "data": item["data"],
                "date_expires": _iso(item["expires"]) if item["expires"] else None,
                "date_created": _iso(item["date"]), "date_updated": _iso(item["updated"]), "created_by": "system"}

    # ---- API keys ----
    def _list_keys(self, request, form) -> Response:
        return self._json(200, self._page("keys", request, [self._key(s) for s in self.key_names]))

    def _create_key(self, request, form) -> Response:
        key_sid = self._sid("SK")
        self.key_names[key_sid] = {"friendly_name": form.get("FriendlyName") or key_sid, "date": self._now()}
        self.api_keys[key_sid] = self._key_secret(key_sid)
        return self._json(201, {**self._key(key_sid), "secret": self.api_keys[key_sid]})

    def _key_secret(self, key_sid: str) -> str:
        digest = hmac.new(self.key_seed, key_sid.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode()

    def _fetch_key(self, request, form, key_sid) -> Response:
        return self._json(200, self._key(key_sid)) if key_sid in self.key_names else self._not_found(request)

    def _update_key(self, request, form, key_sid) -> Response:
        if key_sid not in self.key_names:
            return self._not_found(request)
        self.key_names[key_sid]["friendly_name"] = form.get("FriendlyName", self.key_names[key_sid]["friendly_name"])
        return self._json(200, self._key(key_sid))

    def _delete_key(self, request, form, key_sid) -> Response:
        if self.key_names.pop(key_sid, None) is None:
            return self._not_found(request)
        self.api_keys.pop(key_sid, None)
        return Response(status=204)

    def _key(self, key_sid: str) -> dict[str, Any]:
        key = self.key_names[key_sid]
        date = key["date"].strftime("%a, %d %b %Y %H:%M:%S +0000")
        return {"sid": key_sid, "friendly_name": key["friendly_name"], "date_created": date, "date_updated": date}


def _item_problem(key: str, data: str) -> str | None:
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"Key must be 1 to {MAX_KEY_LENGTH} characters"
    if len(data.encode()) > MAX_DATA_BYTES:
        return f"Data must be at most {MAX_DATA_BYTES} bytes"
    try:
        return None if isinstance(json.loads(data), dict) else "Data must be a JSON object"
    except ValueError:
        return "Data must be a JSON object"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
