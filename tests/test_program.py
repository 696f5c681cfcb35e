"""The Pulumi program under mocks, for every committed stack file."""

from __future__ import annotations

import base64
import json
import re

import pytest
from callmask.cli import main
from callmask.providers.studio_flow import StudioFlowProvider
from callmask.config.stack_config import stack_names
from callmask.line.flow_gate import STAND_IN_PIN_CHECK_URL
from conftest import TEST_PINS, configured
from flow_fixtures import stack_settings
from pulumi.runtime.rpc import is_rpc_secret
from pulumi_harness import WEBHOOK, engine_config, run_program
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN

STACKS = stack_names()


def test_both_environments_are_committed():
    assert {"dev", "prod"} <= set(STACKS)


@pytest.fixture(params=STACKS)
def stack(request):
    return request.param


def deploy(stack, **overrides):
    config, secret_keys = engine_config(stack, TEST_PINS, **overrides)
    return run_program(stack, config, secret_keys)


LINE_TYPES = ["callmask:index:DialOutLine", "pulumi-python:dynamic/twilio:DialingPermissions",
              "pulumi-python:dynamic/twilio:PhoneNumber", "pulumi-python:dynamic/twilio:StudioFlow",
              "pulumi-python:dynamic/twilio:VoiceBinding"]
FUNCTION_TYPES = ["pulumi-python:dynamic/callmask:PinSalt", *(f"pulumi-python:dynamic/twilio:{name}" for name in (
    "EnvironmentVariables", "FunctionVersion", "ServerlessBuild", "ServerlessDeployment", "ServerlessEnvironment",
    "ServerlessFunction", "ServerlessService", "ApiKey", "SyncService", "SyncMap"))]


def test_program_registers_the_line_with_its_children(stack):
    run = deploy(stack)
    assert run.error is None
    types = sorted(r.type for r in run.registrations)
    assert types == sorted(LINE_TYPES + (FUNCTION_TYPES if stack_settings(stack).checks_pin_in_function else []))
    line = run.resource("DialOutLine")
    for child in ("DialingPermissions", "StudioFlow", "PhoneNumber", "VoiceBinding"):
        assert run.resource(child).parent.endswith("DialOutLine::line"), child
    assert line.parent.endswith(f"pulumi:pulumi:Stack::callmask-{stack}")


def test_stack_outputs_are_wired(stack):
    run = deploy(stack)
    flow_sid = "FW" + "1" * 32
    assert run.outputs["flowSid"] == flow_sid
    assert run.outputs["webhookUrl"] == WEBHOOK.format(account=ACCOUNT_SID, sid=flow_sid)
    assert run.outputs["phoneNumberSid"] == "PN" + "2" * 32
    assert run.outputs["phoneNumber"].startswith("+1")
    binding = run.resource("VoiceBinding").inputs
    assert binding["voice_url"] == run.outputs["webhookUrl"], "the binding uses the flow's webhook URL"
    assert binding["phone_number_sid"] == run.outputs["phoneNumberSid"] and binding["voice_method"] == "POST"


def test_flow_inputs_are_readable_template_and_values_with_secret_pins(stack):
    run = deploy(stack)
    flow = run.resource("StudioFlow")
    in_function = stack_settings(stack).checks_pin_in_function
    assert is_rpc_secret(flow.inputs["pins"]) and flow.inputs["pins"]["value"] == ([] if in_function else TEST_PINS)
    assert not is_rpc_secret(flow.inputs["template"]) and not is_rpc_secret(flow.inputs["values"])
    template, values = json.loads(flow.inputs["template"]), json.loads(flow.inputs["values"])
    assert template["initial_state"] == "Trigger"
    if in_function:  # the Function says the greeting and gathers the PIN
        assert "pinLength" not in values and "prompts.greeting" not in values and values["pinCheckTimeout"] < 600
        assert re.fullmatch(r"https://callmask-line-pin-environment-1234\.twil\.io/pin-check", flow.inputs["pin_check_url"])
    else:
        assert values["pinLength"] == 8 and values["prompts.greeting"] and "pin_check_url" not in flow.inputs
    assert flow.inputs["friendly_name"] == f"callmask-{stack}"
    assert "pins" in flow.additional_secret_outputs
    assert "definition" not in flow.inputs


