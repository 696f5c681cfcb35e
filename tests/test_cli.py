"""The `callmask` command: every subcommand on the committed stacks, its masking of PINs, and its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from callmask.cli import main
from callmask.operations.command_flow import PINS_VARIABLE, placeholder_pins
from callmask.providers.studio_flow import StudioFlowProvider
from callmask.config.stack_config import PROJECT_DIR, stack_names
from conftest import TEST_PINS, configured
from flow_fixtures import rendered, widget, stack_settings
from test_providers import flow_props

PINS_ARG = ",".join(TEST_PINS)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_and_module_are_installed():
    console_script = Path(sys.executable).parent / "callmask"
    assert console_script.exists(), "the setup command installs the `callmask` console script"
    for command in ([str(console_script)], [sys.executable, "-m", "callmask"]):
        done = subprocess.run([*command, "validate", "--stack", "dev", "--pins", PINS_ARG],
                              capture_output=True, text=True)
        assert done.returncode == 0 and "sound" in done.stdout


def test_render_is_exactly_what_the_provider_deploys(capsys, twilio):
    code, out, _ = run(capsys, "render", "--stack", "dev", "--pins", PINS_ARG, "--reveal")
    created = configured(StudioFlowProvider).create(flow_props("dev"))
    assert code == 0 and json.loads(out) == twilio.flows[created.id]["definition"]


@pytest.mark.parametrize("stack", stack_names())
def test_render_masks_pins_unless_revealed(capsys, stack):
    _, masked, _ = run(capsys, "render", "--stack", stack, "--pins", PINS_ARG)
    _, revealed, _ = run(capsys, "render", "--stack", stack, "--pins", PINS_ARG, "--reveal")
    assert not any(pin in masked for pin in TEST_PINS)
    if stack_settings(stack).checks_pin_in_function:  # no PIN in the flow to mask or reveal
        assert masked == revealed and "********" not in masked and "add-twiml-redirect" in masked
    else:
        assert "********,********" in masked and PINS_ARG in revealed


def test_pins_from_the_environment_and_placeholders_said_so(capsys, monkeypatch):
    monkeypatch.setenv(PINS_VARIABLE, PINS_ARG)
    _, out, err = run(capsys, "render", "--stack", "dev", "--reveal")
    assert PINS_ARG in out and err == ""
    monkeypatch.delenv(PINS_VARIABLE)
    _, out, err = run(capsys, "render", "--stack", "dev", "--reveal")
    assert "using placeholder PINs" in err and ",".join(placeholder_pins(8)) in out


def test_validate_a_broken_file_prints_one_line_per_problem(capsys, tmp_path):
    definition = rendered()
    widget(definition, "gather_pin")["properties"]["number_of_digits"] = 4
    widget(definition, "attempts_left")["transitions"][0]["next"] = "nowhere"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(definition))
    code, out, _ = run(capsys, "validate", str(broken))
    assert code == 1 and len(out.strip().splitlines()) == 2, "a file gets the structural checks only"
    code, out, _ = run(capsys, "validate", "--dial-out", "--pins", PINS_ARG, str(broken))
    lines = out.strip().splitlines()
    assert code == 1 and len(lines) == 3  # the dangling `next` also leaves say_invalid_pin unreachable
    assert f"{broken}: gather_pin: number_of_digits is 4 but PINs have 8 digits. Fix: set number_of_digits to pinLength." in lines
    assert all(line.startswith(f"{broken}: ") and ". Fix: " in line for line in lines)
    assert not any(pin in out for pin in TEST_PINS)


def test_simulate_text_and_json(capsys):
    code, out, _ = run(capsys, "simulate", "--stack", "prod", "--pins", PINS_ARG,
                       "--press", f"{TEST_PINS[1]}#", "--press", "442079460000#")
    assert code == 0 and "dials +442079460000 with caller ID +14155550142" in out
    assert "outcome: connected" in out and TEST_PINS[1] not in out and "********" in out
    code, out, _ = run(capsys, "simulate", "--stack", "dev", "--pins", PINS_ARG, "--press", "11223344#", "--json")
    report = json.loads(out)
    assert report["outcome"] == "rejected_pin" and report["dialed"] is None
    assert set(report["steps"][0]) == {"widget", "type", "event"}
    code, out, _ = run(capsys, "simulate", "--stack", "dev", "--pins", PINS_ARG, "--press", f"{TEST_PINS[0]}#",
                       "--press", "14155550123#", "--dial-status", "no-answer", "--json", "--reveal")
    assert json.loads(out)["steps"][1]["digits"] == TEST_PINS[0]


def test_diagram_mermaid_and_svg(capsys):
    _, mermaid, _ = run(capsys, "diagram", "--stack", "dev", "--pins", PINS_ARG)
    assert mermaid.startswith("flowchart TD")
    for state in rendered()["states"]:
        assert f"w_{state['name']}" in mermaid
    assert 'w_check_pin -->|"match: PIN is on the allowlist"| w_gather_number' in mermaid
    _, svg, _ = run(capsys, "diagram", "--stack", "dev", "--pins", PINS_ARG, "--format", "svg")
    root = ElementTree.fromstring(svg)
    assert len(root.findall("{http://www.w3.org/2000/svg}rect[@class='widget']")) == len(rendered()["states"])


def test_readme_shows_the_diagram_of_the_committed_flow(capsys):
    _, mermaid, _ = run(capsys, "diagram", "--stack", "dev", "--pins", PINS_ARG)
    assert mermaid.strip() in (PROJECT_DIR / "README.md").read_text()


def test_diff_of_two_files_reads_like_a_review(capsys, tmp_path):
    old, new = rendered(), rendered()
    widget(new, "say_goodbye")["properties"]["say"] = "See you soon."
    widget(new, "say_goodbye")["properties"]["offset"] = {"x": 50, "y": 1500}
    widget(new, "say_no_input")["properties"]["offset"] = {"x": 900, "y": 450}
    widget(new, "check_pin")["transitions"][1]["conditions"][0]["value"] = f"{TEST_PINS[0]},13572468,97531864"
    widget(new, "check_number")["transitions"][1]["conditions"][0]["value"] = "(?:44\\d{10})"
    widget(new, "connect_call")["transitions"][1]["next"] = None
    new["states"].append({"name": "say_hold", "type": "say-play", "properties": {"say": "Hold on."},
                          "transitions": [{"event": "audioComplete"}]})
    new["states"] = [s for s in new["states"] if s["name"] != "say_invalid_number"]
    paths = tmp_path / "old.json", tmp_path / "new.json"
    for path, document in zip(paths, (old, new)):
        path.write_text(json.dumps(document))
    code, out, _ = run(capsys, "diff", "--pins", PINS_ARG, *map(str, paths))
    assert code == 0
    assert "`say_hold` (say-play)" in out and "`say_invalid_number` (say-play)" in out
    assert "`say_goodbye` say: “The call has ended. Goodbye.” → “See you soon.”" in out
    assert "`connect_call` hangup: → say_goodbye becomes → end" in out
    assert "`check_number` “Allowed: US: fixed line, mobile numbers”: regex" in out
    assert "**PINs:** 2 added, 1 removed (values not shown)" in out
    assert "**Layout:** 2 widget(s) moved on the canvas only" in out
    assert not any(pin in out for pin in [*TEST_PINS, "13572468", "97531864"])


def test_diff_against_a_git_base_per_stack(capsys, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ["Pulumi.yaml", *[f"Pulumi.{s}.yaml" for s in stack_names()]]:
        shutil.copy(PROJECT_DIR / name, project / name)
    shutil.copytree(PROJECT_DIR / "flow", project / "flow")
    git = lambda *args: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                                       cwd=project, check=True, capture_output=True)
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "base")
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("callmask development line.", "callmask dev line."))
    code, out, _ = run(capsys, "diff", "--base", "HEAD", "--stack", "dev", "--pins", PINS_ARG,
                       "--project-dir", str(project))
    assert code == 0 and "`gather_pin` say: “callmask development line." in out and "“callmask dev line." in out
    _, template_only, _ = run(capsys, "diff", "--base", "HEAD", "--project-dir", str(project))
    assert "No changes to the call flow." in template_only


BAD_INPUT = [
    (["render", "--stack", "staging"], "Pulumi.staging.yaml not found"),
    (["render", "--stack", "dev", "--pins", "1234"], "callmask:pins[0]: has 4 digits"),
    (["validate", "flow/conference.json"], "is a flow template"),
    (["validate", "no/such/file.json"], "cannot read the flow file"),
    (["simulate"], "give --stack NAME"),
    (["diff", "only-one.json"], "give two flow files"),
    (["diff", "--base", "no-such-ref"], "git cannot read 'no-such-ref'"),
]


@pytest.mark.parametrize("argv, expected", BAD_INPUT, ids=[e for _, e in BAD_INPUT])
def test_bad_input_is_a_clear_message_and_exit_1(capsys, monkeypatch, argv, expected):
    monkeypatch.chdir(PROJECT_DIR)
    code, out, err = run(capsys, *argv)
    assert code == 1 and expected in err and err.startswith("callmask: error: ")
    assert "Traceback" not in err and out == ""


def test_invalid_json_file_is_named(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "validate", str(bad))
    assert code == 1 and f"{bad}: not valid JSON at line 1" in err


def test_malformed_file_is_a_clear_error_for_every_subcommand(capsys, tmp_path):
    definition = rendered()
    widget(definition, "say_goodbye")["transitions"] = "audioComplete"
    bad = tmp_path / "malformed.json"
    bad.write_text(json.dumps(definition))
    for command in (["validate"], ["simulate"], ["diagram"], ["render"], ["diff", str(bad)]):
        code, _, err = run(capsys, *command, str(bad))
        assert code == 1 and "say_goodbye: `transitions` is missing or not a list" in err and "Traceback" not in err


def test_diff_of_two_templates_rendered_for_a_stack(capsys, tmp_path):
    template = json.loads((PROJECT_DIR / "flow" / "conference.json").read_text())
    widget(template, "gather_pin")["properties"]["timeout"] = 10
    changed = tmp_path / "conference.json"
    changed.write_text(json.dumps(template))
    code, out, _ = run(capsys, "diff", "--stack", "dev", str(PROJECT_DIR / "flow" / "conference.json"), str(changed))
    assert code == 0 and "`gather_pin` timeout: 15 → 10" in out


def test_validate_a_stack_runs_the_deploy_gate(capsys, tmp_path):
    """A PIN typed into a prompt is refused by `callmask validate --stack` as by `pulumi up`, masked."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "flow", tmp_path / "flow")
    dev = tmp_path / "Pulumi.dev.yaml"
    dev.write_text(dev.read_text().replace("Enter your PIN, then press pound.", f"Your PIN is {TEST_PINS[0]}."))
    code, out, err = run(capsys, "validate", "--stack", "dev", "--pins", ",".join(TEST_PINS),
                         "--project-dir", str(tmp_path))
    assert code == 1
    assert out.splitlines()[0] == ("callmask:prompts.greeting: contains one of the PINs, and this value is not "
                                   "secret (it shows in previews and the state); keep PINs only in callmask:pins")
    assert TEST_PINS[0] not in out + err


