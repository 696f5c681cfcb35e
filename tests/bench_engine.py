"""Benchmark of the real Pulumi CLI on this project (prints figures, asserts nothing).

Wall time of `preview` and `up` with no change, `up` with one prompt change and `refresh`, each with the
Twilio requests it made (against the local fake), beside `preview` of an empty Python program in the same
environment: the engine's own floor. Then the time to put the CLI in place with the build cached; with
`--cold`, also a build from an empty Go build cache (several minutes).

    .venv/bin/python tests/bench_engine.py [--runs 3] [--cold]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pulumi_cli import REPO, PulumiProject  # noqa: E402
from test_engine_lifecycle import readme_pin_command  # noqa: E402
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, LocalTwilio  # noqa: E402

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
    ratio = f"  ({seconds / floor:.1f}x the empty program)" if floor else ""
    print(f"{name:<34} {seconds:6.2f} s median of {len(samples)}   Twilio requests: {requests}{ratio}")


def empty_program_preview(runs: int) -> list[tuple[float, int]]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "program").mkdir()
        for name, text in EMPTY_PROGRAM.items():
            (root / "program" / name).write_text(text)
        floor = PulumiProject(root / "program", {}, copy=False)
        floor.run("stack", "init", "floor")
        fake = LocalTwilio()  # never started: counts stay at zero
        return [timed(floor, fake, "preview") for _ in range(runs)]


def line_steps(runs: int) -> dict[str, list[tuple[float, int]]]:
    fake = LocalTwilio().start()
    fake.own_number("+14155550142")
    steps: dict[str, list[tuple[float, int]]] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            line = PulumiProject(Path(folder), {"CALLMASK_TWILIO_BASE_URL": fake.base_url,
                                                "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN})
            line.run("stack", "init", "prod")
            line.run_line(readme_pin_command())
            steps["up (create the line)"] = [timed(line, fake, "up", "--yes")]
            for run in range(runs):
                steps.setdefault("preview (no change)", []).append(timed(line, fake, "preview"))
                steps.setdefault("up (no change)", []).append(timed(line, fake, "up", "--yes"))
                line.run("config", "set", "--path", "callmask:prompts.goodbye", f"Goodbye, run {run}.")
                steps.setdefault("up (one prompt change)", []).append(timed(line, fake, "up", "--yes"))
                steps.setdefault("refresh", []).append(timed(line, fake, "refresh", "--yes"))
            line.run("destroy", "--yes")
    finally:
        fake.stop()
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
    floor = empty_program_preview(args.runs)
    report("preview, empty Python program", floor)
    floor_seconds = statistics.median(s for s, _ in floor)
    for name, samples in line_steps(args.runs).items():
        report(name, samples, floor_seconds)
    tools_install(args.cold)


if __name__ == "__main__":
    main()