def test_the_stack_s_staging_reaches_the_flow_and_secret_test_users_stay_secret():
    staged = deploy("prod").resource("StudioFlow")
    assert staged.inputs["publish"] is False and staged.inputs["test_users"] == ["+14155550199"]
    assert "test_users" not in staged.additional_secret_outputs
    config, secret_keys = engine_config("prod", TEST_PINS, testUsers=["+14155550188"])
    secret = run_program("prod", config, [*secret_keys, "callmask:testUsers"]).resource("StudioFlow")
    assert is_rpc_secret(secret.inputs["test_users"]) and secret.inputs["test_users"]["value"] == ["+14155550188"]
    assert "test_users" in secret.additional_secret_outputs
    assert deploy("dev").resource("StudioFlow").inputs["publish"] is True


def test_a_spend_alert_is_registered_only_when_the_stack_sets_one():
    assert not [r for r in deploy("dev").registrations if r.type.endswith(":SpendAlert")]
    run = deploy("dev", spendAlert={"dailyUsd": 25, "callbackUrl": "https://alerts.example.com/spend"})
    alert = run.resource("SpendAlert")
    assert alert.inputs["daily_usd"] == "25.00" and alert.inputs["callback_url"] == "https://alerts.example.com/spend"
    assert alert.parent.endswith("DialOutLine::line")


def test_pins_appear_only_inside_secret_inputs(stack):
    run = deploy(stack)
    for registration in run.registrations:
        for text in plaintext_strings(registration.inputs):
            for secret in (*TEST_PINS, AUTH_TOKEN):
                assert secret not in text, f"{registration.name} carries a secret outside a secret input"


def test_the_programs_flow_inputs_deploy_what_callmask_render_prints(stack, twilio, capsys):
    inputs = deploy(stack).resource("StudioFlow").inputs
    props = {key: value["value"] if is_rpc_secret(value) else value for key, value in inputs.items()}
    created = configured(StudioFlowProvider).create(props)
    assert main(["render", "--stack", stack, "--pins", ",".join(TEST_PINS), "--reveal"]) == 0
    printed = capsys.readouterr().out
    if "pin_check_url" in props:  # offline, before the Function exists, its URL is a stand-in
        printed = printed.replace(STAND_IN_PIN_CHECK_URL, props["pin_check_url"])
    assert json.loads(printed) == twilio.flows[created.id]["definition"]


def test_pickled_providers_hold_no_credentials_or_pins(stack):
    run = deploy(stack)
    for registration in run.registrations[1:]:
        pickled = base64.b64decode(registration.inputs["__provider"]["value"])
        for secret in (*TEST_PINS, AUTH_TOKEN, ACCOUNT_SID):
            assert secret.encode() not in pickled


def test_number_options_follow_release_number_on_destroy(stack):
    kept = deploy(stack, releaseNumberOnDestroy=False).resource("PhoneNumber")
    assert kept.retain_on_delete and kept.inputs["release_on_destroy"] is False
    released = deploy(stack, releaseNumberOnDestroy=True).resource("PhoneNumber")
    assert not released.retain_on_delete and released.inputs["release_on_destroy"] is True


def test_dev_and_prod_differ_where_they_should():
    dev = json.loads(deploy("dev").resource("StudioFlow").inputs["values"])
    prod = json.loads(deploy("prod").resource("FunctionVersion").inputs["values"])  # prod's Function greets
    assert dev["prompts.greeting"] != prod["greeting"]
    dev_number, prod_number = (deploy(s).resource("PhoneNumber").inputs["selection"] for s in ("dev", "prod"))
    assert dev_number != prod_number


