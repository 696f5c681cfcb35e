"""Every Twilio call of every stack command, failed in every way Twilio or the network can fail it.

A command (`up` creating the line, `up` with a prompt change, `refresh`, `destroy`) is first run without
faults to list its Twilio calls. Then, for each call and each fault, at the first attempt and at every
attempt: the command runs with the fault, runs again without it (as an operator re-runs it), then `up`
twice (the second must not write) and `destroy`. Whatever happened, the end must be the same: at most one
number held at a time, a number released only when the stack says so, no flow left behind, the number's voice
settings as they were, and every failure told in one line without a secret.

Three shortcuts keep that cheap, all resting on one premise that a test checks (what a command does depends
only on the account and the line's state it starts from; the accounts' clock stands still, so equal states
are equal to the byte):
- a case resumes its command at the step that makes the faulted call, from the account and line as the
  fault-free run began that step: the steps before it are that run's, and only the steps from the fault on
  run again;
- a fault the step got over (a retried 429, a create found again after its answer was lost) leaves the
  state the fault-free run began the next step in: with no fault left armed for the calls still to come and
  nothing about to land, the rest of the command is that run's, and the case goes on from where it ended;
- many faults leave the same state behind (a refused write and a write cut before Twilio acted leave what
  was there), so recovery is proven once per state the run meets, as a model checker visits each state once:
  every case runs its fault and gets its outcome, and one that reaches a state already proven stops there.

The providers are driven as the engine drives them (tests/line_driver.py); the real engine's lifecycle is
tests/test_engine_lifecycle.py. The matrix is printed at the end of the test run. One test is one fault of one
command on one stack, every call and both attempt modes, so parallel workers share the matrix evenly; each
case starts from a new account on the worker's fake, and the workers share the states proven.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import pickle
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

import pytest
import requests
from callmask.function import pin_function
from callmask.providers import pin_salt
from callmask.providers.twilio_provider import MAX_MESSAGE, ProviderError
from callmask.local.twilio import (
    ANSWER,
    AUTH_TOKEN,
    LATE,
    RESET_AFTER,
    RESET_BEFORE,
    TIMEOUT_AFTER,
    TIMEOUT_BEFORE,
    LocalTwilio,
    new_account_permissions,
)
from callmask.twilio.twilio_api import TIMEOUT_VARIABLE
from conftest import FAULT_MATRIX_PROPERTY, TEST_PINS
from flow_fixtures import FAST_KDF
from line_driver import BeforeStep, Line, no_hook

# A held request gets no answer until its client gives up: the client gives up on one at once, and goes on
# once the fake holds it, where it would be after any timeout (waiting out a real one proves nothing more).
# Every other request has the time a busy machine may take.
CLIENT_TIMEOUT = 5.0
GIVE_UP_SECONDS = 0.001
EVERY_ATTEMPT = 1000
FIXED_SALT = "bWF0cml4LWZpeGVkLXNhbHQ="
OWNED_NUMBER, OWNED_VOICE_URL, OWNED_APPLICATION = "+14155550142", "https://voice.example.com/ivr", "AP" + "b" * 32

FAULTS = {
    "429+Retry-After": {"kind": ANSWER, "status": 429, "code": 20429, "retry_after": "0"},
    "429": {"kind": ANSWER, "status": 429, "code": 20429},
    "500": {"kind": ANSWER, "status": 500},
    "503": {"kind": ANSWER, "status": 503},
    "400": {"kind": ANSWER, "status": 400, "code": 21000},
    "404": {"kind": ANSWER, "status": 404, "code": 20404},
    "reset-before": {"kind": RESET_BEFORE},
    "reset-after": {"kind": RESET_AFTER},
    "timeout-before": {"kind": TIMEOUT_BEFORE},
    "timeout-after": {"kind": TIMEOUT_AFTER},
    "late": {"kind": LATE},
}
MODES = {"first": 1, "every": EVERY_ATTEMPT}
# prod adopts a number the account owns and keeps it; dev searches, buys and releases on destroy, has a spend
# alert, and makes the account's dialing permissions exactly its own (its check reads them as `check` mode
# does, so prod, to keep the matrix's time, leaves them alone).
STACKS = {
    "prod": {"selection": {"mode": "number", "number": OWNED_NUMBER}, "release": False, "dialing_permissions": "off"},
    "dev": {"selection": {"mode": "search", "country": "US", "area_code": "415"}, "release": True,
            "spend_alert": {"daily_usd": "25.00", "callback_url": "https://alerts.example.com/spend"},
            "dialing_permissions": "exactly"},
}
# prod as committed, its PINs checked by its Function: creating it, revoking a PIN (new code, build and
# deployment), refreshing, destroying, and switching to studio (with publish; the switch back makes the
# calls up-create makes).
FUNCTION_STACK = "prod-fn"
FUNCTION_COMMANDS = ("up-create", "up-revoke", "refresh", "destroy", "to-studio")
SERVERLESS_ONLY = ("up-create", "refresh", "destroy")
COMMANDS = ("up-create", "up-prompt", "refresh", "destroy")
# prod stages its changes: a draft for its test users (test users set, the published revision read), then
# publishing the draft.
STAGED_COMMANDS = ("up-draft", "publish")
TESTER = "+14155550199"
# Every account's dates: the same moment, so accounts that saw the same writes are equal to the byte.
ACCOUNT_CLOCK = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def account(fresh_twilio, monkeypatch) -> LocalTwilio:
    monkeypatch.setenv(TIMEOUT_VARIABLE, str(CLIENT_TIMEOUT))
    monkeypatch.setattr(requests.Session, "send", giving_up_on_held_requests(fresh_twilio, requests.Session.send))
    monkeypatch.setattr(pin_function, "kdf", lambda: FAST_KDF)  # the digests' cost is not what this tests
    # Nor the salt's randomness: with one salt every case sends the same bytes, checked against the spec once.
    monkeypatch.setattr(pin_salt, "new_salt", lambda: FIXED_SALT)
    return fresh_twilio


Send = Callable[..., requests.Response]


def giving_up_on_held_requests(fake: LocalTwilio, send: Send) -> Send:
    """requests' `Session.send` for the case's clients: the request the fake will hold is given up on at
    once (a ReadTimeout, as after any timeout), the client going on once the fake holds it."""
    def send_or_give_up(session: requests.Session, request: requests.PreparedRequest, **options):
        if not fake.holds_next(request.method, unquote(urlsplit(request.url).path)):
            return send(session, request, **options)
        holds = fake.holds
        try:
            send(session, request, **{**options, "timeout": (CLIENT_TIMEOUT, GIVE_UP_SECONDS)})
        except requests.Timeout:
            assert fake.wait_for_holds(holds + 1), f"{request.method} {request.url}: the local Twilio held nothing"
            raise
        raise AssertionError(f"{request.method} {request.url}: answered, though the local Twilio was to hold it")
    return send_or_give_up


def new_account(fake: LocalTwilio, stack: str) -> LocalTwilio:
    fake.reset()
    fake.clock = ACCOUNT_CLOCK
    fake.available["US"] = ["+14155550100", "+14155550101", "+14155550102"]
    fake.build_polls = 1  # each build is seen `building` once
    if stack in ("prod", FUNCTION_STACK):
        fake.own_number(OWNED_NUMBER, voice_url=OWNED_VOICE_URL, voice_application_sid=OWNED_APPLICATION)
    return fake


PREPARED: dict[tuple[str, str], tuple[bytes, Line]] = {}


def prepared(fake: LocalTwilio, stack: str, command: str) -> Line:
    """A new account on the fake and a line in the state the command starts from: prepared once per
    stack and command on each worker, then each case starts from a copy of that account and state."""
    if (stack, command) not in PREPARED:
        line = prepare(fake, stack, command)
        PREPARED[stack, command] = (fake.snapshot(), copied(line))
    account, line = PREPARED[stack, command]
    fake.restore(account)
    return copied(line)


def copied(line: Line) -> Line:
    """The line and its state, its providers shared (they hold nothing but the credentials)."""
    return copy.deepcopy(line, {id(provider): provider for provider in line.providers.values()})


def prepare(fake: LocalTwilio, stack: str, command: str) -> Line:
    new_account(fake, stack)
    if stack == FUNCTION_STACK:
        return prepared_function_line(stack, command)
    line = Line(stack, **STACKS[stack])
    if command != "up-create":
        line.up()
    if command in ("up-prompt", "up-draft", "publish"):
        line.prompts = {"goodbye": "Thank you for calling. Goodbye."}
    if command in ("up-draft", "publish"):
        line.publish, line.test_users = False, [TESTER]
    if command == "publish":
        line.up()
        line.publish = True
    return line


def prepared_function_line(stack: str, command: str) -> Line:
    line = Line("prod", **STACKS["prod"])
    line.pin_check = "function"
    if command != "up-create":
        line.up()
    if command == "up-revoke":
        line.pins = {"alice": TEST_PINS[0]}
    if command == "to-studio":
        line.pin_check = "studio"
    return line


def assert_function_serves_the_pins(fake: LocalTwilio, line: Line) -> None:
    """After recovery: the flow points at a deployed Function whose digests are exactly the stack's PINs'."""
    if line.pin_check != "function":
        assert fake.services == {}, "a Service was left behind"
        return
    (service,) = fake.services.values()
    url = line.state["flow"][1]["pin_check_url"]
    deployed = fake.deployed_function(url)
    assert deployed is not None, "the flow points at a Function that is not deployed"
    line_data = json.loads(deployed[0].split("const LINE = ", 1)[1].split(";\n", 1)[0])
    assert sorted(d["label"] for d in line_data["digests"]) == sorted(line.pins)
    guard = line.state["guard_key"][1]
    assert deployed[1] == {pin_function.SALT_VARIABLE: line.state["salt"][1]["salt"], **pin_function.guard_variables(
        line.sid("sync_service"), line.sid("sync_map"), guard["sid"], guard["secret"])}
    assert fake.api_keys == {guard["sid"]: guard["secret"]}, "the Function's key is the one key the stack holds"
    assert list(fake.sync_services) == [line.sid("sync_service")], "one Sync Service, the stack's"



def run(line: Line, command: str, start: int = 0, before_step: BeforeStep = no_hook) -> None:
    {"refresh": line.refresh, "destroy": line.destroy}.get(command, line.up)(start, before_step)


def published_definition(fake: LocalTwilio, line: Line) -> dict | None:
    flow_sid = line.state.get("flow", (None,))[0]
    return fake.published_revision(flow_sid)["definition"] if flow_sid in fake.flows else None


@dataclass
class Step:
    """Where a step of a command began in its fault-free run: a case resumes the command there."""
    calls_made: int  # the command's calls before the step
    index: int
    account: bytes
    line: Line
    state: str  # state_reached there


@dataclass
class Listing:
    """A command run without a fault: its Twilio calls and where each of its steps began."""
    calls: list[tuple[str, str]]
    steps: list[Step]
    callers_had: dict | None  # the definition the callers had before the command
    end: tuple[bytes, Line]  # the account and line the run ended with

    def resumed_before(self, call_index: int) -> Step:
        """The last step to begin before the call is made: up to there the command is the fault-free run."""
        return [step for step in self.steps if step.calls_made <= call_index][-1]

    def step_after(self, step: Step) -> Step | None:
        return next((later for later in self.steps if later.index > step.index), None)


LISTINGS: dict[tuple[str, str], Listing] = {}


def listing_of(fake: LocalTwilio, stack: str, command: str) -> Listing:
    """Listed once per stack and command on each worker (every case starts from the same prepared account,
    so the same SIDs), shared by the eleven faults' tests."""
    if (stack, command) not in LISTINGS:
        LISTINGS[stack, command] = fault_free_listing(fake, stack, command)
    return LISTINGS[stack, command]


