"""Benchmark of the PIN guard: prints figures, asserts nothing
(run: .venv/bin/python tests/bench_pin_guard.py [--checks 40]).

1. What the guard adds to one PIN check (goal: at most 50 ms against the local Twilio): the deployed
   Function in Twilio's own runtime, its Sync on an in-process local Twilio, timed with and without the
   guard, for a wrong PIN (read, write of the caller's count and of the all-callers count) and a right one
   (read, write). The KDF is made cheap so that the difference is the guard's.
2. For the default policy, the guesses one caller ID can make in a day, measured by driving the Function's
   own guard code through a simulated day (its clock moved, its Sync real) with two strategies: keying wrong
   PINs as fast as the lockouts allow, and pacing them to stay under `lockAfter`; and from the larger, the
   expected days for one caller ID to guess one of 10 PINs at 6 and 8 digits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from callmask.config.settings import PinGuard
from callmask.function import pin_function
from callmask.local.twilio import LocalTwilio
from callmask.twilio.twilio_api import BASE_URL_VARIABLE

FAST_KDF = {"N": 1024, "r": 8, "p": 1, "keylen": 32, "maxmem": 16 * 1024 * 1024}
FLOW_SID, ACCOUNT = "FW" + "b" * 32, "AC" + "a" * 32
DOMAIN = "callmask-bench-1234.twil.io"
PIN = "27184926"
VALUES = {"pinLength": 8, "gatherTimeout": 20, "voice": "Polly.Joanna", "language": "en-US", "greeting": "PIN?",
          "retryPrompt": "Again?", "attemptsPerCall": 1, "stack": "bench"}
DAY_SCRIPT = """
globalThis.Twilio = {...require('twilio')};
const {answer} = require('./pin-check.js');
const [line, context, strategy] = JSON.parse(process.argv[1]);
const MINUTE = 60000, DAY = 24 * 60 * MINUTE, start = Date.UTC(2026, 11, 3);
let now = start, cycle = start, guessed = 0;
const clock = () => now;
const event = {AccountSid: 'AC' + 'a'.repeat(32), flowSid: 'FW' + 'b'.repeat(32), From: '+14155550166',
  step: 'check', Digits: '11112222', attempt: '1'};
(async () => {
  while (now < start + DAY) {
    const said = (await answer(line, context, event, clock)).toString();
    if (said.includes('verdict=bad')) {
      guessed += 1;  // a guess the Function checked and refused
    } else if (!said.includes('verdict=locked')) {
      throw new Error(said);
    }
    // fast: the next call at once (a minute per call); paced: lockAfter-1 guesses, then wait until the window
    // that began with the first of them has passed
    if (strategy === 'paced' && guessed % (line.guard.lockAfter - 1) === 0) {
      now = cycle + line.guard.windowMinutes * MINUTE;
      cycle = now;
    } else {
      now += MINUTE;
    }
  }
  console.log(guessed);
})();
"""


def function_code(guard: PinGuard | None) -> tuple[str, str]:
    salt = pin_function.new_salt()
    values = {**VALUES, **({"guard": guard.policy()} if guard else {})}
    return pin_function.deployed_code(pin_function.source(), values, {"alice": PIN}, salt, FAST_KDF), salt


def check_times(local: LocalTwilio, guarded: bool, checks: int) -> dict[str, list[float]]:
    code, salt = function_code(PinGuard() if guarded else None)
    variables = {pin_function.SALT_VARIABLE: salt}
    if guarded:
        variables |= {**local.pin_guard("bench"), BASE_URL_VARIABLE: local.base_url}
    url = f"https://{DOMAIN}{pin_function.FUNCTION_PATH}?attempt=1&flowSid={FLOW_SID}&step=check"
    times: dict[str, list[float]] = {"wrong": [], "right": []}
    with tempfile.TemporaryDirectory() as scratch, pin_function.LocalFunction(code, Path(scratch)) as function:
        check = function.service(variables)
        check(url, {"AccountSid": ACCOUNT, "Digits": PIN, "From": "+14155550100"})  # warm
        for index in range(checks):
            caller = f"+1415555{index % 4000:04d}"  # a new caller each time: never locked out
            for kind, digits in (("wrong", "11112222"), ("right", PIN)):
                started = time.perf_counter()
                status, body = check(url, {"AccountSid": ACCOUNT, "Digits": digits, "From": caller})
                times[kind].append(time.perf_counter() - started)
                assert status == 200 and "guard-unavailable" not in body, body
    return times


def guesses_per_day(local: LocalTwilio, strategy: str) -> int:
    guard = PinGuard()
    code, salt = function_code(guard)
    line = json.loads(code.split("const LINE = ", 1)[1].split(";\n", 1)[0])
    context = {"DOMAIN_NAME": DOMAIN, "PATH": pin_function.FUNCTION_PATH, pin_function.SALT_VARIABLE: salt,
               **local.pin_guard("bench"), BASE_URL_VARIABLE: local.base_url}
    done = subprocess.run(["node", "-e", DAY_SCRIPT, json.dumps([line, context, strategy])],
                          cwd=pin_function.FUNCTIONS_DIR, capture_output=True, text=True, check=True)
    return int(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=40)
    args = parser.parse_args()
    local = LocalTwilio().start()
    try:
        plain, guarded = check_times(local, False, args.checks), check_times(local, True, args.checks)
        print(f"one PIN check through Twilio's runtime, {args.checks} of each, median (p90) in ms:")
        for kind in ("wrong", "right"):
            added = statistics.median(guarded[kind]) - statistics.median(plain[kind])
            p90 = sorted(guarded[kind])[int(0.9 * len(guarded[kind]))] * 1000
            print(f"  {kind} PIN: without the guard {statistics.median(plain[kind]) * 1000:.1f}, with it "
                  f"{statistics.median(guarded[kind]) * 1000:.1f} (p90 {p90:.1f}): the guard adds {added * 1000:.1f} ms")
        fast, paced = guesses_per_day(local, "fast"), guesses_per_day(local, "paced")
        best = max(fast, paced)
        print(f"default policy {PinGuard().policy()}: guesses one caller ID gets checked in a day: {fast} keying as "
              f"fast as the lockouts allow, {paced} pacing under lockAfter")
        for digits in (6, 8):
            expected_guesses = (10 ** digits + 1) / 11  # distinct guesses until the first of 10 PINs: (N+1)/(k+1)
            print(f"  {digits}-digit PINs, 10 on the line: {expected_guesses:,.0f} guesses expected to find one: "
                  f"{expected_guesses / best:,.0f} days for one caller ID")
    finally:
        local.stop()


if __name__ == "__main__":
    main()