def test_the_function_gets_secret_pins_by_label_and_goes_with_its_service():
    run = run_program("prod", *engine_config("prod", {"alice": TEST_PINS[0], "bob": TEST_PINS[1]}))
    version = run.resource("FunctionVersion")
    assert is_rpc_secret(version.inputs["pins"]) and version.inputs["pins"]["value"] == {
        "alice": TEST_PINS[0], "bob": TEST_PINS[1]}
    assert version.inputs["labels"] == ["alice", "bob"], "a preview shows whose PIN changed"
    assert version.inputs["visibility"] == "protected" and version.inputs["path"] == "/pin-check"
    assert {"pins", "salt"} <= set(version.additional_secret_outputs)
    assert is_rpc_secret(run.resource("EnvironmentVariables").inputs["variables"])
    service = run.resource("ServerlessService")
    children = [r for r in run.registrations if r.type in FUNCTION_TYPES and r.type.split(":")[-1] not in (
        "ServerlessService", "PinSalt", "ApiKey", "SyncService", "SyncMap")]
    assert len(children) == 6 and all(child.deleted_with == service.urn for child in children)
    assert run.resource("SyncMap").deleted_with == run.resource("SyncService").urn
    assert "secret" in run.resource("ApiKey").additional_secret_outputs
    flow = run.resource("StudioFlow")
    assert {run.resource("ServerlessDeployment").urn, run.resource("EnvironmentVariables").urn} <= set(flow.dependencies), \
        "the flow points at the Function only once it is deployed and configured"
    assert run.outputs["pinCheckUrl"] == flow.inputs["pin_check_url"]


BAD_CONFIG = [
    ({"pins": ["1234567a"]}, "callmask:pins[0]: a PIN must be a string of digits"),
    ({"pins": ["2468135"]}, "callmask:pins[0]: has 7 digits; every PIN must have exactly pinLength (8)"),
    ({"pins": ["24681357", "24681357"]}, "callmask:pins: contains the same PIN more than once"),
    ({"pins": ["246813"], "pinLength": 5}, "callmask:pinLength: expected a whole number from 6 to 12"),
    ({"pins": ["77777777"]}, "callmask:pins[0]: is one digit repeated"),
    ({"pins": ["23456789"]}, "callmask:pins[0]: is a run of ascending or descending digits"),
    ({"pins": ["98765432"]}, "callmask:pins[0]: is a run of ascending or descending digits"),
    ({"pins": []}, "callmask:pins: expected a non-empty list of PINs"),
    ({"pins": [["24681357"], {"pin": "86420135"}]}, "callmask:pins[0]: a PIN must be a string of digits 0-9"),
    ({"pins": [24681357, "86420135"]}, "callmask:pins[0]: is a number, not text (a number loses its leading zeros): "
     "set each PIN as a secret (a secret is kept as text), pulumi config set --path --secret 'callmask:pins[N]'"),
    ({"language": "english"}, "callmask:language: expected a language tag"),
    ({"gatherTimeout": 0}, "callmask:gatherTimeout: expected a whole number from 1 to 30"),
    ({"dialTimeout": "soon"}, "callmask:dialTimeout: expected a whole number from 5 to 600"),
    ({"prompts": {"greting": "Hi"}}, "callmask:prompts.greting: unknown prompt"),
    ({"prompts": {"goodbye": ""}}, "callmask:prompts.goodbye: expected non-empty text"),
    ({"allowedCountries": ["+44"]}, "callmask:allowedCountries: '+44' is not an ISO 3166 country code"),
    ({"allowedCountries": []}, "callmask:allowedCountries: expected a non-empty list of ISO countries"),
    ({"allowedCountries": [False]}, "callmask:allowedCountries: False is not text: quote every country"),
    ({"allowedCountries": ["US", "US"]}, "callmask:allowedCountries: lists a country more than once"),
    ({"allowedNumberTypes": ["premium"]}, "callmask:allowedNumberTypes: 'premium' is not a number type"),
    ({"allowedCountryCodes": ["1", "44"]}, "callmask:allowedCountryCodes: is replaced by allowedCountries, ISO "
     "countries (a calling code such as 1 is shared by 25 countries): set callmask:allowedCountries to [US, GB]"),
    ({"callerId": "415-555-0100"}, "callmask:callerId: expected an E.164 number"),
    ({"phoneNumber": {"number": "+14155550100", "sid": "PN" + "0" * 32}}, "callmask:phoneNumber: expected exactly one of"),
    ({"phoneNumber": {"number": "4155550100"}}, "callmask:phoneNumber.number: expected an E.164 number"),
    ({"phoneNumber": {"sid": "PX123"}}, "callmask:phoneNumber.sid: expected a phone number SID"),
    ({"phoneNumber": {"search": {"country": "usa"}}}, "callmask:phoneNumber.search.country: expected an ISO 3166"),
    ({"phoneNumber": {"search": {"country": "US", "areaCode": "41"}}}, "callmask:phoneNumber.search.areaCode"),
    ({"phoneNumber": {"search": {"country": "US", "near": "x"}}}, "callmask:phoneNumber.search.near: unknown key"),
    ({"releaseNumberOnDestroy": "yes"}, "callmask:releaseNumberOnDestroy: expected true or false"),
    ({"greeting": "Hi"}, "callmask:greeting: unknown key"),
    ({"pinCheck": "functon"}, "callmask:pinCheck: expected one of studio, function, got 'functon'; did you mean function?"),
    ({"pins": {"alice": "24681357", "Alice": "86420135"}}, "callmask:pins.Alice: the label is used twice"),
    ({"pins": {"24681357": "86420135"}}, "callmask:pins: label 1 is not a name"),
    ({"pins": {"room1234": "86420135"}}, "callmask:pins: label 1 holds 4 or more digits in a row"),
    ({"pins": {"alice": "2468"}}, "callmask:pins.alice: has 4 digits; every PIN must have exactly pinLength (8)"),
    ({"pins": {"alice": 24681357}}, "callmask:pins.alice: is a number, not text"),
    ({"pins": {"alice": "24681357", "bob": "24681357"}}, "callmask:pins: gives the same PIN under two labels"),
    ({"pins": {}}, "callmask:pins: expected a non-empty list of PINs, or a map of label -> PIN"),
    # The gate: no PIN in a non-secret value, nothing reads the PIN back.
    ({"prompts": {"goodbye": "Your PIN 24681357 worked."}}, "callmask:prompts.goodbye: contains one of the PINs"),
    ({"callerId": "+12468135799"}, "callmask:callerId: contains one of the PINs"),
    ({"prompts": {"goodbye": "You entered {{widgets.gather_pin.Digits}}."}},
     "say_goodbye: reads the PIN gather widgets.gather_pin (the caller's PIN)"),
]


