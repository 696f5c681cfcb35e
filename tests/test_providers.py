"""The three dynamic providers over real HTTP against the spec-validated Twilio fake."""

from __future__ import annotations

import json

import pytest
from callmask.studio.flow_template import canonical_json, load_template
from callmask.providers.phone_number import NumberError, PhoneNumberProvider
from callmask.providers.studio_flow import FlowRejected, StudioFlowProvider
from callmask.providers.twilio_provider import ProviderError
from callmask.providers.voice_binding import BindingError, VoiceBindingProvider
from callmask.config.settings import parse_settings
from callmask.twilio.twilio_api import TIMEOUT_VARIABLE, MissingCredentials
from conftest import TEST_PINS, configured
from flow_fixtures import stack_values
from pulumi.output import Unknown
from twilio.base.exceptions import TwilioException
from callmask.local.twilio import ACCOUNT_SID, TIMEOUT_AFTER


def flow_props(stack: str = "dev", **prompts: str) -> dict:
    """The flow's inputs for the stack with its PINs checked in Studio."""
    values = stack_values(stack)
    values["pins"], values["pinCheck"] = TEST_PINS, "studio"
    values["prompts"] = {**values.get("prompts", {}), **prompts}
    settings = parse_settings(values)
    return {"stack": stack, "friendly_name": f"callmask-{stack}", "template": canonical_json(load_template()),
            "values": canonical_json(settings.flow_values()), "pins": list(TEST_PINS)}


def number_props(**selection) -> dict:
    return {"selection": selection, "friendly_name": "callmask-dev", "release_on_destroy": False}


# ---- Studio Flow ----

def test_flow_lifecycle_create_read_update_delete(twilio):
    provider = configured(StudioFlowProvider)
    created = provider.create(flow_props())
    live = twilio.flows[created.id]
    assert live["status"] == "published"
    first_commit = live["commit_message"]
    assert first_commit.startswith("callmask dev: template ")
    pin_check = next(s for s in live["definition"]["states"] if s["name"] == "check_pin")
    assert pin_check["transitions"][1]["conditions"][0]["value"] == ",".join(TEST_PINS)
    assert created.outs["webhook_url"].endswith(f"/Accounts/{ACCOUNT_SID}/Flows/{created.id}")
    assert "definition" not in created.outs

    read = provider.read(created.id, created.outs)
    assert read.id == created.id and read.outs["drift"] == ""

    news = flow_props(goodbye="Bye now.")
    assert provider.diff(created.id, created.outs, news).changes
    updated = provider.update(created.id, created.outs, news)
    goodbye = next(s for s in twilio.flows[created.id]["definition"]["states"] if s["name"] == "say_goodbye")
    assert goodbye["properties"]["say"] == "Bye now."
    assert updated.outs["revision"] == 2
    assert live["commit_message"].startswith("callmask dev: template ") and live["commit_message"] != first_commit

    provider.delete(created.id, updated.outs)
    assert created.id not in twilio.flows
    provider.delete(created.id, updated.outs)  # already gone: not an error


def test_flow_console_edit_is_noticed_by_refresh_and_repaired_by_up(twilio):
    provider = configured(StudioFlowProvider)
    created = provider.create(flow_props())
    twilio.edit_flow_in_console(created.id, lambda d: d["states"][1]["properties"].update(say="Edited by hand"))

    refreshed = provider.read(created.id, created.outs)
    assert "widget gather_pin" in refreshed.outs["drift"]
    assert provider.diff(created.id, refreshed.outs, flow_props()).changes

    provider.update(created.id, refreshed.outs, flow_props())
    assert provider.read(created.id, created.outs).outs["drift"] == ""


def test_flow_read_of_a_deleted_flow_reports_it_gone(twilio):
    provider = configured(StudioFlowProvider)
    created = provider.create(flow_props())
    del twilio.flows[created.id]
    assert provider.read(created.id, created.outs).id == ""