def fault_free_listing(fake: LocalTwilio, stack: str, command: str) -> Listing:
    line = prepared(fake, stack, command)
    callers_had = published_definition(fake, line)
    before = len(fake.calls)
    steps: list[Step] = []

    def step_begins(index: int) -> None:
        steps.append(Step(len(fake.calls) - before, index, fake.snapshot(), copied(line),
                          state_reached(fake, stack, command, line)))

    run(line, command, before_step=step_begins)
    assert not fake.spec_violations, fake.spec_violations
    return Listing([(call.method, call.path) for call in fake.calls[before:]], steps, callers_had,
                   (fake.snapshot(), copied(line)))


def assert_one_clean_line(error: Exception) -> None:
    assert isinstance(error, ProviderError), f"not a one-line provider error: {type(error).__name__}: {error}"
    text = str(error)
    assert "\n" not in text and len(text) <= MAX_MESSAGE, text
    for secret in (*TEST_PINS, AUTH_TOKEN):
        assert secret not in text


class RestAsListed(Exception):
    """The faulted step ended where the fault-free run began the next one: the rest is that run's."""


def one_case(fake: LocalTwilio, stack: str, command: str, call_index: int, listing: Listing, fault: str,
             mode: str, recovered: Path) -> str:
    outcome, line = faulted_run(fake, stack, command, call_index, listing, fault, mode)
    fake.settle()
    fake.faults.clear()
    proof = recovered / state_reached(fake, stack, command, line)
    if not proof.exists():
        recover(fake, stack, command, line, listing.callers_had)
        proof.touch()
    return outcome


