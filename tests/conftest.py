"""Shared fixtures: a Twilio fake over real HTTP, and providers configured the way the engine does."""

from __future__ import annotations

import pytest
from callmask.twilio_api import BACKOFF_VARIABLE, BASE_URL_VARIABLE
from pulumi.dynamic import Config, ConfigureRequest
from twilio_fake import ACCOUNT_SID, AUTH_TOKEN, TwilioFake

TEST_PINS = ["24681357", "86420135"]


@pytest.fixture
def twilio(monkeypatch):
    fake = TwilioFake().start()
    fake.available["US"] = ["+14155550100", "+14155550101", "+14155550102", "+12125550100"]
    monkeypatch.setenv(BASE_URL_VARIABLE, fake.base_url)
    monkeypatch.setenv(BACKOFF_VARIABLE, "0.01")  # retries and second looks without the real waits
    for variable in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET",
                     "TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(variable, raising=False)
    yield fake
    fake.stop()
    assert fake.spec_violations == [], "the fake saw traffic that Twilio's OpenAPI spec does not allow"


def configured(provider_class):
    """A provider configured as the engine does: the whole stack config, credentials included."""
    provider = provider_class()
    provider.configure(ConfigureRequest(Config(
        {"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN}, "callmask")))
    return provider
