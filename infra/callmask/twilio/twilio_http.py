"""The HTTP client under callmask's Twilio clients: timeouts, safe retries, the base-URL override, and the
environment's proxies read once. Imported by `twilio_api.connect` when an operation first calls Twilio."""

from __future__ import annotations

import functools
import os
import time
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

from callmask.twilio.twilio_api import DEFAULT_BACKOFF_SECONDS, HOST_HEADER, TwilioRequestFailed, is_idempotent


class CallmaskHttpClient(TwilioHttpClient):
    """Every request has a timeout; 429 (never processed by Twilio) is retried for any request,
    5xx and lost connections only where repeating is safe; and `CALLMASK_TWILIO_BASE_URL`
    sends every request to another origin with its original path."""

    def __init__(self, base_url: str | None, timeout: float, attempts: int = 4,
                 backoff_seconds: float = DEFAULT_BACKOFF_SECONDS):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        if self.session is not None:
            self.session.trust_env = False  # the environment's settings are read once: environment_settings

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False) -> Response:
        if self.base_url:
            headers = {**(headers or {}), HOST_HEADER: urlsplit(url).netloc}
        url = self.redirect(url)
        if self.session is not None:
            self.proxy, self.session.verify = environment_settings(urlunsplit(urlsplit(url)[:2] + ("", "", "")))
        retry_safe = is_idempotent(method, url)
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                response = super().request(method, url, params, data, headers, auth, timeout, allow_redirects)
            except requests.RequestException as error:
                if retry_safe and not last:
                    self.pause(attempt, None)
                    continue
                raise TwilioRequestFailed(f"{method} {url} got no answer from Twilio: {type(error).__name__}") from None
            if response.status_code == 429 or (response.status_code >= 500 and retry_safe):
                if not last:
                    self.pause(attempt, response.headers.get("Retry-After"))
                    continue
            return response
        raise AssertionError("unreachable")

    def redirect(self, url: str) -> str:
        if not self.base_url:
            return url
        origin = urlsplit(self.base_url)
        parts = urlsplit(url)
        return urlunsplit((origin.scheme, origin.netloc, parts.path, parts.query, parts.fragment))

    def pause(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_seconds * 2 ** (attempt - 1)
        if retry_after and retry_after.isdigit():
            delay = min(float(retry_after), 30.0)
        time.sleep(delay)


@functools.lru_cache(maxsize=16)
def environment_settings(origin: str) -> tuple[dict[str, str], str | bool]:
    """The proxies (honouring no_proxy) and CA bundle the environment sets for an origin, as requests reads
    them; read once per origin and process rather than on every request (a scan of the whole environment)."""
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return requests.utils.get_environ_proxies(origin), verify
