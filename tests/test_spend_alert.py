"""The spend alert (a Usage Trigger on outbound call spend) over real HTTP against the spec-validated fake:
created once, found again after a lost answer, its callback changed in place, a new amount (which Twilio
cannot change in place) a new trigger before the old one goes, Console drift found, deleted on destroy."""

from __future__ import annotations

import pytest
from callmask.local.twilio import TIMEOUT_AFTER, LocalTwilio
from callmask.providers.usage_trigger import SpendAlertProvider
from callmask.config.settings import SettingsError, parse_settings
from callmask.config.stack_config import from_files
from callmask.twilio.twilio_api import TIMEOUT_VARIABLE
from conftest import TEST_PINS, configured

HOOK = "https://alerts.example.com/twilio-spend"
TRIGGERS = r"/Usage/Triggers\.json$"


def props(amount: str = "25.00", url: str = HOOK) -> dict:
    return {"stack": "dev", "daily_usd": amount, "callback_url": url}


def test_create_adopt_update_in_place_and_delete(twilio: LocalTwilio):
    provider = configured(SpendAlertProvider)
    created = provider.create(props())
    (trigger,) = twilio.usage_triggers.values()
    assert (trigger["usage_category"], trigger["trigger_by"], trigger["recurring"], trigger["trigger_value"]) == \
        ("calls-outbound", "price", "daily", "25.00")
    assert trigger["callback_url"] == HOOK and trigger["friendly_name"] == "callmask-dev outbound calls over $25.00 a day"
    assert provider.create(props()).id == created.id, "a second create finds the first"

    moved = props(url="https://alerts.example.com/v2")
    diff = provider.diff(created.id, created.outs, moved)
    assert diff.changes and diff.replaces == []
    provider.update(created.id, created.outs, moved)
    assert twilio.usage_triggers[created.id]["callback_url"] == "https://alerts.example.com/v2"

    assert provider.diff(created.id, created.outs, props(amount="40.00")).replaces == ["daily_usd"]
    provider.delete(created.id, created.outs)
    assert twilio.usage_triggers == {}
    provider.delete(created.id, created.outs)  # already gone: not an error


def test_a_new_amount_is_a_new_trigger_made_before_the_old_one_goes(twilio):
    provider = configured(SpendAlertProvider)
    old = provider.create(props())
    new = provider.create(props(amount="40.00"))  # the engine creates the replacement first
    assert new.id != old.id and len(twilio.usage_triggers) == 2
    provider.delete(old.id, old.outs)
    (left,) = twilio.usage_triggers.values()
    assert left["trigger_value"] == "40.00"


def test_a_lost_create_answer_is_found_again_not_repeated(twilio, monkeypatch):
    monkeypatch.setenv(TIMEOUT_VARIABLE, "0.1")
    twilio.fail("POST", TRIGGERS, kind=TIMEOUT_AFTER)
    created = configured(SpendAlertProvider).create(props())
    assert list(twilio.usage_triggers) == [created.id]


def test_console_drift_is_reported_and_an_amount_changed_there_is_replaced(twilio):
    provider = configured(SpendAlertProvider)
    created = provider.create(props())
    assert provider.read(created.id, created.outs).outs["drift"] == ""
    twilio.usage_triggers[created.id].update(callback_url="https://attacker.example.com/", trigger_value="5000")
    refreshed = provider.read(created.id, created.outs).outs
    assert refreshed["drift"] == "changed outside callmask: callback_url, daily_usd"
    assert provider.diff(created.id, refreshed, props()).replaces == ["daily_usd"]
    replacement = provider.create(props())
    assert replacement.id != created.id, "the drifted trigger is not adopted"
    del twilio.usage_triggers[created.id]
    assert provider.read(created.id, created.outs).id == ""


@pytest.mark.parametrize("alert, expected", [
    ({"dailyUsd": 0, "callbackUrl": HOOK}, "callmask:spendAlert.dailyUsd: expected a positive number of US dollars"),
    ({"dailyUsd": "lots", "callbackUrl": HOOK}, "callmask:spendAlert.dailyUsd: expected a positive number"),
    ({"dailyUsd": 25, "callbackUrl": "http://alerts.example.com"}, "callmask:spendAlert.callbackUrl: expected an https://"),
    ({"dailyUsd": 25}, "callmask:spendAlert.callbackUrl: expected an https:// URL that Twilio can call, got None"),
    ({"dailyUsd": 25, "callbackUrl": HOOK, "daily": 3}, "callmask:spendAlert.daily: unknown key"),
    ("25", "callmask:spendAlert: expected an object {dailyUsd: 25"),
])
def test_bad_spend_alerts_are_one_line_naming_the_key(alert, expected):
    values, others = from_files("dev")
    values.update(pins=TEST_PINS, spendAlert=alert)
    with pytest.raises(SettingsError) as raised:
        parse_settings(values, others)
    assert any(problem.startswith(expected) for problem in raised.value.problems), raised.value.problems


def test_a_spend_alert_in_the_engine_s_form_is_read():
    values, others = from_files("dev")
    values.update(pins=TEST_PINS, spendAlert='{"dailyUsd": 12.5, "callbackUrl": "%s"}' % HOOK)
    alert = parse_settings(values, others).spend_alert
    assert (alert.daily_usd, alert.callback_url) == ("12.50", HOOK)