def faulted_run(fake: LocalTwilio, stack: str, command: str, call_index: int, listing: Listing, fault: str,
                mode: str, shortcut: bool = True) -> tuple[str, Line]:
    """The command with the fault: "ok" or "err", and the line as it left it."""
    step = listing.resumed_before(call_index)
    fake.restore(step.account)
    line = copied(step.line)
    arm(fake, listing, call_index, step.calls_made, fault, MODES[mode])
    following = listing.step_after(step)

    def after_the_faulted_step(index: int) -> None:
        if shortcut and following is not None and index == following.index and \
                goes_on_as_listed(fake, listing, following, state_reached(fake, stack, command, line)):
            raise RestAsListed

    outcome = "ok"
    try:
        run(line, command, start=step.index, before_step=after_the_faulted_step)
    except RestAsListed:
        fake.restore(listing.end[0])
        line = copied(listing.end[1])
    except Exception as error:  # every failure must be a clean line; which one is the point of the test
        assert_one_clean_line(error)
        outcome = "err"
    return outcome, line


def goes_on_as_listed(fake: LocalTwilio, listing: Listing, step: Step, state: str) -> bool:
    """Whether the command, about to begin `step` in `state` (taken once every request has landed, as the next
    request would wait for them), makes the rest of its fault-free run: the state is the one that run began the
    step in, and no armed fault matches a call still to come."""
    to_come = listing.calls[step.calls_made:]
    armed = [fault for fault in fake.faults if fault.times > 0]
    return state == step.state and not any(fault.method == method and fault.path.search(path)
                                           for fault in armed for method, path in to_come)