def test_flow_rejected_by_validate_shows_twilio_errors_and_no_pin(twilio):
    twilio.invalid_widget_types.add("connect-call-to")
    with pytest.raises(FlowRejected) as raised:
        configured(StudioFlowProvider).create(flow_props())
    message = str(raised.value)
    assert "callmask-dev" in message and "unsupported type connect-call-to" in message
    assert not any(pin in message for pin in TEST_PINS)
    assert twilio.flows == {}, "nothing is created when Validate refuses"


def test_flow_diff_ignores_key_order_and_sees_unknowns(twilio):
    provider = configured(StudioFlowProvider)
    olds = {**flow_props(), "drift": ""}
    reordered = {**flow_props(), "values": json.dumps(json.loads(olds["values"]), sort_keys=False, indent=2)}
    assert not provider.diff("FW1", olds, reordered).changes
    assert provider.diff("FW1", olds, {**flow_props(), "pins": ["13572468"]}).changes
    assert provider.diff("FW1", olds, {**flow_props(), "values": Unknown()}).changes
    assert provider.diff("FW1", olds, flow_props()).replaces == []
    assert twilio.calls == [], "diff never calls Twilio"


def test_flow_check_names_placeholder_mismatches(twilio):
    props = flow_props()
    values = json.loads(props["values"])
    del values["callerId"]
    values["surplus"] = 1
    failures = configured(StudioFlowProvider).check({}, {**props, "values": json.dumps(values)}).failures
    assert any("${callerId}" in f.reason and "surplus" in f.reason for f in failures)


# ---- request counts ----

def test_unchanged_stack_makes_no_writes_and_refresh_one_read_per_resource(twilio):
    flow, number, binding = (configured(cls) for cls in (StudioFlowProvider, PhoneNumberProvider, VoiceBindingProvider))
    flow_created = flow.create(flow_props())
    number_created = number.create(number_props(mode="search", country="US", area_code="415"))
    binding_created = binding.create({"phone_number_sid": number_created.id,
                                      "flow_sid": flow_created.id, "voice_url": flow_created.outs["webhook_url"], "voice_method": "POST"})
    twilio.calls.clear()

    assert not flow.diff(flow_created.id, flow_created.outs, flow_props()).changes
    assert not number.diff(number_created.id, number_created.outs, number_props(mode="search", country="US", area_code="415")).changes
    assert not binding.diff(binding_created.id, binding_created.outs,
                            {"phone_number_sid": number_created.id, "flow_sid": flow_created.id,
                             "voice_url": flow_created.outs["webhook_url"],
                             "voice_method": "POST"}).changes
    assert twilio.calls == []

    flow.read(flow_created.id, flow_created.outs)
    number.read(number_created.id, number_created.outs)
    binding.read(binding_created.id, binding_created.outs)
    assert len(twilio.calls) == 3 and twilio.writes() == []


def test_prompt_change_is_one_validate_and_one_flow_update_and_touches_no_number(twilio):
    flow = configured(StudioFlowProvider)
    created = flow.create(flow_props())
    twilio.calls.clear()
    news = flow_props(greeting="Hello there. Enter your PIN.")
    assert flow.diff(created.id, created.outs, news).changes
    flow.update(created.id, created.outs, news)
    assert [(c.method, c.path) for c in twilio.calls] == [("POST", "/v2/Flows/Validate"), ("POST", f"/v2/Flows/{created.id}")]
    assert twilio.reads("IncomingPhoneNumbers") == [] and twilio.writes("IncomingPhoneNumbers") == []


# ---- retries ----

def test_429_is_retried_even_for_a_create(twilio):
    twilio.fail("POST", r"^/v2/Flows$", status=429, code=20429, times=2, retry_after="0")
    created = configured(StudioFlowProvider).create(flow_props())
    assert len(twilio.flows) == 1 and created.id in twilio.flows
    assert [c.status for c in twilio.writes("/v2/Flows") if c.path == "/v2/Flows"] == [429, 429, 201]


