"""Stack files that look right and are not: each trap is one clear error, the same for `callmask` and
for the Pulumi program, and no stack file, however malformed, ends in a traceback."""

from __future__ import annotations

import copy
import json
import re
import shutil

import pytest
import yaml
from callmask.cli import main
from callmask.config.settings import SettingsError, parse_settings
from callmask.config.stack_config import PROJECT_DIR, from_files
from conftest import TEST_PINS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi_harness import engine_value, run_program
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN

DEV = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]


def project_with(tmp_path, stack_text: str, stack: str = "trap"):
    for name in ("Pulumi.yaml",):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "flow", tmp_path / "flow", dirs_exist_ok=True)
    (tmp_path / f"Pulumi.{stack}.yaml").write_bytes(stack_text.encode("utf-8", "surrogateescape")
                                                    if isinstance(stack_text, str) else stack_text)
    return tmp_path


def command(capsys, project, stack: str = "trap") -> tuple[int, str]:
    code = main(["validate", "--stack", stack, "--pins", ",".join(TEST_PINS), "--project-dir", str(project)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def program(config_lines: dict) -> str:
    """The Pulumi program fed what the engine would hand it for these stack-file values."""
    config = {key: engine_value(value) for key, value in config_lines.items()}
    config.setdefault("callmask:pins", engine_value(TEST_PINS))
    config.update({"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN})
    defaults = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"]
    for key, spec in defaults.items():
        if "default" in spec:
            config.setdefault(f"callmask:{key}", engine_value(spec["default"]))
    run = run_program("trap", config, ["callmask:pins", "twilio:authToken"])
    assert run.registrations == [] and type(run.error).__name__ == "RunError"
    return str(run.error)


TRAPS = [
    ({"callmsk:dialTimeout": 20}, "callmsk:dialTimeout: unknown namespace 'callmsk'; did you mean callmask:dialTimeout?"),
    ({"twilio:authtoken": "x"}, "twilio:authtoken: unknown key; expected twilio:accountSid, twilio:authToken"),
    ({"callmask:phoneNumber": {"search": {"country": "US", "areaCode": 0o415}}},
     "callmask:phoneNumber.search.areaCode: is the number 269, not text: quote it"),
    ({"callmask:allowedCountries": [False]}, "callmask:allowedCountries: False is not text: quote every country"),
    ({"callmask:callerId": False}, "callmask:callerId: expected an E.164 number"),
    ({"callmask:pinLength": "²"}, "callmask:pinLength: expected a whole number from 6 to 12, got '²'"),
    ({"callmask:dialTimeout": "9" * 5000}, "callmask:dialTimeout: expected a whole number from 5 to 600"),
    ({"callmask:allowedNumberTypes": [["mobile"]]}, "callmask:allowedNumberTypes: ['mobile'] is not a number type"),
    ({"callmask:testUsers": ["+14155550199", "4155550123"]}, "callmask:testUsers[1]: expected an E.164 number"),
    ({"callmask:testUsers": "+14155550199"}, "callmask:testUsers: expected a list of E.164 numbers"),
    ({"callmask:testUsers": ["+14155550199", "+14155550199"]}, "callmask:testUsers: lists a number more than once"),
    ({"callmask:publish": "yes"}, "callmask:publish: expected true or false, got 'yes'"),
    # `pulumi config set --path` reads +14155550101 as a number: the error gives the command that keeps the +.
    ({"callmask:phoneNumber": {"number": 14155550101}}, "callmask:phoneNumber.number: is a number, not text: the "
     "leading + was lost (`pulumi config set --path` reads +1... as a number); set it as text: pulumi config set "
     "--path --type string 'callmask:phoneNumber.number' '+14155550101'"),
    ({"callmask:testUsers": [14155550199]}, "callmask:testUsers[0]: is a number, not text: the leading + was lost "
     "(`pulumi config set --path` reads +1... as a number); set it as text: pulumi config set --path --type string "
     "'callmask:testUsers[0]' '+1...'"),
    ({"callmask:callerId": 14155550101}, "pulumi config set --path --type string 'callmask:callerId' '+14155550101'"),
    ({"callmask:publish": False}, "callmask:publish: is false, so each change becomes a draft only test users "
                                  "reach, but callmask:testUsers is empty"),
    ({"callmask:pinGuard": {"attemptsPerCall": 0}}, "callmask:pinGuard.attemptsPerCall: expected a whole number from 1 to 5, got 0"),
    ({"callmask:pinGuard": {"lockAfter": 1}}, "callmask:pinGuard.lockAfter: expected a whole number from 2 to 100, got 1"),
    ({"callmask:pinGuard": {"lockMinutes": "15m"}}, "callmask:pinGuard.lockMinutes: expected a whole number from 1 to 1440"),
    ({"callmask:pinCheck": "function", "callmask:pinGuard": {"alertUrl": "http://alerts.example.com/x?token=s3cr3t"}},
     "callmask:pinGuard.alertUrl: expected an https:// URL the Function can POST alerts to (or http:// to 127.0.0.1"),
    ({"callmask:pinGuard": {"lockAftr": 5}}, "callmask:pinGuard.lockAftr: unknown key; expected one of attemptsPerCall"),
    ({"callmask:pinGuard": {"enabled": "no"}}, "callmask:pinGuard.enabled: expected true or false, got 'no'"),
    ({"callmask:pinGuard": [3]}, "callmask:pinGuard: expected an object {attemptsPerCall, lockAfter"),
]


@pytest.mark.parametrize("values, expected", TRAPS, ids=[expected.split(":")[0] + ":" + expected.split(":")[1]
                                                         for _, expected in TRAPS])
def test_each_trap_is_one_clear_error_in_the_command_and_the_program(capsys, tmp_path, values, expected):
    text = yaml.safe_dump({"config": {**DEV, **values}}, allow_unicode=True)
    code, output = command(capsys, project_with(tmp_path, text))
    assert code == 1 and expected in output and "Traceback" not in output
    assert expected in program({**DEV, **values})


def test_the_same_value_reads_the_same_in_the_command_and_the_program(capsys, tmp_path):
    values = {**DEV, "callmask:voice": 123, "callmask:gatherTimeout": 15}
    code, _ = command(capsys, project_with(tmp_path, yaml.safe_dump({"config": values})))
    assert code == 0, "a voice of 123 is text to the engine, so it is to the command too"
    run = run_program("trap", {**{k: engine_value(v) for k, v in values.items()},
                               "callmask:pins": engine_value(TEST_PINS), "callmask:pinLength": "8",
                               "callmask:language": "en-US", "callmask:dialTimeout": "30", "callmask:callerId": "",
                               "callmask:allowedCountries": '["US"]', "callmask:allowedNumberTypes": '["fixedLine"]',
                               "twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN},
                      ["callmask:pins", "twilio:authToken"])
    assert run.error is None


@pytest.mark.parametrize("pin, reason", [("89012345", "is a run of ascending or descending digits"),
                                         ("21098765", "is a run of ascending or descending digits"),
                                         ("12121212", "repeats a short pattern"),
                                         ("47114711", "repeats a short pattern")])
def test_weak_pins_are_refused_without_being_echoed(pin, reason):
    config = {"callmask:pins": engine_value([pin, TEST_PINS[1]])}
    error = program({**DEV, **config})
    assert f"callmask:pins[0]: {reason}" in error and pin not in error


def test_a_test_user_is_never_echoed_in_an_error(capsys, tmp_path):
    secretish = "+1415555019x"
    values = {**DEV, "callmask:testUsers": [secretish]}
    code, output = command(capsys, project_with(tmp_path, yaml.safe_dump({"config": values})))
    assert code == 1 and "callmask:testUsers[0]" in output and secretish not in output
    assert secretish not in program(values)


def test_a_test_user_that_lost_its_plus_is_never_echoed(capsys, tmp_path):
    values = {**DEV, "callmask:testUsers": [14155550199]}
    code, output = command(capsys, project_with(tmp_path, yaml.safe_dump({"config": values})))
    assert code == 1 and "--type string 'callmask:testUsers[0]'" in output and "4155550199" not in output
    assert "4155550199" not in program(values)


ENCRYPTED = {"secure": "v1:c2FsdHNhbHQ=:v1:aGVsbG8="}
PLAINTEXT_PINS = [
    (["31415926"], "callmask:pins[0]"),
    ([ENCRYPTED, "31415926"], "callmask:pins[1]"),  # one element set without --secret
    ({"alice": ENCRYPTED, "bob": "31415926"}, "callmask:pins.bob"),
    ({"27182818": "31415926"}, "callmask:pins (entry 1)"),  # a label that may be a PIN is never named
    ("31415926", "callmask:pins"),
]


@pytest.mark.parametrize("pins, named", PLAINTEXT_PINS, ids=[named for _, named in PLAINTEXT_PINS])
def test_a_plaintext_pin_in_a_stack_file_is_refused_by_the_command_and_the_program(capsys, tmp_path, pins, named):
    project = project_with(tmp_path, yaml.safe_dump({"config": {**DEV, "callmask:pins": pins}}))
    code, output = command(capsys, project)
    config = {f"callmask:{key}": engine_value(value) for key, value in
              {"pins": TEST_PINS, **{k.removeprefix("callmask:"): v for k, v in DEV.items()}}.items()}
    config.update({"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN})
    # The engine marks the key secret when any element is: the program reads the stack file for the rest.
    run = run_program("trap", config, ["callmask:pins", "twilio:authToken"], root_directory=project)
    for said in (output, str(run.error)):
        assert f"{named} in Pulumi.trap.yaml: a PIN in plaintext is refused" in said
        assert "pulumi config set --path --secret 'callmask:pins" in said
        assert "31415926" not in said and "27182818" not in said
    assert code == 1 and run.registrations == []


def test_the_program_refuses_pins_the_engine_holds_in_plaintext():
    """However the PINs reached the engine (a file elsewhere, the environment), a key not held as a secret
    stops the program before anything is registered."""
    config = {"callmask:pins": engine_value(["31415926"]), "twilio:accountSid": ACCOUNT_SID}
    run = run_program("nofile", config, [])
    assert run.registrations == [] and "callmask:pins in Pulumi.nofile.yaml: a PIN in plaintext is refused" \
        in str(run.error) and "31415926" not in str(run.error)


def test_yaml_errors_are_one_line_with_the_file_and_line(capsys, tmp_path):
    code, output = command(capsys, project_with(tmp_path, "config:\n  callmask:voice: [unclosed\n"))
    assert code == 1 and len(output.strip().splitlines()) == 1
    assert "Pulumi.trap.yaml: not valid YAML at line 3, column 1" in output


def test_a_long_stack_name_is_refused_plainly(capsys, tmp_path):
    code, output = command(capsys, project_with(tmp_path, "config: {}\n"), stack="s" * 300)
    assert code == 1 and "is not a stack name" in output and len(output) < 300


# ---- a generated corpus of malformed stack files ----

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10 ** 20),
                    st.floats(allow_nan=True), st.text(max_size=20), st.text(alphabet="0123456789²٣", max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.one_of(st.text(max_size=8), st.integers()),
                                                                       inner, max_size=3)), max_leaves=8)
keys = st.sampled_from([f"callmask:{key}" for key in (
    "pins", "pinLength", "language", "voice", "gatherTimeout", "dialTimeout", "prompts", "allowedCountries",
    "allowedNumberTypes", "callerId", "phoneNumber", "releaseNumberOnDestroy", "testUsers", "publish", "pinGuard",
    "pinCheck")]
    + ["twilio:apiKey", "callmsk:x"])


def assert_one_clean_error(capsys, project) -> None:
    code, output = command(capsys, project)
    assert code in (0, 1) and "Traceback" not in output
    if code == 1:
        assert output.startswith("callmask: error: ") or output.splitlines()[0].startswith("flow")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(keys, values, max_size=4))
def test_no_malformed_stack_value_ends_in_a_traceback(capsys, tmp_path_factory, changes):
    config = {**DEV, **changes}
    if "callmask:pins" in changes:  # a PIN list in the file is refused as plaintext before anything else
        config["callmask:pins"] = [{"secure": "v1:abc"}]
    project = project_with(tmp_path_factory.mktemp("corpus"), yaml.safe_dump({"config": config}, allow_unicode=True))
    assert_one_clean_error(capsys, project)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                      st.integers(1, 3000).map(lambda depth: ("config: " + "[" * depth).encode()),
                      st.integers(1, 3000).map(lambda depth: ("config:\n  callmask:voice: " + "[" * depth + "]" * depth).encode())))
def test_no_malformed_stack_file_ends_in_a_traceback(capsys, tmp_path_factory, junk):
    assert_one_clean_error(capsys, project_with(tmp_path_factory.mktemp("junk"), junk))


# ---- a generated corpus of malformed flow files ----

JUNK = [None, 1, -5, 2.5, True, "", "x", "{{", "{% if %}", "(", "[", {"a": 1}, [1, [2]], ["a"], {}, [], "#", 10 ** 30]


def mangled(node, rng):
    """The flow with values here and there replaced by junk of the wrong type."""
    if isinstance(node, dict):
        node = {key: rng.choice(JUNK) if rng.random() < 0.08 else mangled(value, rng) for key, value in node.items()}
        if rng.random() < 0.05:
            node[rng.choice(["name", "type", "next", "event", "transitions", "properties", "conditions"])] = rng.choice(JUNK)
        return node
    if isinstance(node, list):
        return [mangled(item, rng) if rng.random() < 0.3 else item for item in node]
    return node


def flow_command(capsys, argv: list[str]):
    """`callmask` run on a flow file: its exit code (argparse's too) and what it printed."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    return code, capsys.readouterr()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False))
def test_no_malformed_flow_file_ends_in_a_traceback(capsys, tmp_path_factory, rng):
    from flow_fixtures import rendered
    from studio_corpus import CORPUS
    flows = [rendered("dev")] + [flow for flow, _ in CORPUS.values()]
    path = tmp_path_factory.mktemp("flow") / "flow.json"
    path.write_text(json.dumps(mangled(rng.choice(flows), rng)))
    for argv in (["validate"], ["diagram"], ["diagram", "--format", "svg"], ["render"],
                 ["simulate", "--press", f"{TEST_PINS[0]}#", "--press", "14155550123#"],
                 ["simulate", "--trigger", "incomingMessage", "--reply", "yes", "--reply", "1"]):
        code, output = flow_command(capsys, [*argv, str(path)])
        assert code in (0, 1, 3), (argv, output.err)
        assert "Traceback" not in output.out + output.err


@pytest.mark.parametrize("depth", [500, 900])
def test_a_deeply_nested_flow_file_is_no_traceback(capsys, tmp_path, depth):
    from studio_corpus import CORPUS
    flow = copy.deepcopy(CORPUS["ivr_menu"][0])
    flow["states"][1]["properties"]["deep"] = None
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow).replace("null", "[" * depth + '"1234"' + "]" * depth))
    for argv in (["diagram"], ["diagram", "--format", "svg"], ["validate", "--dial-out"], ["render"],
                 ["simulate", "--press", "1"]):
        code = main([*argv, "--pins", "1234", str(path)])
        output = capsys.readouterr()
        assert code in (0, 1) and "Traceback" not in output.err and "1234" not in output.out, argv


@pytest.mark.parametrize("where", ["variables", "transitions", "conditions", "states"])
@pytest.mark.parametrize("junk", [1, "text", {"key": "x"}, True])
def test_a_list_that_is_no_list_is_no_traceback(capsys, tmp_path, where, junk):
    """Found by the fuzzing above: a set-variables widget whose `variables` was a number broke `diagram`."""
    from studio_corpus import CORPUS
    flow = copy.deepcopy(CORPUS["ivr_menu"][0])
    flow["states"].append({"name": "tag", "type": "set-variables", "transitions": [{"event": "next"}],
                           "properties": {"variables": [{"key": "k", "value": "v"}], "offset": {"x": 0, "y": 0}}})
    target = {"variables": flow["states"][-1]["properties"], "transitions": flow["states"][-1],
              "conditions": next(t for s in flow["states"] for t in s.get("transitions", []) if "conditions" in t),
              "states": flow}[where]
    target[where] = junk
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow))
    for argv in (["diagram"], ["diagram", "--format", "svg"], ["validate", "--dial-out"], ["render"], ["diff"],
                 ["simulate", "--press", "1"]):
        paths = [str(path), str(path)] if argv == ["diff"] else [str(path)]
        code, output = flow_command(capsys, [*argv, *paths])
        assert code in (0, 1, 3) and "Traceback" not in output.out + output.err, (argv, output.err)


def test_a_value_nested_thousands_deep_is_one_line(capsys, tmp_path):
    deep = "[" * 3000 + "]" * 3000
    code, output = command(capsys, project_with(tmp_path, f"config:\n  callmask:voice: {deep}\n"))
    assert code == 1 and "Traceback" not in output
    assert "- callmask:voice: expected a Twilio voice name such as Polly.Joanna, got a list nested too deep to print" in output


labels = st.one_of(st.text(max_size=40), st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,31}", fullmatch=True),
                   st.from_regex(r"\d{4,12}", fullmatch=True))
pin_values = st.one_of(st.from_regex(r"\d{4,12}", fullmatch=True), st.integers(), st.none(), st.text(max_size=12))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pins=st.dictionaries(labels, pin_values, max_size=5), pin_check=st.sampled_from(["studio", "function", "fn"]))
def test_a_labeled_pin_map_is_taken_or_refused_without_echoing_a_pin(pins, pin_check):
    """Whatever the map holds, the settings take it or say why in lines that name no PIN, and no label
    that was refused (it may be a PIN typed into the wrong place)."""
    values, others = from_files("prod")
    values.update(pins=pins, pinCheck=pin_check)
    try:
        taken = parse_settings(values, others)
    except SettingsError as error:
        text = str(error)
        digits = {str(v) for v in pins.values() if re.fullmatch(r"\d{4,}", str(v))}
        digits |= {label for label in pins if re.search(r"\d{4}", label)}
        assert not any(secret in text for secret in digits), text
        assert all(line.startswith("  - callmask:") for line in text.splitlines()[1:]), text
        return
    assert dict(zip(taken.pin_labels, taken.pins)) == pins and pin_check in ("studio", "function")