def arm(fake: LocalTwilio, listing: Listing, call_index: int, calls_made: int, fault: str, times: int = 1) -> None:
    """The fault on the listing's call `call_index` (its first `times` attempts), for the command resumed
    after its first `calls_made` calls: the same request made earlier in the resumed part is skipped."""
    method, path = listing.calls[call_index]
    fake.fail(method, "^" + re.escape(path) + "$", skip=listing.calls[calls_made:call_index].count((method, path)),
              times=times, **FAULTS[fault])


def recover(fake: LocalTwilio, stack: str, command: str, line: Line, callers_had: dict | None) -> None:
    """The rest of a case: the operator runs the command again (once any late request has landed), then
    `up` twice (the second writes nothing) and `destroy`, which must end as the stack says."""
    run(line, command)
    if command == "up-draft":
        assert published_definition(fake, line) == callers_had, "a draft reached the callers who are no test users"
    if command == "publish":
        assert published_definition(fake, line) == fake.flows[line.state["flow"][0]]["revisions"][1]["definition"], \
            "the draft the test users tried is what every caller gets"
    line.up()
    writes = len(fake.writes())
    line.up()
    assert len(fake.writes()) == writes, "a second up after recovery must change nothing"
    if stack == FUNCTION_STACK:
        assert_function_serves_the_pins(fake, line)
    if line.spend_alert:
        assert len(fake.usage_triggers) == 1, "one spend alert, never two"
    line.destroy()
    assert_end_state(fake, stack, line)
    assert not fake.spec_violations, fake.spec_violations


