"""Shared fixtures: a Twilio fake over real HTTP (one server per test worker, a new account per test),
providers configured the way the engine does, the fault matrix's table, and (real_time_guard.py) the guard
that keeps the suite from waiting in real time."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, LocalTwilio, with_numbers_for_sale
from callmask.twilio.twilio_api import BASE_URL_VARIABLE
from pulumi.dynamic import Config, ConfigureRequest
from pulumi_cli import kms_secrets_provider

pytest_plugins = ["real_time_guard"]

TEST_PINS = ["24681357", "86420135"]
CREDENTIAL_VARIABLES = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET",
                        "TWILIO_REGION", "TWILIO_EDGE")


@pytest.fixture(scope="session")
def twilio_server():
    fake = LocalTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture
def fresh_twilio(twilio_server, monkeypatch) -> LocalTwilio:
    """The worker's fake as a new account with no numbers for sale, and the clients pointed at it."""
    fake = twilio_server.reset()
    monkeypatch.setenv(BASE_URL_VARIABLE, fake.base_url)
    for variable in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return fake


@pytest.fixture
def twilio(fresh_twilio):
    fake = fresh_twilio
    fake.available = with_numbers_for_sale().available
    yield fake
    fake.settle()
    assert fake.spec_violations == [], "the fake saw traffic that Twilio's OpenAPI spec does not allow"
    assert fake.unserved == [], "requests reached routes the local Twilio does not serve"


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """moto's AWS-compatible server (S3, KMS) on 127.0.0.1, one per worker; its state is the process's."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def kms_key(aws_endpoint) -> str:
    """A stack secrets provider other than the README's passphrase: a new key of the local KMS, whose
    decryption is one request where the passphrase's key derivation costs each `pulumi` command 0.2 CPU-s."""
    return kms_secrets_provider(aws_endpoint)


def configured(provider_class):
    """A provider configured as the engine does: the whole stack config, credentials included."""
    provider = provider_class()
    provider.configure(ConfigureRequest(Config(
        {"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN}, "callmask")))
    return provider


# ---- the fault matrix's table (tests/test_fault_matrix.py) ----
# Each matrix test records its cells as a user property, which pytest-xdist carries from the worker to
# the main process, where the table is put together and printed after the run.
FAULT_MATRIX_PROPERTY = "fault_matrix_cells"
# (command, call's index, call, fault's index, fault, outcomes)
fault_matrix_cells: list[tuple[str, int, str, int, str, str]] = []


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: half again as many workers as cores. A worker waits a good part of its time on `pulumi`
    and Node subprocesses, so two workers on 2 cores left a third of the CPU idle and three filled it (the
    suite: 467 s -> 421 s on 2 cores, when the fault matrix still waited out its held requests; without
    those waits two and three workers take the same time, 183-186 s side by side)."""
    return max(2, (os.cpu_count() or 1) * 3 // 2)


def pytest_collection_modifyitems(items) -> None:
    """The slow tests first, each to the next free worker (`--dist load --maxschedchunk 1`): handed out in
    file order, a slow test last in line kept one worker busy for the suite's last minute while the others
    had finished (2 cores half idle)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_runtest_logreport(report):
    if report.when == "call":
        for name, cells in report.user_properties:
            if name == FAULT_MATRIX_PROPERTY:
                fault_matrix_cells.extend(tuple(cell) for cell in cells)


def pytest_terminal_summary(terminalreporter):
    if not fault_matrix_cells:
        return
    faults = [fault for _, fault in sorted({(index, fault) for *_, index, fault, _ in fault_matrix_cells})]
    rows: dict[tuple[str, int, str], dict[str, str]] = {}
    for command, index, call, _, fault, outcomes in fault_matrix_cells:
        rows.setdefault((command, index, call), {})[fault] = outcomes
    write = terminalreporter.write_line
    terminalreporter.section("fault matrix: outcome at the first attempt / at every attempt")
    write("ok: the command succeeded anyway; err: it failed with one clean line. Either way the re-run, a "
          "second up (no writes) and destroy ended in the same state.")
    write(f"{'command':<15} {'Twilio call':<46} " + " ".join(f"{fault:>15}" for fault in faults))
    for (command, _, call), row in sorted(rows.items()):
        write(f"{command:<15} {call[:46]:<46} " + " ".join(f"{row.get(fault, '-'):>15}" for fault in faults))
    cases = sum(len(outcomes.split("/")) for *_, outcomes in fault_matrix_cells)
    write(f"{len(rows)} calls x {len(faults)} faults x 2 = {cases} cases")