def test_500_is_retried_for_reads_and_updates_with_backoff(twilio):
    provider = configured(StudioFlowProvider)
    created = provider.create(flow_props())
    twilio.fail("GET", r"^/v2/Flows/FW", status=500, times=1)
    twilio.fail("POST", r"^/v2/Flows/FW", status=503, times=1)
    assert provider.read(created.id, created.outs).outs["drift"] == ""
    provider.update(created.id, created.outs, flow_props(goodbye="Later."))
    assert [c.status for c in twilio.calls if c.path == f"/v2/Flows/{created.id}"] == [500, 200, 503, 200]


def test_500_on_a_flow_create_is_not_repeated_and_the_flow_is_looked_for(twilio):
    twilio.fail("POST", r"^/v2/Flows$", status=500, times=1)
    with pytest.raises(ProviderError, match=r"HTTP 500.*no flow named callmask-dev exists \(looked again\)"):
        configured(StudioFlowProvider).create(flow_props())
    assert len([c for c in twilio.calls if c.method == "POST" and c.path == "/v2/Flows"]) == 1
    assert len([c for c in twilio.calls if c.method == "GET" and c.path == "/v2/Flows"]) > 1


# ---- phone number ----

def test_search_buys_one_number_and_a_retried_create_adopts_it(twilio):
    provider = configured(PhoneNumberProvider)
    first = provider.create(number_props(mode="search", country="US", area_code="415"))
    assert first.outs["purchased"] and first.outs["phone_number"].startswith("+1415")
    again = provider.create(number_props(mode="search", country="US", area_code="415"))
    assert again.id == first.id
    assert len(twilio.numbers) == 1 and len(twilio.writes("IncomingPhoneNumbers.json")) == 1


def test_owned_number_is_adopted_not_bought(twilio):
    owned = twilio.own_number("+14155550199")
    created = configured(PhoneNumberProvider).create(number_props(mode="number", number="+14155550199"))
    assert created.id == owned["sid"] and not created.outs["purchased"]
    assert twilio.writes() == []


def test_adopt_by_sid_never_buys_and_explains_an_unknown_sid(twilio):
    owned = twilio.own_number("+14155550198")
    provider = configured(PhoneNumberProvider)
    assert provider.create(number_props(mode="sid", sid=owned["sid"])).outs["phone_number"] == "+14155550198"
    with pytest.raises(NumberError, match="callmask:phoneNumber.sid PN0+ff is not a phone number on this Twilio account"):
        provider.create(number_props(mode="sid", sid="PN" + "0" * 30 + "ff"))
    assert twilio.writes() == []


def test_purchase_that_times_out_is_looked_up_not_repeated(twilio, monkeypatch):
    monkeypatch.setenv(TIMEOUT_VARIABLE, "0.1")
    twilio.fail("POST", r"IncomingPhoneNumbers\.json$", kind=TIMEOUT_AFTER)
    created = configured(PhoneNumberProvider).create(number_props(mode="number", number="+14155550101"))
    assert created.outs["phone_number"] == "+14155550101" and created.outs["purchased"]
    assert len(twilio.numbers) == 1
    assert len(twilio.writes("IncomingPhoneNumbers.json")) == 1


def test_purchase_that_failed_with_500_never_claims_nothing_was_bought(twilio):
    twilio.fail("POST", r"IncomingPhoneNumbers\.json$", status=500)
    with pytest.raises(NumberError, match=r"account does not own the number yet; it may still complete"):
        configured(PhoneNumberProvider).create(number_props(mode="number", number="+14155550101"))
    assert twilio.numbers == {} and len(twilio.writes("IncomingPhoneNumbers.json")) == 1


def test_unavailable_number_gets_a_clear_message(twilio):
    with pytest.raises(NumberError, match=r"\+14155550999 is not available to buy \(Twilio error 21422\)"):
        configured(PhoneNumberProvider).create(number_props(mode="number", number="+14155550999"))


