"""The PIN guard's Python side: `callmask:pinGuard` settings, what the Function is deployed with, the Sync
Service, Sync Map and API key providers (idempotent creates, refresh, delete) over real HTTP against the
local Twilio's Sync and Keys (checked against Twilio's specs), the caller key the Function and `lockouts`
share, and `callmask simulate --locked`. The guard's rules run under Node (functions/test/pin-guard.test.js);
through the real CLI: tests/test_pin_function_lifecycle.py."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta

import pytest
from callmask.cli import main
from callmask.config.settings import PinGuard, SettingsError, parse_settings
from callmask.function import pin_function
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, RESET_AFTER, RESET_BEFORE, TIMEOUT_AFTER
from callmask.operations.call_audit import guarded_caller
from callmask.providers.api_key import ApiKeyProvider
from callmask.providers.sync import MAP_NAME, SyncMapProvider, SyncServiceProvider
from callmask.providers.twilio_provider import ProviderError
from callmask.twilio.twilio_api import BASE_URL_VARIABLE, TIMEOUT_VARIABLE, connect
from conftest import TEST_PINS, configured
from flow_fixtures import FAST_KDF, stack_values

PINS_ARG = ",".join(TEST_PINS)


def settings_with(stack: str, **values):
    given = stack_values(stack)
    given.update(pins=list(TEST_PINS), **values)
    return parse_settings(given)


# ---- settings ----
def test_the_guard_is_on_by_default_in_function_mode_with_the_issue_defaults():
    settings = settings_with("prod")
    assert settings.pin_guard == PinGuard() and settings.guards_callers
    values = settings.function_values()
    assert values["guard"] == {"lockAfter": 5, "windowMinutes": 15, "lockMinutes": 15, "alertAfter": 20}
    assert (values["attemptsPerCall"], values["retryPrompt"]) == (3, settings.prompts.pinRetry)
    assert "alertUrl" not in json.dumps(values), "the alert URL is a Function variable (it may hold a token)"
    assert settings.pin_check_timeout == 90 + 3 * settings.gather_timeout, "the flow waits for every attempt"


def test_studio_mode_takes_attempts_per_call_into_its_flow_and_keeps_the_rest_for_its_preview_to_name():
    settings = settings_with("dev", pinGuard={"attemptsPerCall": 2, "lockAfter": 4})
    assert settings.flow_values()["attemptsPerCall"] == 2 and not settings.guards_callers
    assert settings.pin_guard.function_only == ("lockAfter",)


def test_a_guard_turned_off_keeps_the_attempts_and_drops_the_lockouts():
    settings = settings_with("prod", pinGuard={"enabled": False, "attemptsPerCall": 1})
    assert not settings.guards_callers and "guard" not in settings.function_values()
    assert settings.function_values()["attemptsPerCall"] == 1


def test_the_engines_text_of_each_value_reads_as_the_stack_file_does():
    settings = settings_with("prod", pinGuard=json.dumps({"lockAfter": "7", "enabled": "true",
                                                          "alertUrl": "http://127.0.0.1:8080/alerts"}))
    assert (settings.pin_guard.lock_after, settings.pin_guard.alert_url) == (7, "http://127.0.0.1:8080/alerts")


@pytest.mark.parametrize("url", ["http://alerts.example.com/hook?token=s3cr3t", "ftp://h/x", "https://", 42])
def test_an_alert_url_that_is_not_one_is_refused_without_being_echoed(url):
    with pytest.raises(SettingsError) as refused:
        settings_with("prod", pinGuard={"alertUrl": url})
    assert "callmask:pinGuard.alertUrl: expected an https:// URL" in str(refused.value)
    assert "s3cr3t" not in str(refused.value)


# ---- the caller key, shared with the Function ----
def test_the_caller_key_and_mask_are_the_functions_own():
    salt = pin_function.new_salt()
    callers = ["+14155550123", "+442079460000", "anonymous"]
    script = ("globalThis.Twilio = require('twilio'); const {internals} = require('./pin-check.js');"
              f"const callers = {json.dumps(callers)};"
              f"console.log(JSON.stringify(callers.map((c) => [internals.callerKey({json.dumps(salt)}, c), "
              "internals.maskedCaller(c)])));")
    done = subprocess.run(["node", "-e", script], cwd=pin_function.FUNCTIONS_DIR, capture_output=True, text=True,
                          check=True)
    expected = [[pin_function.caller_key(salt, caller), guarded_caller(caller)] for caller in callers]
    assert json.loads(done.stdout) == expected
    assert not any(caller.lstrip("+") in key for caller, (key, _) in zip(callers, expected)), "never in clear"


# ---- the local Twilio's Sync and Keys ----
def test_local_sync_keeps_ttls_refuses_a_stale_revision_and_a_second_create(twilio):
    client = connect({"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN})
    service = client.sync.v1.services.create(friendly_name="guard")
    items = client.sync.v1.services(service.sid).sync_maps.create(unique_name=MAP_NAME).sync_map_items
    made = items.create(key="caller-1", data={"failures": 1}, item_ttl=60)
    assert (made.revision, made.data) == ("0", {"failures": 1}) and made.date_expires is not None
    with pytest.raises(Exception) as duplicate:
        items.create(key="caller-1", data={"failures": 1})
    assert duplicate.value.status == 409
    client.sync.v1.services(service.sid).sync_maps(MAP_NAME).sync_map_items("caller-1").update(
        data={"failures": 2}, if_match="0")
    with pytest.raises(Exception) as stale:
        client.sync.v1.services(service.sid).sync_maps(MAP_NAME).sync_map_items("caller-1").update(
            data={"failures": 3}, if_match="0")
    assert stale.value.status == 412
    twilio.expire_items(timedelta(seconds=61))
    assert twilio.map_items(service.sid, MAP_NAME) == {}, "an item is gone once its TTL has run out"
    with pytest.raises(Exception) as gone:
        client.sync.v1.services(service.sid).sync_maps(MAP_NAME).sync_map_items("caller-1").fetch()
    assert gone.value.status == 404


# ---- providers ----
def test_sync_service_and_map_are_made_once_found_again_and_go_with_the_service(twilio):
    services, maps = configured(SyncServiceProvider), configured(SyncMapProvider)
    service = services.create({"friendly_name": "callmask-prod PIN guard"})
    again = services.create({"friendly_name": "callmask-prod PIN guard"})
    assert again.id == service.id and len(twilio.sync_services) == 1, "a create after a lost answer finds it"
    made = maps.create({"service_sid": service.id, "unique_name": MAP_NAME})
    assert maps.create({"service_sid": service.id, "unique_name": MAP_NAME}).id == made.id
    assert services.read(service.id, service.outs).outs["drift"] == ""
    twilio.sync_services[service.id]["friendly_name"] = "renamed"
    assert services.read(service.id, service.outs).outs["drift"] == "renamed outside callmask"
    services.delete(service.id, service.outs)
    assert twilio.sync_services == {}
    assert services.read(service.id, service.outs).id == "" and maps.read(made.id, made.outs).id == ""


def test_an_api_key_is_made_per_stack_and_a_lost_answer_leaves_no_orphan(twilio, monkeypatch):
    keys = configured(ApiKeyProvider)
    monkeypatch.setenv(TIMEOUT_VARIABLE, "0.2")
    twilio.fail("POST", r"/Keys\.json$", kind=TIMEOUT_AFTER, held_at_most=5)
    with pytest.raises(ProviderError) as lost:
        keys.create({"friendly_name": "callmask-prod PIN guard"})
    twilio.settle()
    assert "ApiKey callmask-prod PIN guard: create failed" in str(lost.value) and len(twilio.key_names) == 1
    orphan = next(iter(twilio.key_names))
    made = keys.create({"friendly_name": "callmask-prod PIN guard"})
    assert list(twilio.key_names) == [made.id] and orphan not in twilio.api_keys, "the orphan, its secret unknown, is gone"
    assert twilio.api_keys[made.id] == made.outs["secret"] and made.outs["secret"] not in str(lost.value)
    assert keys.read(made.id, made.outs).outs == made.outs
    keys.delete(made.id, made.outs)
    assert twilio.key_names == {} and keys.read(made.id, made.outs).id == "", "deleted in the Console: refresh drops it"


# ---- simulate ----
def test_simulate_plays_a_locked_out_caller_and_a_caller_who_is_not(capsys):
    code = main(["simulate", "--stack", "prod", "--pins", PINS_ARG, "--locked", "--caller", "+14155550166",
                 "--press", f"{TEST_PINS[0]}#", "--press", "14155550123#"])
    out = capsys.readouterr().out
    assert code == 0 and "[say_locked]" in out and "dial" not in out.splitlines()[-1], out
    code = main(["simulate", "--stack", "prod", "--pins", PINS_ARG, "--caller", "+14155550166",
                 "--press", f"{TEST_PINS[0]}#", "--press", "14155550123#"])
    assert code == 0 and "outcome: connected" in capsys.readouterr().out
    code = main(["simulate", "--stack", "dev", "--pins", PINS_ARG, "--locked"])
    assert code == 1 and "--locked plays a caller locked out by the PIN guard: it needs a --stack with " \
                         "callmask:pinCheck function" in capsys.readouterr().err


# ---- the Function's own Sync calls, each failed every way that does not hold a request ----
GUARD_FAULTS = {"429": {"status": 429, "code": 20429}, "500": {"status": 500}, "503": {"status": 503},
                "400": {"status": 400, "code": 21000}, "401": {"status": 401, "code": 20003},
                "reset-before": {"kind": RESET_BEFORE}, "reset-after": {"kind": RESET_AFTER}}


@pytest.fixture(scope="module")
def guarded_function(tmp_path_factory):
    """The deployed Function with its guard, in Twilio's runtime (started once for the module)."""
    salt = pin_function.new_salt()
    values = {**settings_with("prod").function_values(), "attemptsPerCall": 1}
    code = pin_function.deployed_code(pin_function.source(), values, {"alice": TEST_PINS[0]}, salt, FAST_KDF)
    with pin_function.LocalFunction(code, tmp_path_factory.mktemp("guarded")) as function:
        yield function, salt