@pytest.fixture(scope="session")
def recovered(tmp_path_factory) -> Path:
    """Where the states after a faulted run from which the rest of a case (re-run, up, up, destroy, the end
    state) has passed are noted, one empty file each: in this run's temporary folder, shared by its workers."""
    run_folder = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_folder = run_folder.parent  # each worker's folder is inside the run's
    folder = run_folder / "recovered-states"
    folder.mkdir(exist_ok=True)
    return folder


def state_reached(fake: LocalTwilio, stack: str, command: str, line: Line) -> str:
    """All the rest of a case depends on: the stack and command, the account, and the line with its state.
    Pickled without a memo, so equal values give equal bytes whichever objects they share."""
    line_now = {name: value for name, value in vars(line).items() if name != "providers"}
    written = io.BytesIO()
    pickler = pickle.Pickler(written)
    pickler.fast = True
    pickler.dump((stack, command, fake.account_state(), line_now))
    return hashlib.blake2b(written.getvalue()).hexdigest()


def assert_end_state(fake: LocalTwilio, stack: str, line: Line) -> None:
    assert fake.purchases_while_holding_one == [], "a second number was bought while the stack held one"
    if stack in ("prod", FUNCTION_STACK):
        assert fake.purchases == [], "prod adopts the number the account owns"
    assert fake.flows == {}, "a flow was left outside the state"
    assert fake.services == {}, "a Serverless Service was left outside the state"
    assert fake.sync_services == {}, "a Sync Service was left outside the state"
    assert fake.key_names == {}, "an API key was left outside the state"
    assert fake.usage_triggers == {}, "a spend alert was left outside the state"
    assert fake.dialing_permissions == new_account_permissions(), "destroy puts the dialing permissions back"
    if stack in ("prod", FUNCTION_STACK):
        (number,) = fake.numbers.values()
        assert number["phone_number"] == OWNED_NUMBER, "an adopted number is never released"
        restored = (number["voice_url"], number["voice_application_sid"]) == (OWNED_VOICE_URL, OWNED_APPLICATION)
        # Where Twilio itself said the number and the binding were gone, the old settings cannot be known:
        # then the webhook is cleared (never left on a deleted flow), after a warning.
        cleared = number["voice_url"] is None and line.warned_voice_unknown
        assert restored or cleared, f"voice settings after destroy: {number['voice_url']}"
    else:
        assert fake.numbers == {}, "dev releases the number it bought (releaseNumberOnDestroy: true)"


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("stack, command", [(stack, command) for stack in STACKS for command in COMMANDS]
                         + [("prod", command) for command in STAGED_COMMANDS]
                         + [(FUNCTION_STACK, command) for command in FUNCTION_COMMANDS])