def test_search_skips_a_number_sold_meanwhile_and_explains_an_empty_search(twilio):
    provider = configured(PhoneNumberProvider)
    twilio.fail("POST", r"IncomingPhoneNumbers\.json$", status=400, code=21422)
    bought = provider.create(number_props(mode="search", country="US", area_code="415"))
    assert bought.outs["phone_number"] == "+14155550101"
    with pytest.raises(NumberError, match="No voice-capable local number is available for country US, area_code 999"):
        provider.create({**number_props(mode="search", country="US", area_code="999"), "friendly_name": "other"})


def test_number_is_released_only_when_bought_and_the_stack_says_so(twilio):
    provider = configured(PhoneNumberProvider)
    kept = provider.create(number_props(mode="number", number="+14155550100"))
    provider.delete(kept.id, kept.outs)
    assert kept.id in twilio.numbers

    adopted = twilio.own_number("+14155550197")
    provider.delete(adopted["sid"], {**number_props(mode="sid", sid=adopted["sid"]), "release_on_destroy": True,
                                     "purchased": False})
    assert adopted["sid"] in twilio.numbers

    provider.delete(kept.id, {**kept.outs, "release_on_destroy": True})
    assert kept.id not in twilio.numbers


def test_selection_change_never_silently_releases(twilio):
    provider = configured(PhoneNumberProvider)
    olds = {**number_props(mode="number", number="+14155550100"), "release_on_destroy": True}
    news = {**number_props(mode="number", number="+14155550101"), "release_on_destroy": True}
    failures = provider.check(olds, news).failures
    assert failures and "releaseNumberOnDestroy" in failures[0].reason

    state = {**number_props(mode="number", number="+14155550100"), "sid": "PN" + "1" * 32,
             "phone_number": "+14155550100", "purchased": True}
    assert provider.diff(state["sid"], state, number_props(mode="number", number="+14155550101")).replaces == ["selection"]
    assert provider.diff(state["sid"], state, number_props(mode="sid", sid=state["sid"])).replaces == []


def test_number_read_404_is_gone(twilio):
    provider = configured(PhoneNumberProvider)
    created = provider.create(number_props(mode="number", number="+14155550100"))
    del twilio.numbers[created.id]
    assert provider.read(created.id, created.outs).id == ""


# ---- voice binding ----

def test_binding_points_the_number_at_the_flow_and_restores_on_delete(twilio):
    owned = twilio.own_number("+14155550196", voice_application_sid="AP" + "b" * 32)
    owned["voice_url"] = "https://example.com/old"
    provider = configured(VoiceBindingProvider)
    created = provider.create({"phone_number_sid": owned["sid"], "flow_sid": "FW" + "9" * 32, "voice_url": "https://webhooks.twilio.com/v1/x",
                               "voice_method": "POST"})
    assert owned["voice_url"] == "https://webhooks.twilio.com/v1/x" and owned["voice_application_sid"] is None

    provider.delete(created.id, created.outs)
    assert owned["voice_url"] == "https://example.com/old"
    assert owned["voice_application_sid"] == "AP" + "b" * 32
    assert owned["sid"] in twilio.numbers, "a binding never releases the number"


def test_binding_refresh_sees_a_changed_voice_url(twilio):
    owned = twilio.own_number("+14155550195")
    provider = configured(VoiceBindingProvider)
    props = {"phone_number_sid": owned["sid"], "flow_sid": "FW" + "9" * 32, "voice_url": "https://webhooks.twilio.com/v1/x", "voice_method": "POST"}
    created = provider.create(props)
    owned["voice_url"] = "https://example.com/changed-in-console"
    refreshed = provider.read(created.id, created.outs)
    assert provider.diff(created.id, refreshed.outs, props).changes
    provider.update(created.id, refreshed.outs, props)
    assert owned["voice_url"] == props["voice_url"]


