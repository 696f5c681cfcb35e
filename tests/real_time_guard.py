"""A pytest plugin: any test that sleeps, or waits for a request to time out, for longer than a moment fails.

The suite stays fast by making each case cheap, never by waiting out the clock: the client's timeout and
backoff are settings (CALLMASK_TWILIO_TIMEOUT, CALLMASK_TWILIO_BACKOFF) that a test sets to what it needs,
and the Twilio fake holds a request only until the client gives up.
"""

from __future__ import annotations

import time

import pytest
import requests
from callmask.twilio.twilio_api import BACKOFF_VARIABLE, TIMEOUT_VARIABLE

# Above these, a test is waiting out a real timeout or backoff: the fake answers in milliseconds, and the
# fault matrix's clients give up on a held request at once.
LONGEST_SLEEP_SECONDS = 0.1
LONGEST_TIMEOUT_SECONDS = 0.5


@pytest.fixture(autouse=True)
def no_waiting_in_real_time(monkeypatch):
    waits: list[str] = []
    real_sleep, real_send = time.sleep, requests.adapters.HTTPAdapter.send

    def sleep(seconds: float) -> None:
        if seconds > LONGEST_SLEEP_SECONDS:
            waits.append(f"time.sleep({seconds:g})")
        real_sleep(seconds)

    def send(adapter, request, *args, **kwargs):
        started = time.monotonic()
        try:
            return real_send(adapter, request, *args, **kwargs)
        except requests.Timeout:
            waited = time.monotonic() - started
            if waited > LONGEST_TIMEOUT_SECONDS:
                waits.append(f"{request.method} {request.url} timed out after {waited:.1f} s")
            raise

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    # Retries and second looks without the real backoff. The client's timeout stays generous, so a busy
    # machine never times out an answered request; a test that holds one sets its own short timeout.
    monkeypatch.setenv(BACKOFF_VARIABLE, "0.001")
    monkeypatch.setenv(TIMEOUT_VARIABLE, "5")
    yield
    assert not waits, (f"the test waited in real time: {'; '.join(waits)} "
                       "(make the case cheap: see tests/real_time_guard.py)")
