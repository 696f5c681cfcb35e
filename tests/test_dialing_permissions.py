"""The account's voice dialing permissions as the stack's `dialingPermissions` says, over real HTTP against
the spec-validated fake (a new account: ordinary ranges on for US and GB), and through the real CLI."""

from __future__ import annotations

import json
import re

import pytest
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, LocalTwilio, new_account_permissions
from callmask.providers.dialing_permissions import DialingPermissionsProvider
from conftest import configured
from pulumi_cli import PulumiProject
from test_engine_lifecycle import readme_pin_command

ORDINARY, SPECIAL, TOLL_FRAUD = ("low_risk_numbers_enabled", "high_risk_special_numbers_enabled",
                                 "high_risk_tollfraud_numbers_enabled")


def props(mode: str, countries=("US", "CA", "GB"), number_types=("fixedLine", "mobile")) -> dict:
    return {"stack": "prod", "mode": mode, "countries": list(countries), "number_types": list(number_types)}


def enabled(twilio: LocalTwilio) -> list[str]:
    return sorted(iso for iso, entry in twilio.dialing_permissions.items() if entry[ORDINARY])


def test_check_reads_only_refuses_a_disabled_country_and_warns_of_risky_ranges(twilio):
    provider = configured(DialingPermissionsProvider)
    assert provider.check({}, props("check")).failures == []
    twilio.dialing_permissions["GB"][ORDINARY] = False
    twilio.dialing_permissions["US"][TOLL_FRAUD] = True
    checked = provider.check({}, props("check"))
    (failure,) = checked.failures
    assert failure.reason.startswith("calls to GB would fail (Twilio error 13227): the account's voice dialing "
                                     "permissions disable ordinary numbers there")
    assert checked.inputs["warnings"] == ["US: the account enables toll-fraud ranges; turn them off in the Console"]
    assert twilio.writes() == []


def test_check_only_warns_without_credentials_or_when_they_may_not_read(twilio, monkeypatch):
    bare = DialingPermissionsProvider()  # a pull-request preview: no Twilio credentials at all
    checked = bare.check({}, props("check"))
    assert checked.failures == [] and checked.inputs["warnings"][0].startswith(
        "dialing permissions not checked: no Twilio credentials here")
    twilio.fail("GET", r"/DialingPermissions/Countries$", status=403, code=20003, times=10)
    checked = configured(DialingPermissionsProvider).check({}, props("check"))
    assert checked.failures == [] and "may not read them (HTTP 403)" in checked.inputs["warnings"][0]
    refused = configured(DialingPermissionsProvider).check({}, props("exactly"))
    assert refused.failures and "HTTP 403" in refused.failures[0].reason, "a mode that writes cannot go blind"


def test_at_least_enables_the_allowed_countries_and_disables_nothing(twilio):
    twilio.dialing_permissions["GB"][ORDINARY] = False
    twilio.dialing_permissions["DE"][ORDINARY] = True
    provider = configured(DialingPermissionsProvider)
    checked = provider.check({}, props("atLeast")).inputs
    assert checked["planned"] == ["GB: ordinary on, high-risk special off, toll fraud off"]
    created = provider.create(checked)
    assert enabled(twilio) == ["DE", "GB", "US"] and len(twilio.bulk_updates) == 1
    assert created.outs["before"]["GB"] == {ORDINARY: False, SPECIAL: False, TOLL_FRAUD: False}
    assert len(created.outs["before"]) == len(twilio.dialing_permissions), "the account as it was before"
    provider.delete(created.id, created.outs)
    assert enabled(twilio) == ["DE", "US"], "GB is put back as it was"