def test_binding_refuses_a_number_on_a_sip_trunk(twilio):
    owned = twilio.own_number("+14155550194", trunk_sid="TK" + "c" * 32)
    with pytest.raises(BindingError, match="attached to SIP trunk"):
        configured(VoiceBindingProvider).create({"phone_number_sid": owned["sid"], "flow_sid": "FW" + "9" * 32, "voice_url": "https://x.example",
                                                 "voice_method": "POST"})
    assert twilio.writes() == []


# ---- credentials ----

def test_missing_credentials_are_named_plainly(twilio):
    with pytest.raises(MissingCredentials, match="twilio:accountSid"):
        StudioFlowProvider().create(flow_props())


def test_credentials_from_environment_and_api_keys(twilio, monkeypatch):
    twilio.api_keys["SK" + "d" * 32] = "api-secret-value"
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_API_KEY", "SK" + "d" * 32)
    monkeypatch.setenv("TWILIO_API_SECRET", "api-secret-value")
    created = PhoneNumberProvider().create(number_props(mode="number", number="+14155550100"))
    assert created.outs["purchased"]


@pytest.mark.parametrize("value", ["soon", "0"])
def test_a_bad_timeout_setting_is_named(twilio, monkeypatch, value):
    monkeypatch.setenv(TIMEOUT_VARIABLE, value)
    with pytest.raises(TwilioException, match=f"{TIMEOUT_VARIABLE} must be"):
        configured(StudioFlowProvider).create(flow_props())
    assert twilio.calls == []


def test_number_update_renames_only_a_number_the_stack_bought(twilio):
    provider = configured(PhoneNumberProvider)
    bought = provider.create(number_props(mode="search", country="US", area_code="415"))
    renamed = {**bought.outs, "friendly_name": "callmask-dev-renamed"}
    assert provider.diff(bought.id, bought.outs, renamed).changes
    provider.update(bought.id, bought.outs, renamed)
    assert twilio.numbers[bought.id]["friendly_name"] == "callmask-dev-renamed"

    adopted = twilio.own_number("+14155550193", friendly_name="front desk")
    state = provider.create(number_props(mode="number", number="+14155550193")).outs
    twilio.calls.clear()
    updated = provider.update(adopted["sid"], state, {**state, "friendly_name": "callmask-prod", "release_on_destroy": True})
    assert twilio.writes() == [] and adopted["friendly_name"] == "front desk"
    assert updated.outs["release_on_destroy"] is True and updated.outs["purchased"] is False


def test_binding_preview_of_a_flow_update_is_no_change_but_a_new_flow_is():
    """During a preview the flow's webhook URL is unknown; with the same flow SID it cannot have changed."""
    provider = VoiceBindingProvider()
    olds = {"phone_number_sid": "PN1", "flow_sid": "FW1", "voice_url": "https://webhooks.twilio.com/v1/FW1",
            "voice_method": "POST"}
    assert not provider.diff("PN1", olds, {**olds, "voice_url": Unknown()}).changes
    assert provider.diff("PN1", olds, {**olds, "flow_sid": "FW2", "voice_url": Unknown()}).changes
    assert provider.diff("PN1", olds, {**olds, "flow_sid": Unknown(), "voice_url": Unknown()}).changes


def test_the_environments_proxy_and_ca_bundle_are_honoured_read_once_per_origin(twilio, monkeypatch):
    from callmask.twilio import twilio_http

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    twilio_http.environment_settings.cache_clear()
    try:
        proxies, verify = twilio_http.environment_settings("https://api.twilio.com")
        assert (proxies["https"], verify) == ("http://proxy.example.com:3128", "/etc/ssl/corporate.pem")
        assert twilio_http.environment_settings(twilio.base_url)[0] == {}, "no_proxy: the local Twilio directly"
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")  # a CA bundle is a file requests must find: none for this call
        twilio_http.environment_settings.cache_clear()
        provider = configured(PhoneNumberProvider)
        assert provider.client().api.v2010.accounts(ACCOUNT_SID).fetch().sid == ACCOUNT_SID
    finally:
        twilio_http.environment_settings.cache_clear()
