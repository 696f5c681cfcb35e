"""Scans for PINs and the auth token wherever they must never appear in plaintext: provider outputs
other than the secret `pins`, logs, error messages and pickled providers."""

from __future__ import annotations

import base64
import logging

import dill
import pytest
from callmask.providers.phone_number import PhoneNumberProvider
from callmask.providers.studio_flow import FlowRejected, StudioFlowProvider
from callmask.providers.twilio_provider import MAX_MESSAGE, one_line
from callmask.providers.voice_binding import VoiceBindingProvider
from conftest import TEST_PINS, configured
from pulumi.dynamic.dynamic import serialize_provider
from test_providers import flow_props
from callmask.local.twilio import AUTH_TOKEN

SECRETS = (*TEST_PINS, AUTH_TOKEN)


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret appears in {where}"


def test_flow_outputs_carry_pins_only_under_the_secret_pins_key(twilio):
    provider = configured(StudioFlowProvider)
    created = provider.create(flow_props())
    updated = provider.update(created.id, created.outs, flow_props(goodbye="Bye."))
    read = provider.read(created.id, updated.outs)
    for outs in (created.outs, updated.outs, read.outs):
        # The engine re-marks as secret only outputs whose key is a secret input's key: `pins`.
        assert outs["pins"] == TEST_PINS
        assert_clean(repr({key: value for key, value in outs.items() if key != "pins"}), "flow outputs")


def test_logs_of_a_whole_lifecycle_hold_no_secret(twilio, caplog):
    caplog.set_level(logging.DEBUG)
    flow, number, binding = (configured(cls) for cls in (StudioFlowProvider, PhoneNumberProvider, VoiceBindingProvider))
    created = flow.create(flow_props())
    flow.update(created.id, created.outs, flow_props(greeting="Hi, PIN please."))
    bought = number.create({"selection": {"mode": "search", "country": "US"}, "friendly_name": "callmask-dev",
                            "release_on_destroy": True})
    bound = binding.create({"phone_number_sid": bought.id, "flow_sid": created.id, "voice_url": created.outs["webhook_url"], "voice_method": "POST"})
    binding.delete(bound.id, bound.outs)
    number.delete(bought.id, bought.outs)
    flow.delete(created.id, created.outs)
    assert caplog.records, "the Twilio SDK logs its requests; the scan must see them"
    assert_clean(caplog.text, "logs")


def test_twilio_error_that_echoes_the_definition_is_redacted(twilio):
    twilio.invalid_widget_types.add("say-play")
    twilio.echo_definition_in_errors = True
    with pytest.raises(FlowRejected) as raised:
        configured(StudioFlowProvider).create(flow_props())
    assert str(raised.value).startswith("StudioFlow callmask-dev: Twilio refused the flow: Twilio error 20001")
    assert len(str(raised.value)) <= MAX_MESSAGE
    assert_clean(str(raised.value), "the error message")


def test_one_line_masks_secrets_before_it_shortens():
    text = one_line(f"Widget check_pin: value {TEST_PINS[0]},{TEST_PINS[1]}\n" + "x" * 400, TEST_PINS)
    assert text.startswith("Widget check_pin: value [secret],[secret] xxx") and len(text) == MAX_MESSAGE
    assert_clean(text, "a shortened message")


@pytest.mark.parametrize("provider_class", [StudioFlowProvider, PhoneNumberProvider, VoiceBindingProvider])
def test_a_configured_provider_pickles_without_credentials(provider_class):
    provider = configured(provider_class)
    assert provider.client() is not None
    pickled = base64.b64decode(serialize_provider(provider))
    assert AUTH_TOKEN.encode() not in pickled
    assert dill.loads(pickled).__dict__ == {}, "an unpickled provider starts unconfigured"


def test_a_failure_while_staging_shows_no_test_user_and_no_pin(twilio, caplog):
    """Test users may be secret: they are masked like the PINs in every failure and never logged."""
    caplog.set_level(logging.DEBUG)
    tester = "+14155550188"
    provider = configured(StudioFlowProvider)
    created = provider.create(flow_props())
    staged = {**flow_props(goodbye="Staged."), "publish": False, "test_users": [tester]}
    twilio.fail("POST", r"/TestUsers$", status=400, code=21211, times=10, message=f"Invalid TestUsers {tester}")
    with pytest.raises(Exception) as raised:
        provider.update(created.id, created.outs, staged)
    assert str(raised.value).startswith(f"StudioFlow callmask-dev ({created.id}): update failed: Twilio error 21211 "
                                        "(HTTP 400): Unable to update record: Invalid TestUsers [secret]")
    assert_clean(str(raised.value) + caplog.text, "a staging failure")
    assert tester not in str(raised.value) + caplog.text
