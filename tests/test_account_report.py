"""`callmask account`: the account's voice dialing permissions against the line's destinations, read over
real HTTP from the spec-validated fake (a new account's realistic country list). Read-only; one-line errors.
Through the real CLI: test_engine_lifecycle.py."""

from __future__ import annotations

import json

import pytest
from callmask.operations import account_report
from callmask.operations.deployed_stack import DeployedStack, StackUnreadable
from callmask.twilio import dialing_permissions
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, LocalTwilio

STACK = DeployedStack("prod", {"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN}, {})
PROD = ("US", "CA", "GB")
ORDINARY = ("fixedLine", "mobile")


def test_a_new_account_lists_every_country_with_ordinary_ranges_on_for_a_few(twilio: LocalTwilio):
    entries = account_report.read_permissions(STACK)
    assert len(entries) > 200 and len({e.iso_code for e in entries}) == len(entries)
    assert sorted(e.iso_code for e in entries if e.low_risk_numbers_enabled) == ["GB", "US"]
    (us,) = [e for e in entries if e.iso_code == "US"]
    assert us.name == "United States/Canada" and us.country_codes == ["+1"]
    assert "CA" not in {e.iso_code for e in entries}, "Canada is under the United States/Canada entry"
    assert twilio.writes() == [], "read-only"


def test_the_prod_line_on_a_new_account_is_ok_and_canada_maps_onto_the_us_entry(twilio):
    result = account_report.report(account_report.read_permissions(STACK), PROD, ORDINARY)
    assert [(c.country, c.entry, c.verdict) for c in result.countries] == [
        ("US", "US", "ok"), ("CA", "US", "ok"), ("GB", "GB", "ok")]
    assert result.blocked == [] and result.also_enabled == []


def test_a_disabled_country_is_blocked_and_risky_ranges_warn(twilio):
    twilio.dialing_permissions["GB"]["low_risk_numbers_enabled"] = False
    twilio.dialing_permissions["US"]["high_risk_tollfraud_numbers_enabled"] = True
    twilio.dialing_permissions["JM"]["low_risk_numbers_enabled"] = True
    result = account_report.report(account_report.read_permissions(STACK), PROD, ORDINARY)
    verdicts = {c.country: c.verdict for c in result.countries}
    assert verdicts["GB"].startswith("BLOCKED: ordinary numbers are disabled") and "13227" in verdicts["GB"]
    assert verdicts["US"] == verdicts["CA"] == "WARNING: toll-fraud ranges are ENABLED: turn them off"
    assert result.blocked == ["GB"] and result.also_enabled == ["JM"]
    text = account_report.table(result, "prod")
    assert text.splitlines()[0].split() == ["COUNTRY", "ENTRY", "ORDINARY", "HIGH-RISK", "SPECIAL", "TOLL", "FRAUD",
                                            "VERDICT"]
    assert "!! Calls to GB fail until their ordinary ranges are enabled" in text
    assert "Also enabled on the account, not needed by this line: JM." in text
    listed = json.loads(account_report.as_json(result))
    assert listed["countries"][2] == {"country": "GB", "entry": "GB", "ordinary": False, "high_risk_special": False,
                                      "toll_fraud": False, "needs_high_risk": False, "verdict": verdicts["GB"]}


def test_high_risk_special_ranges_are_judged_by_the_number_types_the_line_allows(twilio):
    twilio.dialing_permissions["GB"]["high_risk_special_numbers_enabled"] = True
    entries = account_report.read_permissions(STACK)
    ordinary = {c.country: c.verdict for c in account_report.report(entries, ("GB",), ORDINARY).countries}
    premium = {c.country: c.verdict for c in account_report.report(entries, ("GB", "US"), ("premiumRate",)).countries}
    assert ordinary["GB"] == "WARNING: high-risk special ranges are enabled, which the line does not need"
    assert premium == {"GB": "ok", "US": "WARNING: high-risk special ranges are off, so premium or shared-cost "
                                         "numbers fail"}


def test_pages_through_the_country_list(twilio, monkeypatch):
    monkeypatch.setattr(dialing_permissions, "PAGE_SIZE", 100)
    assert len(account_report.read_permissions(STACK)) == len(twilio.dialing_permissions)
    assert len(twilio.reads("/DialingPermissions/Countries")) == -(-len(twilio.dialing_permissions) // 100)


@pytest.mark.parametrize("status, expected", [
    (401, "stack prod: Twilio refused the credentials (HTTP 401)"),
    (403, "stack prod: these credentials may not read the account's voice dialing permissions (HTTP 403): use an API "
          "key")])
def test_refusals_and_missing_credentials_are_one_line(twilio, status, expected):
    twilio.fail("GET", r"/DialingPermissions/Countries$", status=status, times=10)
    with pytest.raises(StackUnreadable) as raised:
        account_report.read_permissions(STACK)
    assert str(raised.value).startswith(expected) and AUTH_TOKEN not in str(raised.value)
    with pytest.raises(StackUnreadable, match=r"^stack prod: Twilio credentials are missing"):
        account_report.read_permissions(DeployedStack("prod", {}, {}))
