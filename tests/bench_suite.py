"""Benchmark of the test suite itself (prints figures, asserts nothing).

The README's test command on this checkout: its wall time, the number of tests and fault-matrix cases, and
the time each test module took inside it (summed over its tests, whichever worker ran them). With
`--modules`, each module is also run alone, as in a developer's edit-test loop (`pytest tests/test_X.py`);
with `--ci`, `.ci/run` runs on a fresh clone of HEAD, as CI runs it (the Go build cache is whatever this
machine has).

    .venv/bin/python tests/bench_suite.py [--modules] [--ci]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTEST = [str(REPO / ".venv" / "bin" / "python"), "-m", "pytest"]  # the README's test command


def timed(command: list[str], cwd: Path, environ: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environ)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        failures = done.stdout.find("= FAILURES =")  # before the fault matrix's table, which is long
        print((done.stdout[failures:failures + 6000] + "\n...\n" if failures >= 0 else "")
              + done.stdout[-3000:] + done.stderr[-3000:])
        print(f"`{' '.join(command)}` exited {done.returncode}")
    return seconds, done.stdout


def module_seconds(junit: Path) -> dict[str, tuple[int, float]]:
    """Tests and summed seconds per module, from pytest's JUnit XML."""
    modules: dict[str, list[float]] = defaultdict(list)
    for case in ElementTree.parse(junit).iter("testcase"):
        parts = case.get("classname", "").split(".")
        module = next((part for part in parts if part.startswith("test_")), parts[-1])
        modules[module].append(float(case.get("time", 0)))
    return {module: (len(times), sum(times)) for module, times in modules.items()}


def whole_suite() -> None:
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "junit.xml"
        seconds, output = timed([*PYTEST, f"--junitxml={junit}", "-p", "no:cacheprovider"], REPO)
        summary = [line for line in output.splitlines() if re.search(r"\d+ passed", line)]
        cases = [line for line in output.splitlines() if line.endswith(" cases")]
        print(f"README test command: {seconds:.0f} s wall ({seconds / 60:.1f} min)")
        print(f"  {summary[-1].strip('= ') if summary else 'no summary line'}; "
              f"fault matrix: {cases[-1] if cases else 'not run'}")
        print(f"\n{'module':<28} {'tests':>6} {'seconds (summed over its tests)':>34}")
        for module, (count, total) in sorted(module_seconds(junit).items(), key=lambda item: -item[1][1]):
            print(f"{module:<28} {count:>6} {total:>34.1f}")


def each_module_alone() -> None:
    print(f"\n{'module alone (edit-test loop)':<34} {'wall seconds':>12}")
    for path in sorted((REPO / "tests").glob("test_*.py")):
        seconds, _ = timed([*PYTEST, "-q", "-p", "no:cacheprovider", str(path.relative_to(REPO))], REPO)
        print(f"{path.name:<34} {seconds:>12.1f}")


def ci_on_a_fresh_clone() -> None:
    with tempfile.TemporaryDirectory() as folder:
        clone = Path(folder) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        seconds, _ = timed(["bash", ".ci/run"], clone, {**os.environ, "CI": "true"})
        print(f"\n.ci/run on a fresh clone of HEAD: {seconds:.0f} s wall ({seconds / 60:.1f} min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="also run each test module alone")
    parser.add_argument("--ci", action="store_true", help="also run .ci/run on a fresh clone of HEAD")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; {sys.version.split()[0]}")
    whole_suite()
    if args.modules:
        each_module_alone()
    if args.ci:
        ci_on_a_fresh_clone()


if __name__ == "__main__":
    main()