@pytest.mark.parametrize("overrides, expected", BAD_CONFIG, ids=[e for _, e in BAD_CONFIG])
def test_bad_config_is_one_clear_error_and_nothing_is_deployed(overrides, expected):
    pins = overrides.pop("pins", TEST_PINS)
    config, secret_keys = engine_config("dev", pins, **overrides)
    run = run_program("dev", config, secret_keys)
    assert run.error is not None and expected in str(run.error)
    assert type(run.error).__name__ == "RunError", "a config error ends the program without a traceback"
    assert run.registrations == [], "nothing is registered when config is wrong"
    assert not any(pin in str(run.error) for pin in re.findall(r"\d{6,}", json.dumps([*TEST_PINS, *pins])))


def test_missing_pins_are_named():
    config, secret_keys = engine_config("dev", TEST_PINS)
    del config["callmask:pins"]
    run = run_program("dev", config, secret_keys)
    assert "callmask:pins: is required but not set" in str(run.error)
    assert run.registrations == []


def plaintext_strings(node):
    """Every string in a resource's inputs that is not inside a secret."""
    if is_rpc_secret(node):
        return
    if isinstance(node, dict):
        for value in node.values():
            yield from plaintext_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from plaintext_strings(item)
    elif isinstance(node, str):
        yield node


def test_a_pin_in_the_greeting_is_refused_where_the_function_says_it_too():
    """prod's greeting goes to its Function's (non-secret) settings, not the flow: the gate still checks it."""
    config, secret_keys = engine_config("prod", TEST_PINS, prompts={"greeting": f"Key {TEST_PINS[1]} now."})
    run = run_program("prod", config, secret_keys)
    assert "callmask:prompts.greeting: contains one of the PINs" in str(run.error) and run.registrations == []
    assert TEST_PINS[1] not in str(run.error)
