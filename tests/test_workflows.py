"""The GitHub Actions workflows: actionlint-clean, a preview/deploy matrix that follows the committed stack
files, least-privilege permissions, and a flow review that never shows a PIN."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from callmask.config.stack_config import PROJECT_DIR, stack_names
from conftest import TEST_PINS

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
SCRIPTS = PROJECT_DIR / ".github" / "scripts"
BIN = Path(sys.executable).parent


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def pulumi_command_step(job: dict) -> dict:
    """The job's pulumi/actions step that runs a command (not the one that only installs the CLI)."""
    return next(step for step in job["steps"]
                if step.get("uses", "").startswith("pulumi/actions@") and "command" in step.get("with", {}))


def stacks_in(directory: Path, *options: str) -> list[str]:
    done = subprocess.run([sys.executable, str(SCRIPTS / "stacks.py"), str(directory), *options],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_actionlint_finds_nothing():
    done = subprocess.run([str(BIN / "actionlint"), "-no-color"], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_job_sets_its_own_permissions():
    for path in WORKFLOWS.glob("*.yml"):
        document = yaml.safe_load(path.read_text())
        assert document["permissions"] == {}, f"{path.name}: no default token permissions"
        for name, job in document["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name} sets no permissions"
            assert job["permissions"].get("contents") == "read"


def test_matrix_covers_exactly_the_committed_stacks(tmp_path):
    assert sorted(stacks_in(PROJECT_DIR)) == sorted(stack_names())
    assert stacks_in(PROJECT_DIR)[0] == "dev" and stacks_in(PROJECT_DIR)[-1] == "prod"
    for name in ["Pulumi.yaml", *[f"Pulumi.{s}.yaml" for s in stack_names()]]:
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    (tmp_path / "Pulumi.staging.yaml").write_text("config: {}\n")
    assert stacks_in(tmp_path) == ["dev", "staging", "prod"], "a new stack file is picked up with no workflow change"


@pytest.mark.parametrize("name, job", [("preview.yml", "preview"), ("deploy.yml", "up")])
def test_preview_and_deploy_jobs_run_for_every_listed_stack(name, job):
    document = workflow(name)
    lister = document["jobs"]["stacks"]
    assert any(".github/scripts/stacks.py" in step.get("run", "") for step in lister["steps"])
    stack_job = document["jobs"][job]
    assert stack_job["needs"] == "stacks"
    assert stack_job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    action = pulumi_command_step(stack_job)
    assert action["uses"] == "pulumi/actions@v7" and action["with"]["stack-name"] == "${{ matrix.stack }}"
    assert action["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"


def test_preview_comments_once_per_stack_and_holds_no_twilio_credentials():
    preview = workflow("preview.yml")["jobs"]["preview"]
    action = pulumi_command_step(preview)
    assert action["with"]["command"] == "preview" and action["with"]["diff"] is True
    assert action["with"]["comment-on-pr"] is True and action["with"]["edit-pr-comment"] is True
    assert not any(key.startswith("TWILIO") for key in action["env"])
    assert preview["environment"] == "${{ matrix.stack }}-preview"


def test_deploys_run_one_per_stack_behind_its_environment():
    document = workflow("deploy.yml")
    triggers = document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers == {"push": {"branches": ["main"]}}
    up = document["jobs"]["up"]
    assert up["environment"] == ("${{ contains(fromJSON(needs.stacks.outputs.staged), matrix.stack) && "
                                 "format('{0}-draft', matrix.stack) || matrix.stack }}")
    assert up["concurrency"] == {"group": "deploy-${{ matrix.stack }}", "cancel-in-progress": False}
    assert up["strategy"]["max-parallel"] == 1 and up["strategy"]["fail-fast"] is True


def test_a_staged_stack_is_published_by_a_second_reviewed_job(tmp_path):
    assert stacks_in(PROJECT_DIR, "--staged") == ["prod"], "prod stages drafts: its file sets publish false"
    for name in ["Pulumi.yaml", *[f"Pulumi.{s}.yaml" for s in stack_names()]]:
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    (tmp_path / "Pulumi.staging.yaml").write_text("config:\n  callmask:publish: false  # two steps\n")
    assert stacks_in(tmp_path, "--staged") == ["staging", "prod"]
    publish = workflow("deploy.yml")["jobs"]["publish"]
    assert publish["needs"] == ["stacks", "up"] and publish["environment"] == "${{ matrix.stack }}"
    assert publish["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.staged) }}"
    assert publish["concurrency"] == workflow("deploy.yml")["jobs"]["up"]["concurrency"]
    runs = [step.get("run", "") for step in publish["steps"]]
    setting = next(i for i, run in enumerate(runs) if "callmask:publish true" in run)
    up = publish["steps"].index(pulumi_command_step(publish))
    assert setting < up and pulumi_command_step(publish)["with"]["command"] == "up"
    assert publish["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"


def test_tests_run_the_readme_commands_on_311_and_312():
    job = workflow("tests.yml")["jobs"]["test"]
    assert job["strategy"]["matrix"]["python"] == ["3.11", "3.12"]
    runs = [step.get("run", "") for step in job["steps"]]
    readme = (PROJECT_DIR / "README.md").read_text()
    assert ".venv/bin/python -m pytest" in runs and ".venv/bin/python -m pytest" in readme
    assert any(run.startswith("make setup") for run in runs) and "make setup" in readme


def test_no_run_step_handles_a_secret_directly():
    for path in WORKFLOWS.glob("*.yml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                assert "secrets." not in step.get("run", ""), f"{path.name}: secrets go through env only"


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=project,
                   check=True, capture_output=True)


def test_flow_review_of_a_pin_change_shows_no_pin(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ["Pulumi.yaml", *[f"Pulumi.{s}.yaml" for s in stack_names()]]:
        shutil.copy(PROJECT_DIR / name, project / name)
    shutil.copytree(PROJECT_DIR / "flow", project / "flow")
    shutil.copytree(SCRIPTS, project / ".github" / "scripts")
    dev = project / "Pulumi.dev.yaml"
    dev.write_text(dev.read_text() + "  callmask:pins:\n    - secure: v1:Zm9vYmFyMQ==\n")
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "commit", "-qm", "base")
    dev.write_text(dev.read_text().replace("v1:Zm9vYmFyMQ==", "v1:YmF6cXV4Mg==\n    - secure: v1:cXV1eDM=")
                   .replace("callmask development line.", "callmask dev line."))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "CALLMASK_PINS": ",".join(TEST_PINS)}
    done = subprocess.run([".github/scripts/flow-review", "HEAD"], cwd=project, env=env,
                          capture_output=True, text=True)
    review = done.stdout
    assert done.returncode == 0, done.stderr
    assert review.startswith("<!-- callmask-flow-review -->")
    assert "the stack's encrypted PIN list changed (values not shown)" in review
    assert "“callmask development line." in review and "“callmask dev line." in review
    assert "```mermaid\nflowchart TD" in review
    for secret in (*TEST_PINS, "Zm9vYmFyMQ", "YmF6cXV4Mg", "cXV1eDM"):
        assert secret not in review + done.stderr


def test_workflows_install_the_pinned_pulumi_cli_instead_of_building_it():
    """`make setup` builds the CLI only when no `pulumi` of the pinned version is on PATH."""
    pinned = next(line.removeprefix("pulumi==") for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()
                  if line.startswith("pulumi=="))
    for path in WORKFLOWS.glob("*.yml"):
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            runs = [step.get("run", "") for step in job["steps"]]
            if not any(run.startswith("make setup") for run in runs):
                continue
            setup = next(index for index, run in enumerate(runs) if run.startswith("make setup"))
            installs = [step for step in job["steps"][:setup] if step.get("uses", "").startswith("pulumi/actions@")]
            assert installs and installs[0]["with"]["pulumi-version"] == pinned, f"{path.name}: job {name}"
