"""A local Twilio: a stateful stand-in for the Twilio endpoints callmask uses, served over real HTTP on
127.0.0.1, for a first run without an account (`make demo`, `callmask local-twilio`) and for the tests.

Every request it receives and every response it sends is checked against Twilio's OpenAPI specs (npm
@twilio-alpha/mcp, pinned in the Makefile), so it cannot drift from Twilio's API: a request the specs do not
allow is answered 400 naming the parameter, and a route it does not serve 404 saying so. The one allowance
is Twilio's documented way to clear a field: sending it empty (`VoiceUrl=`). It can also fail chosen
requests the ways Twilio and the network fail (the tests' fault matrix).
"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import pickle
import re
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, TextIO
from urllib.parse import urlencode

from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import (
    WerkzeugOpenAPIRequest,
    WerkzeugOpenAPIResponse,
)
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from callmask.config.settings import E164
from callmask.local import serverless as local_serverless
from callmask.local import sync as local_sync
from callmask.local.serverless import SERVERLESS_HOST, UPLOAD_HOST, UPLOAD_PATH, LocalServerless
from callmask.local.sync import SYNC_HOST, LocalSync
from callmask.twilio.twilio_api import HOST_HEADER, INCOMING_CALL_PATH

SPEC_DIR = Path(__file__).resolve().parents[3] / ".twilio-oai"  # where `make setup` puts them
STUDIO_HOST, API_HOST, VOICE_HOST = "https://studio.twilio.com", "https://api.twilio.com", "https://voice.twilio.com"
ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "fake-auth-token-5f1e2d3c4b5a69788796a5b4c3d2e1f0"
CONSOLE_NUMBER = "+14155550160"  # the number of a line built in the Console (`local-twilio --console-flow`)
WEBHOOK_HOST = "https://webhooks.twilio.com"
SERVED = ("Studio Flows (/v2/Flows, validate, fetch, update, delete; their revisions, test users, executions, "
          "steps and contexts), the account, its incoming and available local phone numbers, its usage "
          f"triggers, its voice dialing permissions (/v1/DialingPermissions), {local_serverless.SERVED}, and "
          f"{local_sync.SERVED}")


_specs: dict[str, OpenAPI] = {}

# Twilio's specs use formats of their own; each is checked for what it names.
TWILIO_FORMATS: dict[str, Callable[[Any], bool]] = {
    "iso-country-code": lambda value: bool(re.fullmatch(r"[A-Z]{2}", value)),
    "phone-number": lambda value: bool(re.fullmatch(r"\+[1-9]\d{1,14}", value)),
    "date-time-rfc-2822": lambda value: _is_rfc2822(value),
    "http-method": lambda value: value.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"),
    "uri-map": lambda value: isinstance(value, dict),
    "phone-number-capabilities": lambda value: isinstance(value, dict),
}


def _is_rfc2822(value: str) -> bool:
    try:
        return parsedate_to_datetime(value) is not None
    except (TypeError, ValueError):
        return False


def _json_form_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The spec, with its form fields typed as objects (Sync's `Data`) encoded as Twilio takes them: JSON
    text. OpenAPI reads an object in a form as exploded fields unless an `encoding` says otherwise."""
    for path in document["paths"].values():
        for operation in path.values():
            form = operation.get("requestBody", {}).get("content", {}).get(
                "application/x-www-form-urlencoded") if isinstance(operation, dict) else None
            if form is None:
                continue
            for name, schema in form.get("schema", {}).get("properties", {}).items():
                if schema.get("type") == "object":
                    form.setdefault("encoding", {})[name] = {"contentType": "application/json"}
    return document


class SpecsMissing(RuntimeError):
    """Twilio's OpenAPI specs are not where `make setup` puts them."""


def spec(host: str) -> OpenAPI:
    if not _specs:
        for name, spec_host in (("twilio_studio_v2.json", STUDIO_HOST), ("twilio_api_v2010.json", API_HOST),
                                ("twilio_voice_v1.json", VOICE_HOST), ("twilio_serverless_v1.json", SERVERLESS_HOST),
                                ("twilio_sync_v1.json", SYNC_HOST)):
            path = SPEC_DIR / name
            if not path.exists():
                raise SpecsMissing(f"{path} is missing: run `make setup` to fetch Twilio's OpenAPI specs")
            # The spec documents are pinned by hash and checked to be valid OpenAPI once per test run
            # (tests/test_local_twilio.py), not again by every process that loads them (seconds each).
            config = Config(spec_validator_cls=None, extra_format_validators=TWILIO_FORMATS)
            _specs[spec_host] = OpenAPI.from_dict(_json_form_fields(json.loads(path.read_text())), config=config)
        # The specs are tens of thousands of objects that live as long as the process: kept out of the
        # garbage collector's full passes, which would otherwise walk them all now and then.
        gc.freeze()
    return _specs[host]


class SpecRequest(WerkzeugOpenAPIRequest):
    """The request as Twilio would have received it: on Twilio's host, empty (clearing) fields aside."""

    def __init__(self, request: Request, host: str):
        super().__init__(request)
        self.twilio_host = host
        self.form = ImmutableMultiDict([(k, v) for k, v in request.form.items(multi=True) if v != ""])

    @property
    def host_url(self) -> str:
        return self.twilio_host

    @property
    def body(self) -> bytes:
        if self.request.mimetype == "application/x-www-form-urlencoded":
            return urlencode(list(self.form.items(multi=True))).encode()
        return super().body


# How an injected fault fails a request: with an HTTP error answer, or with no answer at all, Twilio
# having acted on the request or not.
# A held request is held until the client gives up (its timeout closes the connection), so a test waits
# exactly the client's timeout and no fixed delay on top.
ANSWER = "answer"                  # an error status (429, 500, 503, 400, 404, ...), nothing done
RESET_BEFORE = "reset before acting"
RESET_AFTER = "reset after acting"
TIMEOUT_BEFORE = "timeout before acting"   # held until the client gives up, never acted on
TIMEOUT_AFTER = "timeout after acting"     # acted on, the answer held until the client gives up
LATE = "acts after the client gave up"     # held until the client gives up, then acted on before the next request
PAUSED = "paused until released"           # held until the test calls release(), then answered as usual
HELD = (TIMEOUT_BEFORE, TIMEOUT_AFTER, LATE)
# The longest any request waits for a late one to land (it lands once its client gives up).
LANDING_SECONDS = 10.0
NO_ANSWER = (RESET_BEFORE, RESET_AFTER, *HELD)


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int = 500
    code: int | None = None
    times: int = 1  # how many matching requests fail; a large number: every attempt
    skip: int = 0  # matching requests let through before the first failure
    held_at_most: float = 10.0  # for the kinds that hold a request: the longest wait (for the client, or release())
    retry_after: str | None = None
    kind: str = ANSWER
    message: str = "Injected failure"  # what an ANSWER says (Twilio's messages may echo what was sent)


@dataclass
class Call:
    method: str
    path: str
    status: int


