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


# Rows of the fault matrix (tests/test_fault_matrix.py), printed after the run.
fault_matrix_report: list[tuple[str, str, dict[str, str]]] = []


def pytest_terminal_summary(terminalreporter):
    if not fault_matrix_report:
        return
    faults = list(fault_matrix_report[0][2])
    write = terminalreporter.write_line
    terminalreporter.section("fault matrix: outcome at the first attempt / at every attempt")
    write("ok: the command succeeded anyway; err: it failed with one clean line. Either way the re-run, a "
          "second up (no writes) and destroy ended in the same state.")
    write(f"{'command':<15} {'Twilio call':<46} " + " ".join(f"{fault:>15}" for fault in faults))
    for command, call, row in fault_matrix_report:
        write(f"{command:<15} {call[:46]:<46} " + " ".join(f"{row[fault]:>15}" for fault in faults))
    cases = sum(2 * len(row) for _, _, row in fault_matrix_report)
    write(f"{len(fault_matrix_report)} calls x {len(faults)} faults x 2 = {cases} cases")