def test_exactly_makes_the_account_the_line_s_and_destroy_puts_back_only_what_still_holds(twilio):
    twilio.dialing_permissions["DE"][ORDINARY] = True
    twilio.dialing_permissions["US"][TOLL_FRAUD] = True
    provider = configured(DialingPermissionsProvider)
    checked = provider.check({}, props("exactly", countries=("US", "CA"), number_types=("mobile", "premiumRate"))).inputs
    assert checked["planned"] == ["DE: ordinary off, high-risk special off, toll fraud off",
                                  "GB: ordinary off, high-risk special off, toll fraud off",
                                  "US: ordinary on, high-risk special on, toll fraud off"]
    created = provider.create(checked)
    assert enabled(twilio) == ["US"] and twilio.dialing_permissions["US"][SPECIAL] is True
    assert twilio.dialing_permissions["US"][TOLL_FRAUD] is False and len(twilio.bulk_updates) == 1
    again = provider.check(created.outs, props("exactly", countries=("US", "CA"), number_types=("mobile", "premiumRate")))
    assert again.inputs["planned"] == [] and not provider.diff(created.id, created.outs, again.inputs).changes

    twilio.dialing_permissions["DE"][ORDINARY] = True  # someone enables a country in the Console
    read = provider.read(created.id, created.outs).outs
    assert read["drift"] == ("changed outside callmask: DE: ordinary off, high-risk special off, toll fraud off "
                             "would be set again")
    twilio.dialing_permissions["DE"][ORDINARY] = False
    twilio.dialing_permissions["GB"][ORDINARY] = True  # changed since callmask set it: left alone on destroy
    provider.delete(created.id, created.outs)
    assert enabled(twilio) == ["DE", "GB", "US"] and twilio.dialing_permissions["US"][TOLL_FRAUD] is True


# ---- through the real CLI ----

@pytest.fixture
def fake(fresh_twilio):
    twilio = fresh_twilio
    twilio.available["US"] = ["+14155550100", "+14155550101"]
    yield twilio
    twilio.settle()
    assert twilio.spec_violations == [] and twilio.unserved == []


@pytest.mark.slow
def test_through_the_cli_check_refuses_in_one_line_and_exactly_applies_repairs_and_restores(tmp_path, fake, kms_key):
    line = PulumiProject(tmp_path, {"CALLMASK_TWILIO_BASE_URL": fake.base_url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                                    "TWILIO_AUTH_TOKEN": AUTH_TOKEN}, secrets_provider=kms_key)
    line.init_stack("dev")
    line.run_line(readme_pin_command())
    fake.dialing_permissions["US"][ORDINARY] = False
    refused = line.run("up", "--yes", check=False)
    assert refused.exit_code != 0
    assert "calls to US would fail (Twilio error 13227): the account's voice dialing permissions disable ordinary " \
           "numbers there" in refused.output
    assert fake.flows == {} and fake.numbers == {} and fake.writes() == [], "nothing is created"

    line.run("config", "set", "callmask:dialingPermissions", "exactly")
    preview = line.run("preview", "--diff")
    assert '"GB: ordinary off, high-risk special off, toll fraud off"' in preview.stdout
    assert '"US: ordinary on, high-risk special off, toll fraud off"' in preview.stdout
    line.apply("up")
    assert enabled(fake) == ["US"] and len(fake.bulk_updates) == 1
    writes = len(fake.writes())
    assert re.search(r"6 unchanged", line.apply("up").stdout)
    assert len(fake.writes()) == writes, "a second up writes nothing"

    fake.dialing_permissions["JM"][ORDINARY] = True  # enabled in the Console
    refreshed = line.apply("refresh", "--diff")
    assert "changed outside callmask: JM: ordinary off" in refreshed.stdout
    line.apply("up")
    assert enabled(fake) == ["US"]

    line.apply("destroy")
    expected = new_account_permissions()
    expected["US"][ORDINARY] = False  # as the account had it before the first write
    assert fake.dialing_permissions == expected
    state = json.loads(line.run("stack", "export").stdout)
    assert not state["deployment"].get("resources", [])[1:], "destroy leaves nothing"


@pytest.mark.slow
def test_through_the_cli_a_preview_without_credentials_skips_and_at_least_enables_then_restores(
        tmp_path, fake, kms_key):
    bare = PulumiProject(tmp_path / "bare", {"CALLMASK_TWILIO_BASE_URL": fake.base_url}, secrets_provider=kms_key)
    bare.init_stack("dev")
    bare.run_line(readme_pin_command())
    preview = bare.run("preview")
    assert "dialing permissions not checked: no Twilio credentials here" in preview.output and fake.calls == []

    line = PulumiProject(tmp_path / "line", {"CALLMASK_TWILIO_BASE_URL": fake.base_url,
                                             "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN},
                         secrets_provider=kms_key)
    line.init_stack("dev")
    line.run_line(readme_pin_command())
    line.run("config", "set", "callmask:dialingPermissions", "atLeast")
    fake.dialing_permissions["US"][ORDINARY] = False
    line.apply("up")
    assert enabled(fake) == ["GB", "US"], "US enabled, GB (not the line's) left as it was"
    line.apply("destroy")
    assert enabled(fake) == ["GB"], "US is put back as it was before the first write"