def sid(prefix: str, counter: itertools.count) -> str:
    return f"{prefix}{next(counter):032x}"


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class LocalTwilio(LocalSync, LocalServerless):
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    usage_triggers: dict[str, dict[str, Any]] = field(default_factory=dict)
    bulk_updates: list[list[dict[str, Any]]] = field(default_factory=list)
    dialing_permissions: dict[str, dict[str, Any]] = field(default_factory=lambda: new_account_permissions())
    available: dict[str, list[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    purchases: list[str] = field(default_factory=list)
    purchases_while_holding_one: list[str] = field(default_factory=list)
    spec_violations: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    invalid_widget_types: set[str] = field(default_factory=set)
    echo_definition_in_errors: bool = False
    unserved: list[str] = field(default_factory=list)
    in_flight: int = 0
    paused: int = 0
    landing: int = 0  # late requests not acted on yet
    holds: int = 0  # requests that have been held: what `wait_for_holds` counts
    log: Callable[[str], None] | None = None  # told each request and each problem (callmask local-twilio)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _released: threading.Event = field(default_factory=threading.Event)
    # The deployed Functions' runtimes as calls reach them (place_call): not part of the account.
    _functions: local_serverless.DeployedFunctions | None = None
    # None: the account's dates are the real time's. A moment: its clock stands still there, so two accounts
    # that saw the same requests are equal to the byte (the fault matrix's cases are compared so).
    clock: datetime | None = None

    def _sid(self, prefix: str) -> str:
        return sid(prefix, self._ids)

    def _now(self) -> datetime:
        return self.clock or now()

    @staticmethod
    def account() -> str:
        return ACCOUNT_SID

    # ---- setup and inspection used by tests ----
    def start(self, port: int = 0) -> "LocalTwilio":
        """Serve on 127.0.0.1 (port 0: any free port; `base_url` says which)."""
        spec(API_HOST)  # loads both specs now, so the first request is not seconds slower than the rest
        self.server = make_server("127.0.0.1", port, self.wsgi, threaded=True, request_handler=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()
        self._stop_functions()

    # The server's own fields, which `reset` keeps: the requests in flight, the log, the lock.
    SERVER_FIELDS = ("in_flight", "landing", "holds", "log", "_lock")
    # What is not the account, kept out of its snapshots: the server's fields and what tests set or saw.
    ACCOUNT_FIELDS_SKIPPED = (*SERVER_FIELDS, "paused", "_released", "faults", "calls", "_functions")

    def reset(self) -> "LocalTwilio":
        """A new account on the same server (one server serves every test of a worker): every field back
        to its default, once no request is in flight."""
        return self._renewed({})

    def account_state(self) -> dict[str, Any]:
        """The account's fields as they are now (not the requests seen or the faults set), once no request is
        in flight: the live objects, to pickle or compare before the next request."""
        self.settle()
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.ACCOUNT_FIELDS_SKIPPED}

    def snapshot(self) -> bytes:
        """The account as it is now, for `restore`: a test that starts many cases from one prepared account
        prepares it once. Pickled: unpickling a copy for each case is five times quicker than deep-copying one."""
        return pickle.dumps(self.account_state())

    def restore(self, snapshot: bytes) -> "LocalTwilio":
        """A new account (as `reset`) holding what the snapshot held."""
        return self._renewed(pickle.loads(snapshot))

    def _renewed(self, account: dict[str, Any]) -> "LocalTwilio":
        """Every field but the server's set to `account`'s value, or else to its default, once no request is
        in flight (a default the account replaces is not made: a new account's dialing permissions are a
        list of every country)."""
        self.release()
        self.settle()
        self._stop_functions()
        with self._lock:
            for spec_field in fields(self):
                if spec_field.name in self.SERVER_FIELDS:
                    continue
                if spec_field.name in account:
                    setattr(self, spec_field.name, account[spec_field.name])
                elif spec_field.default_factory is MISSING:
                    setattr(self, spec_field.name, spec_field.default)
                else:
                    setattr(self, spec_field.name, spec_field.default_factory())
        return self

    def pause(self, method: str, path: str) -> None:
        """Hold the next matching request until `release()`, then answer it (a deploy caught mid-way)."""
        self.fail(method, path, kind=PAUSED, held_at_most=300)

    def wait_until_paused(self, seconds: float = 60.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self.paused > 0, timeout=seconds)

    def release(self) -> None:
        self._released.set()

    def fail(self, method: str, path: str, **fault: Any) -> None:
        self.faults.append(Fault(method, re.compile(path), **fault))

    def own_number(self, phone_number: str, **fields: Any) -> dict[str, Any]:
        """A number the account already owns (bought outside this stack)."""
        return self._create_number(phone_number, {"FriendlyName": fields.pop("friendly_name", phone_number), **fields})

    def writes(self, path_part: str = "") -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "DELETE") and path_part in c.path]

    def reads(self, path_part: str = "") -> list[Call]:
        return [c for c in self.calls if c.method == "GET" and path_part in c.path]

    def edit_flow_in_console(self, flow_sid: str, change: Callable[[dict[str, Any]], None],
                             status: str = "published") -> None:
        """Someone saves (`draft`) or publishes a change to the latest revision in the Console."""
        definition = json.loads(json.dumps(self.flows[flow_sid]["definition"]))
        change(definition)
        self._add_revision(flow_sid, status, definition, "edited in the Console")

    def console_line(self, definition: dict[str, Any], phone_number: str = CONSOLE_NUMBER) -> tuple[str, str]:
        """A line built in the Studio editor: the flow published with the Console's commit message, and a
        number the account owns whose voice URL is its webhook. (flow SID, number)"""
        flow_sid = sid("FW", self._ids)
        self.flows[flow_sid] = {"sid": flow_sid, "friendly_name": "Dial-out line", "revisions": [],
                                "test_users": [], "date_created": self._now()}
        self._add_revision(flow_sid, "published", definition, "Published from the Studio editor")
        self.own_number(phone_number, friendly_name="Dial-out line", voice_url=self._flow(flow_sid)["webhook_url"])
        return flow_sid, phone_number

    def set_test_users_in_console(self, flow_sid: str, numbers: list[str]) -> None:
        self.flows[flow_sid]["test_users"] = list(numbers)

    # ---- HTTP ----
    def wsgi(self, environ, start_response):
        with self._lock:
            self.in_flight += 1
        try:
            return self._answer(environ, start_response)
        finally:
            with self._lock:
                self.in_flight -= 1
                self._lock.notify_all()

    def settle(self, seconds: float = 10.0) -> None:
        """Wait until no request is being held (an operator re-runs after late requests have landed)."""
        with self._lock:
            self._lock.wait_for(lambda: self.in_flight == 0, timeout=seconds)

    def _answer(self, environ, start_response):
        request = Request(environ)
        host = _host_of(request)
        if not self._authenticated(request):
            response = self._error(401, 20003, "Authenticate", headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})
            return self._refuse(request, response)(environ, start_response)
        if request.path == INCOMING_CALL_PATH and request.method == "POST":
            return self._incoming_call(request)(environ, start_response)
        handler = self._handler(request, host)
        if handler is None:
            return self._refuse(request, self._unserved(request))(environ, start_response)
        request_key = _request_key(request, host)  # what both verdicts are remembered by
        if violation := _verdict(request_key, lambda: _request_violation(request, host)):
            self.spec_violations.append(violation)
            message = f"Invalid {violation} (not what Twilio's OpenAPI spec allows)"
            return self._refuse(request, self._error(400, 70002, message))(environ, start_response)
        fault = self._take_fault(request)
        late = fault is not None and fault.kind == LATE
        with self._lock:
            if late:
                self.landing += 1
            else:  # a late request lands before the client's next one is answered: one order in every run
                self._lock.wait_for(lambda: self.landing == 0, timeout=LANDING_SECONDS)
        if fault and fault.kind == ANSWER:
            response = self._error(fault.status, fault.code or fault.status, fault.message,
                                   headers={"Retry-After": fault.retry_after} if fault.retry_after else None)
        elif fault and fault.kind in (RESET_BEFORE, TIMEOUT_BEFORE):
            response = None
        else:
            if fault and fault.kind == LATE:
                self._hold(environ, fault)
            if fault and fault.kind == PAUSED:
                self._wait_for_release(fault.held_at_most)
            with self._lock:
                try:
                    response = handler()
                except (KeyError, ValueError) as error:  # allowed by the spec, but not readable (bad JSON)
                    response = self._error(400, 70002, f"The local Twilio cannot read {request.method} "
                                                       f"{request.path}: {type(error).__name__}: {error}")
                finally:
                    if late:
                        self.landing -= 1
                        self._lock.notify_all()
        self.calls.append(Call(request.method, request.path, response.status_code if response else 0))
        if self.log:
            answer = response.status_code if response else "no answer"
            self.log(f"{request.method} {request.full_path.rstrip('?')} -> {answer}")
        if response is not None:
            self._validate_response(request_key, request, response, host)
        if fault and fault.kind in (TIMEOUT_BEFORE, TIMEOUT_AFTER):
            self._hold(environ, fault)
        if fault and fault.kind in NO_ANSWER:
            # Cut the connection; the answer written below goes nowhere (for the held kinds the client
            # gave up long ago).
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
        return (response or Response(status=204))(environ, start_response)

    def _authenticated(self, request: Request) -> bool:
        """HTTP Basic with the account SID and its auth token, or an API key (SK...) and its secret, as
        Twilio takes them; anything else is Twilio's 401."""
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return False
        if auth.username == ACCOUNT_SID:
            return auth.password == AUTH_TOKEN
        return auth.username in self.api_keys and self.api_keys[auth.username] == auth.password

    def _wait_for_release(self, at_most: float) -> None:
        with self._lock:
            self.paused += 1
            self._lock.notify_all()
        self._released.wait(at_most)
        with self._lock:
            self.paused -= 1

    def _hold(self, environ, fault: Fault) -> None:
        """Hold a request until its client gives up, once it has done what its kind does before that (a
        timeout after acting has acted, a late request counts as landing): `wait_for_holds` is told."""
        with self._lock:
            self.holds += 1
            self._lock.notify_all()
        _wait_for_the_client_to_give_up(environ, fault.held_at_most)

    def wait_for_holds(self, count: int, seconds: float = 10.0) -> bool:
        """Wait until `count` requests in all have been held (False if they have not within `seconds`): a
        client that gave up on a request at once goes on as it would after a real timeout, with the held
        request where its kind leaves it."""
        with self._lock:
            return self._lock.wait_for(lambda: self.holds >= count, timeout=seconds)

    def holds_next(self, method: str, path: str) -> bool:
        """Whether the next `method path` request will be held (gets no answer until its client gives up)."""
        fault = self._armed_for(method, path)
        return fault is not None and fault.skip == 0 and fault.kind in HELD

    def _armed_for(self, method: str, path: str) -> Fault | None:
        """The fault the next `method path` request meets: it fails it, or lets it through while it skips."""
        return next((fault for fault in self.faults
                     if fault.times > 0 and fault.method == method and fault.path.search(path)), None)

    def _take_fault(self, request: Request) -> Fault | None:
        fault = self._armed_for(request.method, request.path)
        if fault is None:
            return None
        if fault.skip > 0:
            fault.skip -= 1
            return None
        fault.times -= 1
        return fault

    def _unserved(self, request: Request) -> Response:
        self.unserved.append(f"{request.method} {request.path}")
        return self._error(404, 20404, f"The local Twilio does not serve {request.method} {request.path}: it "
                                       f"serves {SERVED}, each checked against Twilio's OpenAPI specs")

    def _refuse(self, request: Request, response: Response) -> Response:
        self.calls.append(Call(request.method, request.path, response.status_code))
        if self.log:
            message = json.loads(response.get_data())["message"]
            self.log(f"{request.method} {request.path} -> {response.status_code}: {message}")
        return response

    def _validate_response(self, request_key: tuple, request: Request, response: Response, host: str) -> None:
        key = (request_key, response.status_code, response.mimetype, tuple(response.headers.items()),
               response.get_data())
        if violation := _verdict(key, lambda: _response_violation(request, response, host)):
            self.spec_violations.append(violation)
            if self.log:
                self.log(f"the local Twilio's own answer is outside the spec: {violation}")

    def _handler(self, request: Request, host: str) -> Callable[[], Response] | None:
        """The route that answers this request on `host`, or None when the local Twilio does not serve it."""
        method, path = request.method, request.path
        if host == SYNC_HOST:
            routes = self.sync_routes()
        else:
            routes = self.flow_routes() + self.key_routes() + self.serverless_routes()
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return lambda: handler(request, request.form, *match.groups())
        return None

    def flow_routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        return [
            ("POST", r"/v2/Flows/Validate", self._validate_flow),
            ("GET", r"/v2/Flows", self._list_flows),
            ("POST", r"/v2/Flows", self._create_flow),
            ("GET", r"/v2/Flows/(FW\w+)", self._fetch_flow),
            ("POST", r"/v2/Flows/(FW\w+)", self._update_flow),
            ("DELETE", r"/v2/Flows/(FW\w+)", self._delete_flow),
            ("GET", r"/v2/Flows/(FW\w+)/Revisions", self._list_revisions),
            ("GET", r"/v2/Flows/(FW\w+)/Revisions/(\w+)", self._fetch_revision),
            ("GET", r"/v2/Flows/(FW\w+)/TestUsers", self._fetch_test_users),
            ("POST", r"/v2/Flows/(FW\w+)/TestUsers", self._update_test_users),
            ("GET", r"/v2/Flows/(FW\w+)/Executions", self._list_executions),
            ("GET", r"/v2/Flows/(FW\w+)/Executions/(FN\w+)", self._fetch_execution),
            ("GET", r"/v2/Flows/(FW\w+)/Executions/(FN\w+)/Context", self._execution_context),
            ("GET", r"/v2/Flows/(FW\w+)/Executions/(FN\w+)/Steps", self._list_steps),
            ("GET", r"/v2/Flows/(FW\w+)/Executions/(FN\w+)/Steps/(FT\w+)/Context", self._step_context),
            ("GET", r"/2010-04-01/Accounts/(AC\w+)\.json", self._fetch_account),
            ("GET", r"/2010-04-01/Accounts/AC\w+/Usage/Triggers\.json", self._list_triggers),
            ("POST", r"/2010-04-01/Accounts/AC\w+/Usage/Triggers\.json", self._create_trigger),
            ("GET", r"/2010-04-01/Accounts/AC\w+/Usage/Triggers/(UT\w+)\.json", self._fetch_trigger),
            ("POST", r"/2010-04-01/Accounts/AC\w+/Usage/Triggers/(UT\w+)\.json", self._update_trigger),
            ("DELETE", r"/2010-04-01/Accounts/AC\w+/Usage/Triggers/(UT\w+)\.json", self._delete_trigger),
            ("GET", r"/v1/DialingPermissions/Countries", self._list_countries),
            ("GET", r"/v1/DialingPermissions/Countries/([A-Z]{2})", self._fetch_country),
            ("GET", r"/v1/DialingPermissions/Countries/([A-Z]{2})/HighRiskSpecialPrefixes", self._list_prefixes),
            ("POST", r"/v1/DialingPermissions/BulkCountryUpdates", self._bulk_country_update),
            ("GET", r"/2010-04-01/Accounts/AC\w+/AvailablePhoneNumbers/(\w\w)/(Local|Mobile|TollFree)\.json",
             self._search_numbers),
            ("GET", r"/2010-04-01/Accounts/AC\w+/IncomingPhoneNumbers\.json", self._list_numbers),
            ("POST", r"/2010-04-01/Accounts/AC\w+/IncomingPhoneNumbers\.json", self._buy_number),
            ("GET", r"/2010-04-01/Accounts/AC\w+/IncomingPhoneNumbers/(PN\w+)\.json", self._fetch_number),
            ("POST", r"/2010-04-01/Accounts/AC\w+/IncomingPhoneNumbers/(PN\w+)\.json", self._update_number),
            ("DELETE", r"/2010-04-01/Accounts/AC\w+/IncomingPhoneNumbers/(PN\w+)\.json", self._release_number),
        ]

    # ---- Studio ----
    def _definition_errors(self, text: str) -> list[str]:
        try:
            definition = json.loads(text)
        except json.JSONDecodeError:
            return ["Definition is not valid JSON"]
        names = [state.get("name") for state in definition.get("states", [])]
        errors = [] if definition.get("initial_state") in names else ["initial_state names no widget"]
        for state in definition.get("states", []):
            if state.get("type") in self.invalid_widget_types:
                errors.append(f"Widget {state['name']}: unsupported type {state['type']}")
            errors += [f"Widget {state['name']}: transition to unknown widget {t['next']}"
                       for t in state.get("transitions", []) if t.get("next") and t["next"] not in names]
        return errors

    def _validate_flow(self, request, form) -> Response:
        errors = self._definition_errors(form["Definition"])
        if errors and self.echo_definition_in_errors:
            errors.append(f"in definition {form['Definition']}")
        if errors:
            return self._error(400, 20001, "Invalid Flow Definition", details={"errors": errors})
        return self._json(200, {"valid": True})

    def _list_flows(self, request, form) -> Response:
        page_size = int(request.args.get("PageSize", 50))
        url = f"{STUDIO_HOST}/v2/Flows?PageSize={page_size}&Page=0"
        flows = [{**self._flow(flow_sid), "definition": None, "valid": None, "errors": None, "warnings": None}
                 for flow_sid in self.flows]
        return self._json(200, {"flows": flows, "meta": {
            "first_page_url": url, "key": "flows", "next_page_url": None, "page": 0, "page_size": page_size,
            "previous_page_url": None, "url": url}})

    def _create_flow(self, request, form) -> Response:
        definition = json.loads(form["Definition"])
        flow_sid = sid("FW", self._ids)
        self.flows[flow_sid] = {"sid": flow_sid, "friendly_name": form["FriendlyName"], "revisions": [],
                                "test_users": [], "date_created": self._now()}
        self._add_revision(flow_sid, form["Status"], definition, form.get("CommitMessage"))
        return self._json(201, self._flow(flow_sid))

    def _add_revision(self, flow_sid: str, status: str, definition: dict[str, Any], message: str | None) -> None:
        """Every write is a new, immutable revision; the flow shows the latest, callers get the latest
        published one (test users the latest revision, draft or not)."""
        flow = self.flows[flow_sid]
        revision = {"revision": len(flow["revisions"]) + 1, "status": status, "definition": definition,
                    "commit_message": message, "friendly_name": flow["friendly_name"], "date_created": self._now(),
                    "date_updated": self._now()}
        flow["revisions"].append(revision)
        flow.update({key: revision[key] for key in ("revision", "status", "definition", "commit_message")},
                    date_updated=revision["date_updated"])

    def published_revision(self, flow_sid: str) -> dict[str, Any] | None:
        return next((r for r in reversed(self.flows[flow_sid]["revisions"]) if r["status"] == "published"), None)

    def _fetch_flow(self, request, form, flow_sid) -> Response:
        if flow_sid not in self.flows:
            return self._error(404, 20404, f"The requested resource /Flows/{flow_sid} was not found")
        return self._json(200, self._flow(flow_sid))

    def _update_flow(self, request, form, flow_sid) -> Response:
        if flow_sid not in self.flows:
            return self._error(404, 20404, f"The requested resource /Flows/{flow_sid} was not found")
        flow = self.flows[flow_sid]
        if "FriendlyName" in form:
            flow["friendly_name"] = form["FriendlyName"]
        definition = json.loads(form["Definition"]) if "Definition" in form else flow["definition"]
        self._add_revision(flow_sid, form["Status"], definition, form.get("CommitMessage"))
        return self._json(200, self._flow(flow_sid))

    def _delete_flow(self, request, form, flow_sid) -> Response:
        if self.flows.pop(flow_sid, None) is None:
            return self._error(404, 20404, f"The requested resource /Flows/{flow_sid} was not found")
        for execution_sid in [e for e, execution in self.executions.items() if execution["flow_sid"] == flow_sid]:
            del self.executions[execution_sid]
        return Response(status=204)

    def _list_revisions(self, request, form, flow_sid) -> Response:
        if flow_sid not in self.flows:
            return self._not_found(request)
        revisions = [{**self._revision(flow_sid, r), "definition": None}
                     for r in reversed(self.flows[flow_sid]["revisions"])]
        return self._json(200, self._studio_page("revisions", request, revisions))

    def _fetch_revision(self, request, form, flow_sid, wanted) -> Response:
        flow = self.flows.get(flow_sid)
        revisions = flow["revisions"] if flow else []
        if wanted == "LatestPublished":
            found = self.published_revision(flow_sid) if flow else None
        elif wanted == "LatestRevision":
            found = revisions[-1] if revisions else None
        else:
            found = next((r for r in revisions if str(r["revision"]) == wanted), None)
        if found is None:
            return self._not_found(request)
        return self._json(200, self._revision(flow_sid, found))

    def _revision(self, flow_sid: str, revision: dict[str, Any]) -> dict[str, Any]:
        return {**revision, "sid": flow_sid, "account_sid": ACCOUNT_SID, "valid": True, "errors": [],
                "date_created": _iso(revision["date_created"]), "date_updated": _iso(revision["date_updated"]),
                "url": f"{STUDIO_HOST}/v2/Flows/{flow_sid}/Revisions/{revision['revision']}"}

    def _fetch_test_users(self, request, form, flow_sid) -> Response:
        if flow_sid not in self.flows:
            return self._not_found(request)
        return self._json(200, self._test_users(flow_sid))

    def _update_test_users(self, request, form, flow_sid) -> Response:
        if flow_sid not in self.flows:
            return self._not_found(request)
        self.flows[flow_sid]["test_users"] = form.getlist("TestUsers")
        return self._json(200, self._test_users(flow_sid))

    def _test_users(self, flow_sid: str) -> dict[str, Any]:
        return {"sid": flow_sid, "test_users": list(self.flows[flow_sid]["test_users"]),
                "url": f"{STUDIO_HOST}/v2/Flows/{flow_sid}/TestUsers"}

    def _flow(self, flow_sid: str) -> dict[str, Any]:
        flow = self.flows[flow_sid]
        url = f"{STUDIO_HOST}/v2/Flows/{flow_sid}"
        shown = {key: value for key, value in flow.items() if key not in ("revisions", "test_users")}
        return {**shown, "account_sid": ACCOUNT_SID, "valid": True, "errors": [], "warnings": [],
                "date_created": _iso(flow["date_created"]), "date_updated": _iso(flow["date_updated"]),
                "webhook_url": f"{WEBHOOK_HOST}/v1/Accounts/{ACCOUNT_SID}/Flows/{flow_sid}", "url": url,
                "links": {"test_users": f"{url}/TestUsers", "revisions": f"{url}/Revisions",
                          "executions": f"{url}/Executions"}}

    # ---- calls and Studio executions ----
    def _incoming_call(self, request: Request) -> Response:
        """`callmask call`: a call to one of the account's numbers, as `place_call` plays it. Not a Twilio API
        (Twilio takes real calls), so no spec covers it: its few fields are checked here."""
        from callmask.studio.call_simulation import DIAL_STATUSES

        form = request.form
        to, caller = form.get("To", ""), form.get("From", "")
        dial_status = form.get("DialStatus", "completed")
        problem = ("To and From must be E.164 numbers" if not (E164.fullmatch(to) and E164.fullmatch(caller)) else
                   f"the account has no number {to}" if not any(n["phone_number"] == to for n in self.numbers.values())
                   else f"DialStatus {dial_status!r} is not one of {', '.join(DIAL_STATUSES)}"
                   if dial_status not in DIAL_STATUSES else None)
        if problem is None and (flow_sid := self._flow_of_number(to)) is None:
            problem = f"{to}'s voice URL is not a Studio flow of this account"
        if problem:
            return self._error(400, 21201, problem)
        execution = self.place_call(to, caller, form.getlist("Press"), dial_status=dial_status,
                                    hangup=form.get("Hangup") == "true")
        self.calls.append(Call("POST", request.path, 201))
        return self._json(201, {"execution_sid": execution["sid"], "flow_sid": flow_sid,
                                "revision": execution["revision"], "transcript": execution["transcript"]})

    def _deployed_functions(self) -> local_serverless.DeployedFunctions:
        """The Functions as calls reach them: each runtime started by the first call that needs it and kept,
        as Twilio keeps a Function warm between calls, until the account is reset or the server stops."""
        with self._lock:
            if self._functions is None:
                self._functions = local_serverless.DeployedFunctions(self)
            return self._functions

    def _stop_functions(self) -> None:
        functions, self._functions = self._functions, None
        if functions is not None:
            functions.close()

    def _flow_of_number(self, phone_number: str) -> str | None:
        number = next(n for n in self.numbers.values() if n["phone_number"] == phone_number)
        flow_sid = (number["voice_url"] or "").rstrip("/").rsplit("/", 1)[-1]
        return flow_sid if flow_sid in self.flows else None

    def place_call(self, to: str, caller: str, presses: list[str], dial_status: str = "completed",
                   duration: int = 42, hangup: bool = False, when: datetime | None = None) -> dict[str, Any]:
        """A call to one of the account's numbers, played through the flow its voice URL points at: a test
        user gets the flow's latest revision (a draft, if there is one), everyone else the latest published
        one. Kept as Studio keeps it, an execution with its steps and context (the gathered digits too)."""
        from callmask.studio.call_simulation import CallerInput, CallSimulator  # python-liquid: only for calls
        from callmask.studio.call_transcript import transcript

        flow_sid = self._flow_of_number(to)
        flow = self.flows[flow_sid]
        revision = flow["revisions"][-1] if caller in flow["test_users"] else self.published_revision(flow_sid)
        result = CallSimulator(revision["definition"], to, twiml_service=self._deployed_functions()).run(
            [CallerInput("keys", keys) for keys in presses], dial_status=dial_status, hangup=hangup, caller=caller)
        context = json.loads(json.dumps(result.context))
        context["flow"]["flow_sid"] = flow_sid
        for step in result.steps:
            if step.dial and dial_status in ("completed", "answered"):
                context["widgets"][step.widget]["DialCallDuration"] = str(duration)
        moment = (when or self._now()).replace(microsecond=0)
        execution_sid = sid("FN", self._ids)
        steps = []
        nexts = result.next_widgets + [None] * (len(result.steps) - len(result.next_widgets))
        for step, following in zip(result.steps, nexts):
            if step.event is None:
                break
            steps.append({"sid": sid("FT", self._ids), "name": step.event, "transitioned_from": step.widget,
                          "transitioned_to": following or "Ended",
                          "context": {"widgets": {step.widget: context["widgets"].get(step.widget, {})}}})
        with self._lock:
            self.executions[execution_sid] = {"sid": execution_sid, "flow_sid": flow_sid, "steps": steps,
                                              "revision": revision["revision"], "contact_channel_address": caller,
                                              "context": context, "date_created": moment,
                                              "transcript": transcript(result)}
        return self.executions[execution_sid]

    def _list_executions(self, request, form, flow_sid) -> Response:
        if flow_sid not in self.flows:
            return self._not_found(request)
        since, until = request.args.get("DateCreatedFrom"), request.args.get("DateCreatedTo")
        found = [e for e in self.executions.values() if e["flow_sid"] == flow_sid
                 and (not since or e["date_created"] >= datetime.fromisoformat(since.replace("Z", "+00:00")))
                 and (not until or e["date_created"] <= datetime.fromisoformat(until.replace("Z", "+00:00")))]
        found.sort(key=lambda e: (e["date_created"], e["sid"]), reverse=True)  # newest first, as Twilio lists
        return self._json(200, self._studio_page("executions", request,
                                                 [{**self._execution(e), "context": None} for e in found]))

    def _execution_of(self, flow_sid: str, execution_sid: str) -> dict[str, Any] | None:
        execution = self.executions.get(execution_sid)
        return execution if execution and execution["flow_sid"] == flow_sid else None

    def _fetch_execution(self, request, form, flow_sid, execution_sid) -> Response:
        if not (execution := self._execution_of(flow_sid, execution_sid)):
            return self._not_found(request)
        return self._json(200, self._execution(execution))

    def _execution_context(self, request, form, flow_sid, execution_sid) -> Response:
        if not (execution := self._execution_of(flow_sid, execution_sid)):
            return self._not_found(request)
        return self._json(200, {"account_sid": ACCOUNT_SID, "context": execution["context"], "flow_sid": flow_sid,
                                "execution_sid": execution_sid, "url": f"{STUDIO_HOST}{request.path}"})

    def _list_steps(self, request, form, flow_sid, execution_sid) -> Response:
        if not (execution := self._execution_of(flow_sid, execution_sid)):
            return self._not_found(request)
        steps = [{**self._step(execution, step), "context": None} for step in execution["steps"]]
        return self._json(200, self._studio_page("steps", request, steps))

    def _step_context(self, request, form, flow_sid, execution_sid, step_sid) -> Response:
        execution = self._execution_of(flow_sid, execution_sid)
        step = next((s for s in execution["steps"] if s["sid"] == step_sid), None) if execution else None
        if step is None:
            return self._not_found(request)
        return self._json(200, {"account_sid": ACCOUNT_SID, "context": step["context"], "execution_sid": execution_sid,
                                "flow_sid": flow_sid, "step_sid": step_sid, "url": f"{STUDIO_HOST}{request.path}"})

    def _execution(self, execution: dict[str, Any]) -> dict[str, Any]:
        url = f"{STUDIO_HOST}/v2/Flows/{execution['flow_sid']}/Executions/{execution['sid']}"
        return {"sid": execution["sid"], "account_sid": ACCOUNT_SID, "flow_sid": execution["flow_sid"],
                "contact_channel_address": execution["contact_channel_address"], "context": execution["context"],
                "status": "ended", "date_created": _iso(execution["date_created"]),
                "date_updated": _iso(execution["date_created"]), "url": url,
                "links": {"steps": f"{url}/Steps", "execution_context": f"{url}/Context"}}

    def _step(self, execution: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        url = f"{STUDIO_HOST}/v2/Flows/{execution['flow_sid']}/Executions/{execution['sid']}/Steps/{step['sid']}"
        return {**step, "account_sid": ACCOUNT_SID, "flow_sid": execution["flow_sid"],
                "execution_sid": execution["sid"], "parent_step_sid": None,
                "date_created": _iso(execution["date_created"]), "date_updated": _iso(execution["date_created"]),
                "url": url, "links": {"step_context": f"{url}/Context"}}

    @staticmethod
    def _studio_page(key: str, request: Request, items: list[dict[str, Any]],
                     host: str = STUDIO_HOST) -> dict[str, Any]:
        """One page of a list of Twilio's newer APIs (Studio, Voice), `Page` counted from 0; next_page_url
        while more remain."""
        size, page = int(request.args.get("PageSize", 50)), int(request.args.get("Page", 0))
        def url(number: int) -> str:
            query = {**request.args.to_dict(), "PageSize": size, "Page": number}
            if number:
                query["PageToken"] = f"PA{number * size}"
            else:
                query.pop("PageToken", None)
            return f"{host}{request.path}?{urlencode(query)}"
        more = (page + 1) * size < len(items)
        return {key: items[page * size:(page + 1) * size], "meta": {
            "first_page_url": url(0), "key": key, "next_page_url": url(page + 1) if more else None, "page": page,
            "page_size": size, "previous_page_url": url(page - 1) if page else None, "url": url(page)}}

    # ---- usage triggers ----
    def _list_triggers(self, request, form) -> Response:
        wanted = {key: request.args.get(arg) for key, arg in (
            ("usage_category", "UsageCategory"), ("trigger_by", "TriggerBy"), ("recurring", "Recurring"))
            if request.args.get(arg)}
        found = [self._trigger(t) for t in self.usage_triggers.values()
                 if all(t[key] == value for key, value in wanted.items())]
        return self._json(200, self._page("usage_triggers", request, found))

    def _create_trigger(self, request, form) -> Response:
        trigger_sid = sid("UT", self._ids)
        self.usage_triggers[trigger_sid] = {
            "sid": trigger_sid, "callback_url": form["CallbackUrl"], "callback_method": form.get("CallbackMethod", "POST"),
            "trigger_value": form["TriggerValue"], "usage_category": form["UsageCategory"],
            "trigger_by": form.get("TriggerBy", "usage"), "recurring": form.get("Recurring", "alltime"),
            "friendly_name": form.get("FriendlyName", ""), "date_created": self._now(), "date_updated": self._now()}
        return self._json(201, self._trigger(self.usage_triggers[trigger_sid]))

    def _fetch_trigger(self, request, form, trigger_sid) -> Response:
        if trigger_sid not in self.usage_triggers:
            return self._not_found(request)
        return self._json(200, self._trigger(self.usage_triggers[trigger_sid]))

    def _update_trigger(self, request, form, trigger_sid) -> Response:
        if trigger_sid not in self.usage_triggers:
            return self._not_found(request)
        trigger = self.usage_triggers[trigger_sid]
        for form_key, key in (("CallbackUrl", "callback_url"), ("CallbackMethod", "callback_method"),
                              ("FriendlyName", "friendly_name")):
            if form_key in form:
                trigger[key] = form[form_key]
        trigger["date_updated"] = self._now()
        return self._json(200, self._trigger(trigger))

    def _delete_trigger(self, request, form, trigger_sid) -> Response:
        if self.usage_triggers.pop(trigger_sid, None) is None:
            return self._not_found(request)
        return Response(status=204)

    @staticmethod
    def _trigger(trigger: dict[str, Any]) -> dict[str, Any]:
        uri = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Usage/Triggers/{trigger['sid']}.json"
        return {**trigger, "account_sid": ACCOUNT_SID, "api_version": "2010-04-01", "current_value": "0.00",
                "date_created": format_datetime(trigger["date_created"]),
                "date_updated": format_datetime(trigger["date_updated"]), "date_fired": None, "uri": uri,
                "usage_record_uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Usage/Records?Category="
                                    f"{trigger['usage_category']}"}

    # ---- voice dialing permissions ----
    def _list_countries(self, request, form) -> Response:
        wanted = {key: request.args.get(arg) for key, arg in (
            ("iso_code", "IsoCode"), ("continent", "Continent"), ("low_risk_numbers_enabled", "LowRiskNumbersEnabled"),
            ("high_risk_special_numbers_enabled", "HighRiskSpecialNumbersEnabled"),
            ("high_risk_tollfraud_numbers_enabled", "HighRiskTollfraudNumbersEnabled")) if request.args.get(arg)}
        code = request.args.get("CountryCode")
        found = [self._country(c) for c in self.dialing_permissions.values()
                 if all(str(c[key]).lower() == value.lower() for key, value in wanted.items())
                 and (not code or f"+{code.lstrip('+')}" in c["country_codes"])]
        return self._json(200, self._studio_page("content", request, found, VOICE_HOST))

    def _fetch_country(self, request, form, iso_code) -> Response:
        if iso_code not in self.dialing_permissions:
            return self._not_found(request)
        return self._json(200, self._country(self.dialing_permissions[iso_code]))

    def _list_prefixes(self, request, form, iso_code) -> Response:
        if iso_code not in self.dialing_permissions:
            return self._not_found(request)
        prefixes = [{"prefix": prefix} for prefix in self.dialing_permissions[iso_code]["high_risk_prefixes"]]
        return self._json(200, self._studio_page("content", request, prefixes, VOICE_HOST))

    def _bulk_country_update(self, request, form) -> Response:
        """One call for many countries: each update names `iso_code` and the flags to set, as text."""
        updates = json.loads(form["UpdateRequest"])
        if not isinstance(updates, list) or not all(isinstance(u, dict) and u.get("iso_code") in self.dialing_permissions
                                                    for u in updates):
            return self._error(400, 21201, "UpdateRequest must be a JSON array of updates naming known iso_codes")
        flags = ("low_risk_numbers_enabled", "high_risk_special_numbers_enabled", "high_risk_tollfraud_numbers_enabled")
        for update in updates:
            for flag in flags:
                if flag in update:
                    if str(update[flag]).lower() not in ("true", "false"):
                        return self._error(400, 21201, f"{flag} must be \"true\" or \"false\"")
            country = self.dialing_permissions[update["iso_code"]]
            country.update({flag: str(update[flag]).lower() == "true" for flag in flags if flag in update})
        self.bulk_updates.append(updates)
        return self._json(201, {"update_count": len(updates), "update_request": form["UpdateRequest"]})

    @staticmethod
    def _country(country: dict[str, Any]) -> dict[str, Any]:
        url = f"{VOICE_HOST}/v1/DialingPermissions/Countries/{country['iso_code']}"
        shown = {key: value for key, value in country.items() if key != "high_risk_prefixes"}
        return {**shown, "url": url, "links": {"highrisk_special_prefixes": f"{url}/HighRiskSpecialPrefixes"}}

    # ---- the account ----
    def _fetch_account(self, request, form, account_sid) -> Response:
        if account_sid != ACCOUNT_SID:
            return self._not_found(request)
        created = format_datetime(datetime(2024, 1, 1, tzinfo=timezone.utc))
        return self._json(200, {"auth_token": "[Redacted]", "date_created": created, "date_updated": created,
                                "friendly_name": "callmask tests", "owner_account_sid": ACCOUNT_SID, "sid": ACCOUNT_SID,
                                "status": "active", "subresource_uris": {}, "type": "Full",
                                "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"})

    # ---- phone numbers ----
    def _search_numbers(self, request, form, country, kind) -> Response:
        """Numbers for sale (each one voice-capable, of every kind: the tests sell a few, not a catalogue)."""
        area_code = request.args.get("AreaCode", "")
        contains = request.args.get("Contains", "").replace("*", "")
        found = [n for n in self.available.get(country, [])
                 if n.startswith(f"+1{area_code}") and contains in n]
        return self._json(200, self._page("available_phone_numbers", request, [
            {"friendly_name": n, "phone_number": n, "lata": None, "locality": None, "rate_center": None,
             "latitude": None, "longitude": None, "region": None, "postal_code": None, "iso_country": country,
             "address_requirements": "none", "beta": False,
             "capabilities": {"voice": True, "SMS": True, "MMS": True, "fax": False}} for n in found]))

    def _list_numbers(self, request, form) -> Response:
        wanted_number, wanted_name = request.args.get("PhoneNumber"), request.args.get("FriendlyName")
        found = [self._number(n) for n in self.numbers.values()
                 if (not wanted_number or wanted_number in n["phone_number"])
                 and (not wanted_name or wanted_name == n["friendly_name"])]
        return self._json(200, self._page("incoming_phone_numbers", request, found))

    def _buy_number(self, request, form) -> Response:
        phone_number = form["PhoneNumber"]
        for_sale = [n for numbers in self.available.values() for n in numbers]
        if phone_number not in for_sale:
            return self._error(400, 21422, "PhoneNumber requested is not available")
        for numbers in self.available.values():
            if phone_number in numbers:
                numbers.remove(phone_number)
        if any(number["phone_number"] in self.purchases for number in self.numbers.values()):
            self.purchases_while_holding_one.append(phone_number)
        self.purchases.append(phone_number)
        return self._json(201, self._number(self._create_number(phone_number, form)))

    def _create_number(self, phone_number: str, form) -> dict[str, Any]:
        number_sid = sid("PN", self._ids)
        self.numbers[number_sid] = {
            "sid": number_sid, "phone_number": phone_number, "friendly_name": form.get("FriendlyName", phone_number),
            "voice_url": form.get("voice_url", "https://demo.twilio.com/welcome/voice/"), "voice_method": "POST",
            "voice_application_sid": form.get("voice_application_sid"), "trunk_sid": form.get("trunk_sid"),
            "date_created": self._now(), "date_updated": self._now()}
        return self.numbers[number_sid]

    def _fetch_number(self, request, form, number_sid) -> Response:
        if number_sid not in self.numbers:
            return self._not_found(request)
        return self._json(200, self._number(self.numbers[number_sid]))

    def _update_number(self, request, form, number_sid) -> Response:
        if number_sid not in self.numbers:
            return self._not_found(request)
        number = self.numbers[number_sid]
        fields = {"VoiceUrl": "voice_url", "VoiceMethod": "voice_method", "FriendlyName": "friendly_name",
                  "VoiceApplicationSid": "voice_application_sid"}
        for form_key, key in fields.items():
            if form_key in form:
                number[key] = form[form_key] or None
        number["date_updated"] = self._now()
        return self._json(200, self._number(number))

    def _release_number(self, request, form, number_sid) -> Response:
        if self.numbers.pop(number_sid, None) is None:
            return self._not_found(request)
        return Response(status=204)

    def _number(self, number: dict[str, Any]) -> dict[str, Any]:
        return {
            "account_sid": ACCOUNT_SID, "address_sid": None, "address_requirements": "none", "api_version": "2010-04-01",
            "beta": False, "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": format_datetime(number["date_created"]), "date_updated": format_datetime(number["date_updated"]),
            "friendly_name": number["friendly_name"], "identity_sid": None, "phone_number": number["phone_number"],
            "origin": "twilio", "sid": number["sid"], "sms_application_sid": None, "sms_fallback_method": "POST",
            "sms_fallback_url": None, "sms_method": "POST", "sms_url": None, "status_callback": None,
            "status_callback_method": "POST", "trunk_sid": number["trunk_sid"],
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/{number['sid']}.json",
            "voice_receive_mode": "voice", "voice_application_sid": number["voice_application_sid"],
            "voice_caller_id_lookup": False, "voice_fallback_method": "POST", "voice_fallback_url": None,
            "voice_method": number["voice_method"], "voice_url": number["voice_url"], "emergency_status": "Inactive",
            "emergency_address_sid": None, "emergency_address_status": "unregistered", "bundle_sid": None,
            "status": "in-use"}

    # ---- responses ----
    @staticmethod
    def _page(key: str, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        uri = f"{API_HOST}{request.full_path}"
        return {key: items, "end": max(len(items) - 1, 0), "first_page_uri": uri, "next_page_uri": None,
                "page": 0, "page_size": int(request.args.get("PageSize", 50)), "previous_page_uri": None,
                "start": 0, "uri": uri}

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def _not_found(self, request: Request) -> Response:
        return self._error(404, 20404, f"The requested resource {request.path} was not found")

    @staticmethod
    def _error(status: int, code: int, message: str, details: dict | None = None, headers: dict | None = None) -> Response:
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status}
        if details:
            body["details"] = details
        return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


# ---- a new account's voice dialing permissions ----
# Every country libphonenumber knows, as Twilio lists them: one "United States/Canada" entry (iso_code US) for
# +1, and each other +1 country (Jamaica, the Bahamas, ...) an entry of its own under its area codes; ordinary
# (low-risk) ranges on only where a new account has them.
NEW_ACCOUNT_LOW_RISK = ("US", "GB")
CONTINENTS = {"1": "NORTH_AMERICA", "2": "AFRICA", "3": "EUROPE", "4": "EUROPE", "5": "SOUTH_AMERICA",
              "6": "OCEANIA", "7": "EUROPE", "8": "ASIA", "9": "ASIA"}


def new_account_permissions() -> dict[str, dict[str, Any]]:
    """A fresh copy for each account (the list is built once: libphonenumber's geocoder takes a second)."""
    return json.loads(_new_account_permissions())


@functools.lru_cache(maxsize=1)
def _new_account_permissions() -> str:
    import phonenumbers
    from phonenumbers import geocoder

    countries = {}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS - {"CA"}):
        calling_code = phonenumbers.country_code_for_region(region)
        codes = [f"+{calling_code}"]
        if calling_code == 1 and region != "US":
            leading = phonenumbers.PhoneMetadata.metadata_for_region(region).leading_digits or ""
            codes = [f"+1{digits}" for digits in leading.split("|") if digits.isdigit()] or codes
        example = phonenumbers.example_number(region)
        name = "United States/Canada" if region == "US" else (geocoder.country_name_for_number(example, "en")
                                                              if example else "") or region
        countries[region] = {"iso_code": region, "name": name, "continent": CONTINENTS[str(calling_code)[0]],
                             "country_codes": codes, "low_risk_numbers_enabled": region in NEW_ACCOUNT_LOW_RISK,
                             "high_risk_special_numbers_enabled": False, "high_risk_tollfraud_numbers_enabled": False,
                             "high_risk_prefixes": [f"+{calling_code}90"] if region == "GB" else []}
    return json.dumps(countries)


