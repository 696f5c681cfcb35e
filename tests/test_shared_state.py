"""Shared state for a team: the stack on an S3 backend (an S3-compatible server on 127.0.0.1, logged in to
with the README's command), Pulumi's lock when two deploys of one stack overlap, and a killed `up`: no
process of the project outlives the engine, and the README's recovery steps finish the job."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
import requests
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN
from conftest import TEST_PINS
from pulumi_cli import LOCAL_AWS, PASSPHRASE, REPO, PulumiProject, local_aws_client, processes_working_in
from test_engine_lifecycle import readme_pin_command

BUCKET = "callmask-state"
SECRETS = (*TEST_PINS, AUTH_TOKEN, PASSPHRASE)
ENGINE_GONE_SECONDS = 10  # the plugins poll the engine (here every 0.1 s); a few seconds is the promise


@pytest.fixture
def fake(twilio):
    return twilio


@pytest.fixture
def s3_endpoint(aws_endpoint):
    """The worker's S3 server with no bucket, so each test can use the README's bucket as it is written."""
    requests.post(f"{aws_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return aws_endpoint


@pytest.fixture
def bucket(s3_endpoint):
    client = local_aws_client("s3", s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    return client, BUCKET


def readme_s3_login() -> str:
    readme = (REPO / "docs" / "deploying.md").read_text()
    return next(line.split("#")[0].strip() for line in readme.splitlines() if line.strip().startswith('pulumi login "s3://'))


def on_s3(tmp_path, fake, bucket, s3_endpoint) -> PulumiProject:
    """A copy of the project logged in to the bucket with the README's command, the dev stack and its PINs."""
    line = PulumiProject(tmp_path, {"CALLMASK_TWILIO_BASE_URL": fake.base_url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                                    "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "S3_ENDPOINT": s3_endpoint,
                                    "CALLMASK_ENGINE_WATCH_SECONDS": "0.1", **LOCAL_AWS})
    del line.environ["PULUMI_BACKEND_URL"]  # the login below decides where the state lives
    line.run_line(readme_s3_login())
    line.run("stack", "init", "dev")
    line.run_line(readme_pin_command())
    return line


def bucket_text(bucket) -> str:
    client, name = bucket
    objects = client.list_objects_v2(Bucket=name).get("Contents", [])
    return "\n".join(client.get_object(Bucket=name, Key=item["Key"])["Body"].read().decode(errors="replace")
                     for item in objects)


@pytest.mark.slow
def test_the_lifecycle_on_an_s3_backend_keeps_no_secret_in_the_bucket(tmp_path, fake, bucket, s3_endpoint):
    line = on_s3(tmp_path, fake, bucket, s3_endpoint)
    assert "s3://" in line.run("whoami", "--verbose").stdout
    line.apply("up")
    writes = len(fake.writes())
    assert re.search(r"6 unchanged", line.apply("up").stdout)
    assert len(fake.writes()) == writes, "a second up writes nothing to Twilio"
    stored = bucket_text(bucket)
    assert '"urn:pulumi:dev::callmask::' in stored, "the checkpoint lives in the bucket"
    for secret in SECRETS:
        assert secret not in stored, f"a secret ({len(secret)} characters) is in an object of the bucket"
    line.apply("destroy")
    assert fake.flows == {} and fake.numbers == {}


@pytest.mark.slow
def test_two_deploys_of_one_stack_at_once_one_waits_for_nothing_and_fails_plainly(tmp_path, fake, bucket, s3_endpoint):
    line = on_s3(tmp_path, fake, bucket, s3_endpoint)
    fake.pause("POST", r"^/v2/Flows/Validate$")
    first = line.start("up", "--yes")
    try:
        assert fake.wait_until_paused(), "the first up never reached Twilio"
        second = line.run("up", "--yes", check=False)
    finally:
        fake.release()
        first_output, _ = first.communicate(timeout=180)
    assert second.exit_code != 0 and "the stack is currently locked by 1 lock(s)" in second.output, second.output
    assert first.returncode == 0, first_output
    assert len(fake.flows) == 1 and len(fake.numbers) == 1, "only the first up deployed"
    state = json.loads(line.run("stack", "export").stdout)
    assert not state["deployment"].get("pending_operations")
    assert re.search(r"6 unchanged", line.apply("up").stdout), "the state the first up left is whole"


@pytest.mark.slow
def test_a_killed_up_leaves_no_process_and_the_readme_recovery_finishes_the_job(tmp_path, fake, bucket, s3_endpoint):
    line = on_s3(tmp_path, fake, bucket, s3_endpoint)
    fake.pause("POST", r"^/v2/Flows$")  # the flow create: Twilio acts, the answer never reaches the killed CLI
    killed = line.start("up", "--yes")
    assert fake.wait_until_paused(), "the up never reached the flow create"
    assert processes_working_in(tmp_path), "the CLI, its plugins and the program run in the project"
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    deadline = time.monotonic() + ENGINE_GONE_SECONDS
    while processes_working_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_working_in(tmp_path) == [], "a process of the project outlived the killed pulumi"
    fake.release()
    fake.settle()

    locked = line.run("up", "--yes", check=False)
    assert locked.exit_code != 0 and "the stack is currently locked" in locked.output
    for step in readme_recovery():
        line.run_line(step)
    assert len(fake.flows) == 1, "the flow the killed up created was found again, not made twice"
    assert len(fake.numbers) == 1
    state = json.loads(line.run("stack", "export").stdout)
    assert not state["deployment"].get("pending_operations")
    assert re.search(r"6 unchanged", line.apply("up").stdout)


def readme_recovery() -> list[str]:
    """The README's commands after a killed deploy, in order."""
    readme = (REPO / "docs" / "deploying.md").read_text()
    section = readme[readme.index("## When a deploy is killed"):]
    block = section[section.index("```sh") + 5:section.index("```", section.index("```sh") + 5)]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip().startswith("pulumi ")]
