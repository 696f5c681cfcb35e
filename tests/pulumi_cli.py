"""The real Pulumi CLI, run as the README tells a user to, on a temporary copy of the project.

Offline and non-interactive: a `file://` backend in the copy, the passphrase secrets provider (or a key of
the local KMS: `kms_secrets_provider`), no update check and no plugin downloads. `.tools/bin` (where `make
setup` puts the CLI) and the venv's `bin` come first on PATH, as the README's `export PATH=...` line puts them.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from callmask.cli.demo import copy_project

REPO = Path(__file__).resolve().parents[1]
TOOLS_BIN = REPO / ".tools" / "bin"
VENV_BIN = REPO / ".venv" / "bin"
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "flow", "functions", "infra")
PASSPHRASE = "engine-test-passphrase-7c1d9e2a"
# moto's AWS-compatible server (tests/conftest.py: aws_endpoint) takes any keys
LOCAL_AWS = {"AWS_ACCESS_KEY_ID": "local-aws-key", "AWS_SECRET_ACCESS_KEY": "local-aws-secret",
             "AWS_REGION": "us-east-1"}
COMMAND_SECONDS = 180


def pinned_version() -> str:
    """The Pulumi version requirements.txt pins (the CLI is built at the same version)."""
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.startswith("pulumi=="):
            return "v" + line.removeprefix("pulumi==").strip()
    raise AssertionError("requirements.txt pins no pulumi version")


def offline_environment(home: Path, backend: Path) -> dict[str, str]:
    """The README's offline, non-interactive settings for the CLI."""
    return {
        "PATH": os.pathsep.join((str(TOOLS_BIN), str(VENV_BIN), os.environ.get("PATH", ""))),
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": backend.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        # Not the README's: the CLI and its Go plugins live for one command and allocate most of their memory
        # initialising, so their garbage collector runs a quarter as often as Go's default would have it
        # (the saving: docs/development.md).
        "GOGC": "400",
        "HOME": os.environ.get("HOME", str(home)),
    }


def require_cli(environ: dict[str, str]) -> str:
    """The `pulumi` the tests run; missing or of another version is a failure, never a skip."""
    found = shutil.which("pulumi", path=environ["PATH"])
    if not found:
        pytest.fail("the Pulumi CLI is not on PATH or in .tools/bin: run `make setup` (it builds it)")
    version = cli_version(found, os.stat(found).st_mtime_ns)
    if version != pinned_version():
        pytest.fail(f"{found} is pulumi {version}; this project pins {pinned_version()}: run `make setup`")
    return found


@functools.cache
def cli_version(cli: str, modified: int) -> str:
    """`pulumi version`, asked once per worker for each binary (and again if it is rebuilt meanwhile)."""
    return subprocess.run([cli, "version"], capture_output=True, text=True).stdout.strip()


def local_aws_client(service: str, endpoint: str):
    """A boto3 client of `service` on the local AWS server at `endpoint`, with LOCAL_AWS's keys."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=LOCAL_AWS["AWS_REGION"],
                        aws_access_key_id=LOCAL_AWS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=LOCAL_AWS["AWS_SECRET_ACCESS_KEY"])


def kms_secrets_provider(endpoint: str) -> str:
    """A new key of the KMS at `endpoint` as a stack's `--secrets-provider` (reached with LOCAL_AWS)."""
    kms = local_aws_client("kms", endpoint)
    key = kms.create_key(Description="a callmask test stack's secrets")["KeyMetadata"]["KeyId"]
    return f"awskms://{key}?region={LOCAL_AWS['AWS_REGION']}&endpoint={endpoint}"


@dataclass
class Result:
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class PulumiProject:
    """A copy of the project in `root` (or, with copy=False, the program already there) with its own
    Pulumi home and state backend; `init_stack` makes stacks with `secrets_provider`."""

    def __init__(self, root: Path, extra_environment: dict[str, str], copy: bool = True,
                 secrets_provider: str = "passphrase"):
        self.root = root
        self.secrets_provider = secrets_provider
        if copy:
            copy_project(root, PROJECT_FILES)
        self.state_dir = root / ".state"
        self.state_dir.mkdir()
        self.environ = {**offline_environment(root / ".pulumi-home", self.state_dir),
                        **(LOCAL_AWS if secrets_provider.startswith("awskms://") else {}), **extra_environment}
        self.cli = require_cli(self.environ)
        self.transcript: list[Result] = []

    def run(self, *args: str, check: bool = True, stdin: str | None = None) -> Result:
        completed = subprocess.run([self.cli, *args, "--non-interactive", "--color", "never"], cwd=self.root,
                                   env=self.environ, input=stdin, capture_output=True, text=True,
                                   timeout=COMMAND_SECONDS)
        result = Result(shlex.join(["pulumi", *args]), completed.returncode, completed.stdout, completed.stderr)
        self.transcript.append(result)
        if check and result.exit_code != 0:
            raise AssertionError(f"`{result.command}` exited {result.exit_code}:\n{result.output}")
        return result

    def apply(self, command: str, *args: str, check: bool = True) -> Result:
        """`pulumi up|refresh|destroy --yes --skip-preview`: the command's changes without the preview it
        would run first (the program and the providers' reads once more). What a preview shows is checked on
        `pulumi preview`; an `up` expected to fail runs with its preview, and the docs' lines as written."""
        return self.run(command, "--yes", "--skip-preview", *args, check=check)

    def init_stack(self, name: str) -> Result:
        return self.run("stack", "init", name, "--secrets-provider", self.secrets_provider)

    def start(self, *args: str) -> subprocess.Popen:
        """`pulumi ARGS` in the background (for runs that overlap, or one to kill)."""
        return subprocess.Popen([self.cli, *args, "--non-interactive", "--color", "never"], cwd=self.root,
                                env=self.environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run_line(self, line: str, check: bool = True) -> Result:
        """A command line as written in the README (`pulumi ...`), with its `$VARIABLES` from the environment."""
        words = [re.sub(r"\$(\w+)", lambda name: self.environ[name.group(1)], word) for word in shlex.split(line)]
        assert words[0] == "pulumi", line
        return self.run(*words[1:], check=check)

    def state_text(self) -> str:
        """Every file of the state backend (checkpoints, history, backups), as text."""
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.state_dir.rglob("*")) if path.is_file())

    def printed(self) -> str:
        """Everything the CLI printed so far (not the command lines, which hold what the user typed)."""
        return "\n".join(result.output for result in self.transcript)


def processes_working_in(folder: Path) -> list[str]:
    """Processes whose working directory is inside `folder` (the CLI, its plugins, the program)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")).is_relative_to(folder):
                found.append((proc / "cmdline").read_text().replace("\0", " ")[:120])
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return found
