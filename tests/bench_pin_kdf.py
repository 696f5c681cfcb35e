"""Benchmark of the PIN digests' cost: prints figures, asserts nothing
(run: .venv/bin/python tests/bench_pin_kdf.py [--checks 20]).

Targets (functions/pin-kdf.json): one PIN check by the deployed Function takes at most 250 ms in Node on
this machine, and an offline search of every 8-digit PIN costs at least 100 CPU-days. The check is timed
end to end through the Function's code under Node (a request with the caller's digits, answered with the
verdict); the search cost is 10^8 KDF runs at the CPU time of the faster of Node and Python.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from callmask.function import pin_function

CPU_SECONDS_PER_DAY = 86_400
FLOW_SID, ACCOUNT = "FW" + "b" * 32, "AC" + "a" * 32
CONTEXT = {"DOMAIN_NAME": "callmask-bench-1234.twil.io", "PATH": pin_function.FUNCTION_PATH}
VALUES = {"pinLength": 8, "gatherTimeout": 20, "voice": "Polly.Joanna", "language": "en-US", "greeting": "PIN?"}
NODE_KDF_CPU = """
const crypto = require('crypto');
const k = JSON.parse(process.argv[1]);
const runs = Number(process.argv[2]);
const started = process.cpuUsage();
for (let i = 0; i < runs; i++) {
  crypto.scryptSync(String(10000000 + i), Buffer.alloc(16), k.keylen, {N: k.N, r: k.r, p: k.p, maxmem: k.maxmem});
}
const used = process.cpuUsage(started);
console.log((used.user + used.system) / 1e6 / runs);
"""


def check_times(checks: int) -> list[float]:
    """Wall time of each check request (10 PINs on the line: the digests are all compared every time)."""
    pins = {f"person{index}": str(27184926 + index * 1_000_003) for index in range(10)}
    salt = pin_function.new_salt()
    code = pin_function.deployed_code(pin_function.source(), VALUES, pins, salt)
    url = f"https://{CONTEXT['DOMAIN_NAME']}{CONTEXT['PATH']}?flowSid={FLOW_SID}&step=check"
    with tempfile.TemporaryDirectory() as scratch, pin_function.LocalFunction(code, Path(scratch)) as function:
        check = function.service({pin_function.SALT_VARIABLE: salt})  # Twilio's runtime, over HTTP
        check(url, {"AccountSid": ACCOUNT, "Digits": "11111111"})  # warm: the module loaded, crypto ready
        times = []
        for index in range(checks):
            digits = pins["person3"] if index % 2 else f"{31415926 + index}"
            started = time.perf_counter()
            check(url, {"AccountSid": ACCOUNT, "Digits": digits})
            times.append(time.perf_counter() - started)
    return times


def python_kdf_cpu_seconds(runs: int) -> float:
    salt = pin_function.new_salt()
    started = time.process_time()
    for index in range(runs):
        pin_function.pin_digest(str(10_000_000 + index), salt)
    return (time.process_time() - started) / runs


def node_kdf_cpu_seconds(runs: int) -> float:
    import json
    done = subprocess.run(["node", "-e", NODE_KDF_CPU, json.dumps(pin_function.kdf()), str(runs)],
                          capture_output=True, text=True, check=True)
    return float(done.stdout)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--checks", type=int, default=20)
    checks = arguments.parse_args().checks
    cost = pin_function.kdf()
    print(f"scrypt N={cost['N']} r={cost['r']} p={cost['p']} ({128 * cost['N'] * cost['r'] // 2**20} MiB per run), "
          f"keylen {cost['keylen']}")
    times = check_times(checks)
    print(f"one PIN check in Node, through the Function: median {statistics.median(times) * 1000:.0f} ms, "
          f"worst {max(times) * 1000:.0f} ms of {checks} (target: at most 250 ms)")
    node, python = node_kdf_cpu_seconds(5), python_kdf_cpu_seconds(5)
    fastest = min(node, python)
    days = 10**8 * fastest / CPU_SECONDS_PER_DAY
    print(f"one KDF run: {node * 1000:.0f} ms CPU in Node, {python * 1000:.0f} ms in Python")
    print(f"every 8-digit PIN (10^8 runs): {days:.0f} CPU-days; 6-digit: {days / 100:.1f} CPU-days "
          "(target: at least 100 CPU-days for 8 digits)")


if __name__ == "__main__":
    main()