def check(service, digits: str) -> dict[str, str]:
    url = f"https://callmask-prod-1.twil.io{pin_function.FUNCTION_PATH}?attempt=1&flowSid=FW{'b' * 32}&step=check"
    status, body = service(url, {"AccountSid": ACCOUNT_SID, "From": "+14155550123", "Digits": digits})
    assert status == 200, body
    returned = body.split("FlowEvent=return&amp;", 1)[1].split("<", 1)[0].replace("&amp;", "&")
    return dict(part.split("=", 1) for part in returned.split("&"))


@pytest.mark.parametrize("digits", [TEST_PINS[0], "13572468"], ids=["right PIN", "wrong PIN"])
def test_every_sync_call_of_a_check_failed_refuses_the_pin_and_says_why(twilio, guarded_function, digits):
    function, salt = guarded_function
    variables = {pin_function.SALT_VARIABLE: salt, **twilio.pin_guard("guard"), BASE_URL_VARIABLE: twilio.base_url}
    service = function.service(variables)  # one runtime for every case: the Map is emptied between them
    items = twilio.sync_services[variables["SYNC_SERVICE_SID"]]["maps"][variables["SYNC_MAP_SID"]]["items"]
    before = len(twilio.calls)
    verdict = check(service, digits)
    calls = [(c.method, c.path) for c in twilio.calls[before:]]
    assert verdict["verdict"] == ("ok" if digits == TEST_PINS[0] else "bad") and "reason" not in verdict
    assert len(calls) == (2 if digits == TEST_PINS[0] else 4) and all("/Maps/" in path for _, path in calls), calls
    for index, (method, path) in enumerate(calls):
        for fault, how in GUARD_FAULTS.items():
            twilio.settle()
            items.clear()
            twilio.faults.clear()
            twilio.fail(method, "^" + re.escape(path) + "$", skip=calls[:index].count((method, path)), **how)
            verdict = check(service, digits)
            assert verdict == {"verdict": "bad", "reason": "guard-unavailable"}, (method, path, fault, verdict)
    twilio.settle()