# ---- `callmask local-twilio` ----
NUMBERS_FOR_SALE = {"US": ["+14155550100", "+14155550101", "+14155550102", "+14155550142", "+12125550100"]}


def with_numbers_for_sale() -> LocalTwilio:
    """A new account on a local Twilio that sells the numbers above."""
    return LocalTwilio(available={country: list(numbers) for country, numbers in NUMBERS_FOR_SALE.items()})


def serve(port: int, out: TextIO = sys.stdout, log: TextIO = sys.stderr, console_flow: Path | None = None) -> None:
    """Run a local Twilio until Ctrl-C (or SIGTERM), logging every request; its state goes with it. With
    `console_flow`, it also holds that definition as a flow built in the Console, and a number calling it."""
    local = with_numbers_for_sale()
    console = None
    if console_flow is not None:
        try:
            console = local.console_line(json.loads(console_flow.read_text()))
        except (OSError, ValueError) as error:
            raise SpecsMissing(f"--console-flow {console_flow}: not a readable flow definition ({error})") from None
    local.start(port)
    local.log = lambda line: print(line, file=log, flush=True)
    for_sale = ", ".join(number for numbers in NUMBERS_FOR_SALE.values() for number in numbers)
    if console:
        print(f"A line built in the Console: flow {console[0]}, called by {console[1]} (callmask adopt --flow "
              f"{console[0]}).", file=out, flush=True)
    print(f"Local Twilio on {local.base_url}: {SERVED}, each request checked against Twilio's OpenAPI specs.\n"
          "Point a stack at it (no twilio:* keys in the stack; these take their place):\n"
          f"  export CALLMASK_TWILIO_BASE_URL={local.base_url}\n"
          f"  export TWILIO_ACCOUNT_SID={ACCOUNT_SID}\n"
          f"  export TWILIO_AUTH_TOKEN={AUTH_TOKEN}\n"
          f"Numbers for sale: {for_sale} (callmask:phoneNumber.search with country US, areaCode 415).\n"
          "Requests are logged below; Ctrl-C stops it, and its flows and numbers are gone with it.",
          file=out, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        local.stop()


# ---- validation against the specs ----
# Validation only: the fake reads the request itself, so openapi-core's unmarshalling (four times the cost
# of the same checks) would be thrown away. A verdict is a function of the exact bytes checked (method, URL,
# headers, body; for a response also its status, headers and body), and a test run sends the same ones
# many times over (every account starts the same), so each distinct one is checked once per process.
_verdicts: dict[tuple, str | None] = {}
MOST_VERDICTS_KEPT = 20_000


def _verdict(key: tuple, check: Callable[[], str | None]) -> str | None:
    if key not in _verdicts:
        if len(_verdicts) >= MOST_VERDICTS_KEPT:
            _verdicts.clear()
        _verdicts[key] = check()
    return _verdicts[key]


HOSTS = (STUDIO_HOST, API_HOST, VOICE_HOST, SERVERLESS_HOST, UPLOAD_HOST, SYNC_HOST)


def _host_of(request: Request) -> str:
    """Which of Twilio's hosts a request was meant for (the client sent it to this one origin): the host
    callmask's client names in a header, else the one whose API has the path (Serverless and Sync share
    /v1/Services; a Sync SID starts with IS)."""
    path, method = request.path, request.method
    if (named := f"https://{request.headers.get(HOST_HEADER, '')}") in HOSTS:
        return named
    if path.startswith("/v1/Services/IS"):
        return SYNC_HOST
    if path.startswith("/v2/"):
        return STUDIO_HOST
    if method == "POST" and UPLOAD_PATH.fullmatch(path):
        return UPLOAD_HOST
    if path.startswith("/v1/Services"):
        return SERVERLESS_HOST
    return VOICE_HOST if path.startswith("/v1/") else API_HOST


def _request_key(request: Request, host: str) -> tuple:
    return (host, request.method, request.full_path, tuple(request.headers.items()), request.get_data())


def _request_violation(request: Request, host: str) -> str | None:
    if host == UPLOAD_HOST:  # not in the specs: its handler checks it field by field (upload_problem)
        return None
    errors = list(spec(host).iter_request_errors(SpecRequest(request, host)))
    return f"request {request.method} {request.path}: {_explain(errors)}" if errors else None


def _response_violation(request: Request, response: Response, host: str) -> str | None:
    if host == UPLOAD_HOST:
        request, host = _as_fetched_version(request, response), SERVERLESS_HOST
        response = Response(response.get_data(), status=200 if response.status_code == 201 else response.status_code,
                            mimetype=response.mimetype)
    errors = list(spec(host).iter_response_errors(SpecRequest(request, host), WerkzeugOpenAPIResponse(response)))
    if response.status_code >= 400 and all(isinstance(e, ResponseNotFound) for e in errors):
        # Twilio's specs document success responses only; errors have Twilio's one error shape.
        body = json.loads(response.get_data())
        shape = {"code": int, "message": str, "more_info": str, "status": int}
        if not all(isinstance(body.get(key), kind) for key, kind in shape.items()) or body["status"] != response.status_code:
            return f"error response to {request.method} {request.path}: {body}"
        return None
    if errors:
        return f"response {response.status_code} to {request.method} {request.path}: {_explain(errors)}"
    return None


def _as_fetched_version(request: Request, response: Response) -> Request:
    """The upload answers a Function Version as fetching it returns one: checked as that fetch's answer,
    since the spec has no upload."""
    made = json.loads(response.get_data() or b"{}").get("sid") if response.status_code == 201 else "ZN" + "0" * 32
    return EnvironBuilder(path=f"{request.path}/{made}", method="GET").get_request()


def _wait_for_the_client_to_give_up(environ, at_most: float) -> None:
    """Hold a request until the client closes the connection (its timeout fired), or `at_most` seconds."""
    connection = environ["werkzeug.socket"]
    deadline = time.monotonic() + at_most
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([connection], [], [], left)
        if readable:  # closed by the client (a client that gets no answer sends nothing more)
            return


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass

    def log_error(self, *args, **kwargs) -> None:  # connections the fault injection cut
        pass


def _explain(errors: list[Exception]) -> str:
    """What the specs say is wrong, by parameter name where there is one."""
    parts: list[str] = []
    for error in errors:
        if name := getattr(error, "name", None):  # a query, path or header parameter
            parts.append(f"{getattr(error, 'location', '')} parameter {name}: {error.__cause__ or error}".strip())
            continue
        schema_errors = getattr(error.__cause__, "schema_errors", None) or getattr(error, "schema_errors", None)
        if not schema_errors:
            parts.append(f"{type(error).__name__}: {error}")
        for inner in schema_errors or ():
            if inner.validator == "required" and isinstance(inner.instance, dict):
                parts += [f"parameter {key}: required, not sent" for key in inner.validator_value
                          if key not in inner.instance]
            else:
                where = ".".join(str(part) for part in inner.path)
                parts.append(f"parameter {where}: {inner.message}" if where else inner.message)
    return "; ".join(dict.fromkeys(parts))
