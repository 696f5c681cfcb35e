"""Benchmark of the real Pulumi CLI on this project (prints figures, asserts nothing).

Wall time of `preview` with no change on the dev stack (the preview a pull request runs), taken in turn with
`preview` of an empty Python program in the same environment (the engine's own floor), and the ratio of the
two; on prod also `preview` and `up` with no change, `up` with one prompt change and `refresh`. Each with the
Twilio requests it made (against the local fake). Then the time to put the CLI in place with the build
cached; with `--cold`, also a build from an empty Go build cache (several minutes).

    .venv/bin/python tests/bench_engine.py [--runs 3] [--cold]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pulumi_cli import REPO, PulumiProject  # noqa: E402
from test_engine_lifecycle import readme_pin_command  # noqa: E402
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, LocalTwilio  # noqa: E402

FLOOR_STEP, DEV_PREVIEW_STEP = "preview, empty Python program", "dev: preview (no change)"
EMPTY_PROGRAM = {"Pulumi.yaml": "name: floor\nruntime:\n  name: python\n  options:\n    toolchain: pip\n",
                 "__main__.py": "import pulumi\n"}


def timed(project: PulumiProject, fake: LocalTwilio, *args: str) -> tuple[float, int]:
    before = len(fake.calls)
    started = time.perf_counter()
    project.run(*args)
    return time.perf_counter() - started, len(fake.calls) - before


def report(name: str, samples: list[tuple[float, int]], floor: float | None = None) -> None:
    seconds = statistics.median(s for s, _ in samples)
    requests = sorted({r for _, r in samples})
    ratio = f"  ({seconds / floor:.2f}x the empty program)" if floor else ""
    print(f"{name:<34} {seconds:6.2f} s median of {len(samples)}   Twilio requests: {requests}{ratio}")


def as_users_run(project: PulumiProject) -> PulumiProject:
    """The CLI with Go's own garbage-collector setting, not the one the tests give it."""
    project.environ.pop("GOGC", None)
    return project


@contextlib.contextmanager
def empty_program() -> Iterator[PulumiProject]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "program").mkdir()
        for name, text in EMPTY_PROGRAM.items():
            (root / "program" / name).write_text(text)
        floor = as_users_run(PulumiProject(root / "program", {}, copy=False))
        floor.run("stack", "init", "floor")
        yield floor


@contextlib.contextmanager
def deployed_line(stack: str, steps: dict[str, list[tuple[float, int]]]) -> Iterator[tuple[PulumiProject, LocalTwilio]]:
    """The line on `stack`, created (timed into `steps`) against a new local Twilio, destroyed afterwards: dev
    buys a number that is for sale, prod adopts one the account owns and checks its PINs in a Function."""
    fake = LocalTwilio().start()
    fake.own_number("+14155550142")
    fake.available["US"] = ["+14155550100"]
    try:
        with tempfile.TemporaryDirectory() as folder:
            line = as_users_run(PulumiProject(Path(folder), {"CALLMASK_TWILIO_BASE_URL": fake.base_url,
                                                             "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                                                             "TWILIO_AUTH_TOKEN": AUTH_TOKEN}))
            line.run("stack", "init", stack)
            line.run_line(readme_pin_command())
            steps[f"{stack}: up (create the line)"] = [timed(line, fake, "up", "--yes")]
            yield line, fake
            line.run("destroy", "--yes")
    finally:
        fake.stop()


def preview_beside_the_floor(runs: int) -> dict[str, list[tuple[float, int]]]:
    """A no-op `preview` of dev and one of the empty program, taken in turn, so that both see the same machine."""
    steps: dict[str, list[tuple[float, int]]] = {FLOOR_STEP: [], DEV_PREVIEW_STEP: []}
    never_called = LocalTwilio()  # the empty program calls no Twilio: its count stays at zero
    with empty_program() as floor, deployed_line("dev", steps) as (line, fake):
        for _ in range(runs):
            steps[FLOOR_STEP].append(timed(floor, never_called, "preview"))
            steps[DEV_PREVIEW_STEP].append(timed(line, fake, "preview"))
    return steps


def prod_steps(runs: int) -> dict[str, list[tuple[float, int]]]:
    steps: dict[str, list[tuple[float, int]]] = {}
    with deployed_line("prod", steps) as (line, fake):
        for run in range(runs):
            steps.setdefault("prod: preview (no change)", []).append(timed(line, fake, "preview"))
            steps.setdefault("prod: up (no change)", []).append(timed(line, fake, "up", "--yes"))
            line.run("config", "set", "--path", "callmask:prompts.goodbye", f"Goodbye, run {run}.")
            steps.setdefault("prod: up (one prompt change)", []).append(timed(line, fake, "up", "--yes"))
            steps.setdefault("prod: refresh", []).append(timed(line, fake, "refresh", "--yes"))
    return steps


def tools_install(cold: bool) -> None:
    started = time.perf_counter()
    subprocess.run([str(REPO / "tools" / "install-pulumi")], check=True, capture_output=True)
    print(f"{'tools, build cached':<34} {time.perf_counter() - started:6.2f} s")
    if cold:
        with tempfile.TemporaryDirectory() as cache:
            started = time.perf_counter()
            subprocess.run(["go", "build", "-o", f"{cache}/pulumi", "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"],
                           cwd=REPO / "tools" / "pulumi", check=True, env={**os.environ, "GOCACHE": cache})
            print(f"{'tools, empty Go build cache':<34} {time.perf_counter() - started:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a build from an empty Go build cache")
    args = parser.parse_args()
    steps = preview_beside_the_floor(args.runs)
    floor = statistics.median(seconds for seconds, _ in steps.pop(FLOOR_STEP))
    print(f"{FLOOR_STEP:<34} {floor:6.2f} s median of {args.runs}, taken in turn with dev's")
    for name, samples in {**steps, **prod_steps(args.runs)}.items():
        report(name, samples, floor)
    tools_install(args.cold)


if __name__ == "__main__":
    main()
