"""How callmask talks to Twilio: credentials, the timeout and backoff settings, which requests are safe to
repeat, and `connect()`, which builds a client over callmask's HTTP client (twilio_http: timeouts, safe
retries and the base-URL override).

Credentials are resolved when a provider makes a call (from the stack config handed to `configure()`,
else the environment), so they never live in resource inputs, outputs or the pickled provider.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from twilio.base.exceptions import TwilioException

if TYPE_CHECKING:
    from twilio.rest import Client

BASE_URL_VARIABLE = "CALLMASK_TWILIO_BASE_URL"
# The local Twilio's one route that is not Twilio's API: `callmask call` rings a line there (a phone would).
INCOMING_CALL_PATH = "/callmask/local/IncomingCalls"
# With a base URL, the host a request was meant for (Serverless and Sync both serve /v1/Services).
HOST_HEADER = "X-Twilio-Host"
TIMEOUT_VARIABLE = "CALLMASK_TWILIO_TIMEOUT"
BACKOFF_VARIABLE = "CALLMASK_TWILIO_BACKOFF"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_BACKOFF_SECONDS = 0.5
CREDENTIAL_KEYS = ("twilio:accountSid", "twilio:authToken", "twilio:apiKey", "twilio:apiSecret")
TWILIO_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")


class TwilioRequestFailed(TwilioException):
    """A request got no HTTP answer (timeout, connection lost): Twilio may or may not have acted on it."""


class MissingCredentials(TwilioException):
    """Credentials or client settings are missing or malformed: nothing was sent to Twilio."""


@dataclass(frozen=True)
class Credentials:
    account_sid: str
    username: str
    password: str = field(repr=False)


def resolve_credentials(config: Mapping[str, object], environ: Mapping[str, str]) -> Credentials:
    """Stack config first (`twilio:*`), then TWILIO_* environment variables; API keys win over tokens."""

    def pick(config_key: str, env_key: str) -> str:
        value = config.get(config_key) or environ.get(env_key) or ""
        return str(value)

    account_sid = pick("twilio:accountSid", "TWILIO_ACCOUNT_SID")
    api_key, api_secret = pick("twilio:apiKey", "TWILIO_API_KEY"), pick("twilio:apiSecret", "TWILIO_API_SECRET")
    auth_token = pick("twilio:authToken", "TWILIO_AUTH_TOKEN")
    if account_sid and api_key and api_secret:
        return Credentials(account_sid, api_key, api_secret)
    if account_sid and auth_token:
        return Credentials(account_sid, account_sid, auth_token)
    raise MissingCredentials(
        "Twilio credentials are missing: set twilio:accountSid with the secret twilio:authToken or "
        "twilio:apiKey + secret twilio:apiSecret, or TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN or "
        "TWILIO_API_KEY + TWILIO_API_SECRET."
    )


def is_idempotent(method: str, url: str) -> bool:
    """Safe to send twice: reads, deletes, validation, updates of one resource by its SID, and setting a
    flow's test users (the list is replaced). A POST to a collection creates (and for phone numbers, buys)
    something, so it is never repeated."""
    if method.upper() in ("GET", "HEAD", "DELETE"):
        return True
    last_segment = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
    return bool(TWILIO_SID.fullmatch(last_segment)) or last_segment in ("Validate", "TestUsers")


def seconds_setting(variable: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    """A positive number of seconds from the environment (CALLMASK_TWILIO_TIMEOUT, _BACKOFF)."""
    environ = os.environ if environ is None else environ
    try:
        seconds = float(environ.get(variable) or default)
    except ValueError:
        raise MissingCredentials(f"{variable} must be a number of seconds, got {environ[variable]!r}") from None
    if seconds <= 0:
        raise MissingCredentials(f"{variable} must be more than 0 seconds, got {seconds:g}")
    return seconds


def backoff_seconds() -> float:
    """The first wait before a retry or a second look; each later one waits twice as long."""
    return seconds_setting(BACKOFF_VARIABLE, DEFAULT_BACKOFF_SECONDS)


def connect(config: Mapping[str, object], environ: Mapping[str, str] | None = None) -> Client:
    """A Twilio client for one provider operation. The SDK's clients and `requests` are imported here, by
    the first operation that calls Twilio: the program, a preview's checks and diffs, and `callmask --help`
    never load them."""
    from twilio.rest import Client

    from callmask.twilio.twilio_http import CallmaskHttpClient

    environ = os.environ if environ is None else environ
    credentials = resolve_credentials(config, environ)
    timeout = seconds_setting(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_SECONDS, environ)
    backoff = seconds_setting(BACKOFF_VARIABLE, DEFAULT_BACKOFF_SECONDS, environ)
    http_client = CallmaskHttpClient(environ.get(BASE_URL_VARIABLE), timeout, backoff_seconds=backoff)
    # A non-empty environment keeps TWILIO_REGION/TWILIO_EDGE from rewriting hosts behind our back
    # when a base URL override is in use.
    environment = {"_": ""} if http_client.base_url else dict(environ)
    return Client(credentials.username, credentials.password, credentials.account_sid,
                  http_client=http_client, environment=environment)