def test_version_and_help_for_every_option(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("callmask 0.1.0")
    for subcommand in ("render", "validate", "simulate", "diagram", "diff"):
        with pytest.raises(SystemExit):
            main([subcommand, "--help"])
        text = capsys.readouterr().out
        options = [word for word in text.split() if word.startswith("--") and word not in ("--help", "--project-dir")]
        for option in set(options):
            assert f"{option} " in text or f"{option}\n" in text, option
        assert "  --dial-status" not in text or "what the dialed party does" in text


def test_dial_status_drives_the_outcome_in_the_transcript(capsys):
    code, out, _ = run(capsys, "simulate", "--stack", "dev", "--pins", PINS_ARG, "--press", f"{TEST_PINS[0]}#",
                       "--press", "14155550123#", "--dial-status", "busy")
    assert code == 0 and "(callee busy) -> callCompleted" in out and out.strip().endswith("outcome: callee_busy (dialed +14155550123)")


def test_outside_a_project_the_command_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "validate", "--stack", "dev")
    assert code == 1 and err.strip() == (f"callmask: error: no Pulumi.yaml in {tmp_path} or any folder above it: run "
                                         "callmask inside the project (or give a rendered flow FILE instead of --stack)")


def test_a_closed_pipe_ends_quietly():
    # `true` reads nothing and exits at once, so the command writes into a closed pipe.
    done = subprocess.run(f"{sys.executable} -m callmask render --stack dev --pins {PINS_ARG} | true", shell=True,
                          cwd=PROJECT_DIR, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == ""


def test_dial_out_rules_on_a_file_need_the_pins(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv(PINS_VARIABLE, raising=False)
    flow = tmp_path / "flow.json"
    flow.write_text(json.dumps(rendered()))
    code, _, err = run(capsys, "validate", "--dial-out", str(flow))
    assert code == 1 and "--dial-out checks a flow against the line's PINs" in err


def test_mermaid_ids_never_merge_two_widgets(capsys, tmp_path):
    definition = {"initial_state": "a-4", "states": [
        {"name": "a-4", "type": "trigger", "properties": {}, "transitions": [{"event": "incomingCall", "next": "a_4"}]},
        {"name": "a_4", "type": "say-play", "properties": {"say": "hi"}, "transitions": [{"event": "audioComplete"}]}]}
    flow = tmp_path / "flow.json"
    flow.write_text(json.dumps(definition))
    code, out, _ = run(capsys, "diagram", str(flow))
    assert code == 0 and 'w_a_4(["a-4' in out and 'w_a_4_2["a_4' in out and "w_a_4 -->|\"incomingCall\"| w_a_4_2" in out


def test_diff_masks_only_known_pins(capsys, tmp_path):
    """A menu option "1" becoming "2" is no PIN change: without the line's PINs nothing is masked."""
    old = {"initial_state": "t", "states": [
        {"name": "t", "type": "trigger", "properties": {}, "transitions": [{"event": "incomingCall", "next": "menu"}]},
        {"name": "menu", "type": "split-based-on", "properties": {"input": "{{trigger.call.Digits}}"},
         "transitions": [{"event": "noMatch"}, {"event": "match", "conditions": [
             {"friendly_name": "sales", "type": "equal_to", "value": "1"}]}]}]}
    new = json.loads(json.dumps(old))
    new["states"][1]["transitions"][1]["conditions"][0]["value"] = "2"
    paths = tmp_path / "old.json", tmp_path / "new.json"
    for path, document in zip(paths, (old, new)):
        path.write_text(json.dumps(document))
    code, out, _ = run(capsys, "diff", *map(str, paths))
    assert code == 0 and "`menu` “sales”: equal_to `1` → equal_to `2`" in out and "*" not in out.replace("**", "")


# ---- prod: its PIN checked by its Function, which `simulate` runs under Node ----

@pytest.mark.slow
def test_simulate_plays_the_stacks_function(capsys):
    code, out, err = run(capsys, "simulate", "--stack", "prod", "--pins", PINS_ARG, "--press", TEST_PINS[1] + "#",
                         "--press", "14155550123#")
    assert code == 0 and out.splitlines()[-1] == "outcome: connected (dialed +14155550123)"
    assert "[check_pin] returned attempt=1, label=pins[1], verdict=ok" in out and "[check_pin] gathered: ******** -> return" in out
    assert not any(pin in out + err for pin in TEST_PINS)
    for presses, outcome in (([], "no_input"), (["13572468#"] * 3, "rejected_pin"), ([TEST_PINS[0][:5] + "#"] * 3, "rejected_pin")):
        code, out, _ = run(capsys, "simulate", "--stack", "prod", "--pins", PINS_ARG, "--json",
                           *[arg for keys in presses for arg in ("--press", keys)])
        played = json.loads(out)
        assert (code, played["outcome"], played["dialed"]) == (0, outcome, None), presses
    code, out, _ = run(capsys, "simulate", "--stack", "prod", "--pins", PINS_ARG, "--outcome", "check_pin=fail")
    assert code == 0 and "[say_invalid_pin]" in out and "dials" not in out, "a failing Function opens nothing"


def test_simulate_without_node_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    code, out, err = run(capsys, "simulate", "--stack", "prod", "--pins", PINS_ARG, "--press", TEST_PINS[0] + "#")
    assert code == 1 and err.strip() == (
        "callmask: error: running the PIN-check Function needs Node 20+ and its packages: run `make setup`")


def test_the_function_flow_validates_draws_and_diffs_its_redirect(capsys, tmp_path):
    code, out, _ = run(capsys, "validate", "--stack", "prod", "--pins", PINS_ARG)
    assert code == 0 and out.strip() == "conference-function.json for stack prod: sound (11 widgets)"
    code, out, _ = run(capsys, "diagram", "--stack", "prod", "--pins", PINS_ARG)
    assert 'w_check_pin -->|"return"| w_pin_verdict' in out and "add-twiml-redirect" in out
    changed = json.loads((PROJECT_DIR / "flow" / "conference-function.json").read_text())
    widget(changed, "check_pin")["properties"]["method"] = "GET"
    (tmp_path / "new.json").write_text(json.dumps(changed))
    code, out, _ = run(capsys, "diff", "--stack", "prod", str(PROJECT_DIR / "flow" / "conference-function.json"),
                       str(tmp_path / "new.json"))
    assert code == 0 and "`check_pin` method: POST → GET" in out


def test_a_stack_whose_pins_cannot_be_decrypted_says_why_then_uses_placeholders(capsys, tmp_path, monkeypatch):
    """No `pulumi` stack behind the file (or no passphrase): one line naming the command that failed, and only
    then the placeholders, never a traceback."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "flow", tmp_path / "flow")
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  callmask:pins:\n    - secure: v1:c2FsdA==:v1:aGVsbG8=\n")
    (tmp_path / "state").mkdir()
    monkeypatch.setenv("PULUMI_BACKEND_URL", (tmp_path / "state").as_uri())
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "not-this-stacks")
    monkeypatch.delenv(PINS_VARIABLE, raising=False)
    code, out, err = run(capsys, "validate", "--stack", "dev", "--project-dir", str(tmp_path))
    notice = err.strip().splitlines()
    assert code == 0 and "sound" in out and len(notice) == 1 and "Traceback" not in err
    assert notice[0].startswith("callmask: cannot read stack dev's PINs (`pulumi config --stack dev` failed: ")
    assert notice[0].endswith("using placeholder PINs, not the stack's (or give them with --pins or CALLMASK_PINS).")


def test_call_refuses_anything_but_the_local_twilio(capsys, monkeypatch):
    monkeypatch.setenv("CALLMASK_TWILIO_BASE_URL", "https://api.twilio.com")
    code, out, err = run(capsys, "call", "--stack", "prod", "--from", "+14155550123", "--press", "1#")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "callmask call rings a stack deployed to the local Twilio" in err and "call the line's number" in err