def test_every_call_and_fault_recovers_to_the_same_end(account, recovered, record_property, stack, command, fault):
    listing = listing_of(account, stack, command)
    calls = listing.calls
    assert calls, f"{command} makes Twilio calls"
    cells = []
    for index, (method, path) in enumerate(calls):
        if stack == FUNCTION_STACK and command in SERVERLESS_ONLY and not (path.startswith("/v1/Services")
                                                                          or "/Keys" in path):
            continue  # the flow's and the number's calls: the prod rows fail each of them
        outcomes = []
        for mode in MODES:
            try:
                outcomes.append(one_case(account, stack, command, index, listing, fault, mode, recovered))
            except AssertionError as failure:
                raise AssertionError(f"{stack} {command}, {method} {path}, {fault} at {mode} attempt: "
                                     f"{failure}") from None
        cells.append((f"{stack} {command}", index, f"{method} {shorten(path)}", list(FAULTS).index(fault), fault,
                      "/".join(outcomes)))
    record_property(FAULT_MATRIX_PROPERTY, cells)


def shorten(path: str) -> str:
    path = re.sub(r"(AC|FW|PN|UT|IS|MP|SK|Z[SEHNBDV])[0-9a-f]{32}", r"\1…", path).replace("/2010-04-01/Accounts/AC…", "")
    return path.replace("/v1/Services/ZS…", "/ZS…")


def test_what_follows_a_fault_depends_only_on_the_state_it_left(account):
    """The premises of the matrix's shortcuts: the fault-free steps of a command resumed from where the
    fault-free run began them leave what running the whole command leaves, and from equal states the rest
    of a case makes the same calls and ends in an equal account; a fault that acted (its answer cut) leaves
    another state than one refused before acting."""
    stack, command = FUNCTION_STACK, "up-create"
    listing = listing_of(account, stack, command)
    index = listing.calls.index(next(call for call in listing.calls if call[0] == "POST" and "/Keys" in call[1]))

    def faulted(fault: str, resumed: bool) -> tuple[str, list, bytes]:
        step = listing.resumed_before(index) if resumed else None
        if step:
            line = copied(step.line)
            account.restore(step.account)
        else:
            line = prepared(account, stack, command)
        arm(account, listing, index, step.calls_made if step else 0, fault)
        with pytest.raises(ProviderError):
            run(line, command, start=step.index if step else 0)
        account.faults.clear()
        reached = state_reached(account, stack, command, line)
        before = len(account.calls)
        recover(account, stack, command, line, listing.callers_had)
        return reached, account.calls[before:], account.snapshot()

    whole, resumed, refused = faulted("reset-after", False), faulted("reset-after", True), faulted("500", True)
    assert listing.resumed_before(index).calls_made > 0, "the case resumes after the command's first steps"
    assert whole[0] == resumed[0], "the command resumed left another state than the whole command"
    assert whole[1] == resumed[1] and whole[2] == resumed[2], "equal states, yet the rest of the case went otherwise"
    assert refused[0] != whole[0], "a key created and a key refused left states that compare equal"


def test_a_fault_the_step_got_over_leaves_the_rest_to_the_fault_free_run(account):
    """The third shortcut's premise: a case whose faulted step ends where the fault-free run began the next
    step, run through to the end, ends as that run did (the same outcome, account and line)."""
    stack, command = "dev", "up-create"
    listing = listing_of(account, stack, command)
    step = next(step for step in listing.steps[1:] if (following := listing.step_after(step))
                and following.calls_made > step.calls_made)
    ends = []
    for shortcut in (False, True):
        outcome, line = faulted_run(account, stack, command, step.calls_made, listing, "429", "first", shortcut)
        ends.append((outcome, state_reached(account, stack, command, line), len(account.calls)))
    (whole, whole_state, whole_calls), (short, short_state, short_calls) = ends
    assert whole == short == "ok" and whole_state == short_state, "the rest went otherwise than the fault-free run"
    # Going on from the fault-free run's end restores its account, which has made none of the rest's calls.
    assert short_calls < whole_calls, "the case did not go on from where the fault-free run ended"
