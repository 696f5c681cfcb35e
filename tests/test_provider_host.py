"""The providers driven through callmask's provider host (the SDK's `python -m pulumi.dynamic` with one-line errors and detailed diffs) over gRPC, exactly as the Pulumi engine does:
the host runs in the project's `main` directory, unpickles each provider from `__provider`, gets the
stack config through Configure, and answers Check, Diff, Create, Read, Update and Delete."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from callmask.providers.phone_number import PhoneNumberProvider
from callmask.providers.studio_flow import StudioFlowProvider
from callmask.providers.voice_binding import VoiceBindingProvider
from callmask.twilio.twilio_api import BASE_URL_VARIABLE
from conftest import TEST_PINS
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import proto, rpc
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, provider_pb2_grpc
from pulumi_cli import TOOLS_BIN, PulumiProject
from test_providers import flow_props
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN

MAIN_DIR = Path(__file__).resolve().parents[1] / "infra"


def struct(properties: dict):
    return asyncio.run(rpc.serialize_properties(properties, {}))


def plain(message) -> dict:
    return rpc.deserialize_properties(message)


def provider_environment(base_url: str) -> dict[str, str]:
    """The engine's environment for the plugin: the project's python3 first on PATH, no Twilio credentials
    (they come through Configure)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TWILIO_")}
    return {**env, "PATH": f"{sys.prefix}/bin{os.pathsep}{env['PATH']}", BASE_URL_VARIABLE: base_url,
            "PULUMI_PROJECT": "callmask"}


class Host:
    def __init__(self, base_url: str, command: tuple[str, ...] = (sys.executable, "-m", "callmask.providers.host")):
        self.process = subprocess.Popen(command, cwd=MAIN_DIR, env=provider_environment(base_url),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)  # its own process group, as the engine starts it
        port = self.process.stdout.readline().strip()
        assert port.isdigit(), self.process.stderr.read()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def close(self) -> str:
        self.channel.close()
        self.process.kill()
        return self.process.communicate()[1]


@pytest.fixture
def host(twilio):
    running = Host(twilio.base_url)
    configured = running.stub.Configure(proto.ConfigureRequest(
        args=struct({"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN})))
    assert configured.acceptSecrets is False
    yield running
    stderr = running.close()
    assert AUTH_TOKEN not in stderr and not any(pin in stderr for pin in TEST_PINS)


def urn(type_: str) -> str:
    return f"urn:pulumi:dev::callmask::callmask:index:DialOutLine$pulumi-python:dynamic/twilio:{type_}::line"


def with_provider(provider, props: dict) -> dict:
    return {**props, "__provider": serialize_provider(provider)}


def test_flow_lifecycle_through_the_provider_host(host, twilio):
    flow_urn = urn("StudioFlow")
    news = with_provider(StudioFlowProvider(), flow_props())

    checked = host.stub.Check(proto.CheckRequest(urn=flow_urn, olds=struct({}), news=struct(news)))
    assert list(checked.failures) == []

    created = host.stub.Create(proto.CreateRequest(urn=flow_urn, properties=checked.inputs))
    outs = plain(created.properties)
    assert created.id in twilio.flows and outs["webhook_url"].endswith(created.id)

    unchanged = host.stub.Diff(proto.DiffRequest(id=created.id, urn=flow_urn, olds=created.properties,
                                                 news=struct(news)))
    assert unchanged.changes == proto.DiffResponse.DIFF_NONE

    changed_news = with_provider(StudioFlowProvider(), flow_props(goodbye="See you."))
    changed = host.stub.Diff(proto.DiffRequest(id=created.id, urn=flow_urn, olds=created.properties,
                                               news=struct(changed_news)))
    assert changed.changes == proto.DiffResponse.DIFF_SOME and list(changed.replaces) == []

    updated = host.stub.Update(proto.UpdateRequest(id=created.id, urn=flow_urn, olds=created.properties,
                                                   news=struct(changed_news)))
    assert plain(updated.properties)["revision"] == 2

    read = host.stub.Read(proto.ReadRequest(id=created.id, urn=flow_urn, properties=updated.properties))
    assert read.id == created.id and plain(read.properties)["drift"] == ""

    host.stub.Delete(proto.DeleteRequest(id=created.id, urn=flow_urn, properties=updated.properties))
    assert twilio.flows == {}


def test_number_and_binding_through_the_provider_host(host, twilio):
    number_urn, binding_urn = urn("PhoneNumber"), urn("VoiceBinding")
    number_props = with_provider(PhoneNumberProvider(), {
        "selection": {"mode": "number", "number": "+14155550100"}, "friendly_name": "callmask-dev",
        "release_on_destroy": False})
    number = host.stub.Create(proto.CreateRequest(urn=number_urn, properties=struct(number_props)))
    assert number.id in twilio.numbers

    binding_props = with_provider(VoiceBindingProvider(), {
        "phone_number_sid": number.id, "flow_sid": "FW" + "9" * 32, "voice_url": "https://webhooks.twilio.com/v1/flow", "voice_method": "POST"})
    binding = host.stub.Create(proto.CreateRequest(urn=binding_urn, properties=struct(binding_props)))
    assert twilio.numbers[number.id]["voice_url"] == "https://webhooks.twilio.com/v1/flow"

    host.stub.Delete(proto.DeleteRequest(id=binding.id, urn=binding_urn, properties=binding.properties))
    host.stub.Delete(proto.DeleteRequest(id=number.id, urn=number_urn, properties=number.properties))
    assert twilio.numbers[number.id]["voice_url"] == "https://demo.twilio.com/welcome/voice/"
    assert number.id in twilio.numbers, "releaseNumberOnDestroy is false: the number stays"


def test_provider_errors_reach_the_engine_plainly_without_secrets(host, twilio):
    twilio.fail("POST", r"IncomingPhoneNumbers\.json$", status=400, code=21422)
    props = with_provider(PhoneNumberProvider(), {
        "selection": {"mode": "number", "number": "+14155550100"}, "friendly_name": "callmask-dev",
        "release_on_destroy": False})
    with pytest.raises(grpc.RpcError) as raised:
        host.stub.Create(proto.CreateRequest(urn=urn("PhoneNumber"), properties=struct(props)))
    details = raised.value.details()
    assert "+14155550100 is not available to buy (Twilio error 21422)" in details
    assert AUTH_TOKEN not in details


def test_the_program_and_the_provider_host_start_without_what_only_a_twilio_call_needs():
    """Every preview starts the program and this provider host: neither loads the Twilio SDK's clients or
    `requests` before an operation calls Twilio."""
    providers = ", ".join(f"callmask.providers.{name}" for name in (
        "host", "studio_flow", "phone_number", "voice_binding", "serverless", "sync", "api_key", "usage_trigger",
        "dialing_permissions", "pin_salt"))
    program = (f"import sys, callmask.line.component, {providers}; "
               "print(sorted(m for m in ('twilio.rest', 'requests', 'phonenumbers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=MAIN_DIR)
    assert done.stdout.split() == ["['phonenumbers']"], "the program validates numbers; nothing else is loaded"


@dataclass
class Engine:
    """A stand-in for the engine as its plugins see it: its address, and a health service that answers
    Unimplemented (an engine without one still counts as alive), counting the checks. It takes a program's
    log lines and root resource; as a resource monitor it implements nothing (a program takes that for a
    monitor with no optional feature, and runs until it registers its stack)."""
    address: str
    health_checks: threading.Semaphore
    server: grpc.Server


@pytest.fixture
def engine():
    health_checks = threading.Semaphore(0)

    def without_health_service(_request, context):
        health_checks.release()
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "no health service")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    empty = grpc.unary_unary_rpc_method_handler(lambda _request, _context: b"")  # an empty message of any type
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(without_health_service)}),
        grpc.method_handlers_generic_handler("pulumirpc.Engine", {
            "Log": empty, "GetRootResource": empty, "SetRootResource": empty}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield Engine(f"127.0.0.1:{port}", health_checks, server)
    server.stop(None)


# It says it runs (in its folder), then waits for its input to end, which the test closes to end it.
WAITING_PROGRAM = "import pathlib, sys\n\npathlib.Path('running').touch()\nsys.stdin.read()\n"


class LanguageHost:
    """The language host `make setup` builds (tools/pulumi/language-host), started as the engine starts it:
    in a process group of its own, with the engine's address. Its programs read its standard input."""

    def __init__(self, engine_address: str):
        path = TOOLS_BIN / "pulumi-language-python"
        assert path.exists(), "run `make setup`: it builds the language host into .tools/bin"
        environment = {key: value for key, value in os.environ.items() if key != BASE_URL_VARIABLE}
        environment.update({"PATH": f"{sys.prefix}/bin{os.pathsep}{os.environ['PATH']}",
                            "CALLMASK_ENGINE_WATCH_SECONDS": "0.01"})
        self.engine_address = engine_address
        self.process = subprocess.Popen([path, engine_address], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=environment, start_new_session=True)
        self.stub = language_pb2_grpc.LanguageRuntimeStub(
            grpc.insecure_channel(f"127.0.0.1:{int(self.process.stdout.readline())}"))

    def run(self, folder: Path, warm: bool, monitor: str = "127.0.0.1:1") -> language_pb2.RunResponse:
        """Run the program in `folder`, with the project option or without; with no monitor to register with
        (the default), it fails at once."""
        options = struct_pb2.Struct()
        options.update({"toolchain": "pip", **({"warmProviderHost": True} if warm else {})})
        return self.stub.Run(language_pb2.RunRequest(
            project="callmask", stack="dev", pwd=str(folder), monitor_address=monitor,
            info=language_pb2.ProgramInfo(root_directory=str(folder), program_directory=str(folder), entry_point=".",
                                        options=options)))

    @contextlib.contextmanager
    def waiting_program(self, folder: Path) -> Iterator[Callable[[], None]]:
        """A program run with the project option that runs until the function given is called (it ends
        every program waiting)."""
        folder.mkdir()
        (folder / "__main__.py").write_text(WAITING_PROGRAM)
        with futures.ThreadPoolExecutor(1) as pool:
            pool.submit(self.run, folder, True, self.engine_address)
            try:
                yield self.release_programs
            finally:
                self.release_programs()

    def release_programs(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()

    def stop(self, group: bool = True) -> int:
        """Interrupt it as the engine stops its plugins (its process group), or it alone."""
        (os.killpg if group else os.kill)(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=10)


def warm_hosts(engine_address: str) -> dict[int, str]:
    """The warm provider hosts forked off programs for the engine at `engine_address`: pid -> socket. A host
    has its program's command line (`dynamic-provider-host --beside SOCKET ...`), and the program is its parent."""
    started: dict[int, tuple[str, int]] = {}
    for process in Path("/proc").iterdir():
        try:
            words = (process / "cmdline").read_bytes().decode().split("\0")
            parent = int((process / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "--beside" in words and engine_address in words:
            started[int(process.name)] = (words[words.index("--beside") + 1], parent)
    return {pid: socket for pid, (socket, parent) in started.items() if parent in started}


def the_warm_host(engine_address: str) -> tuple[int, str]:
    """The one warm host for the engine, once its program has forked it off."""
    wait_until(lambda: warm_hosts(engine_address), "no program forked a warm host off")
    ((pid, socket_path),) = warm_hosts(engine_address).items()
    return pid, socket_path


def wait_until(condition: Callable[[], object], failure: str) -> None:
    """Until `condition` holds, 10 s at most; else the test fails with `failure`."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.01)


def wait_for_exit(pid: int) -> None:
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([handle], [], [], 10)[0], f"process {pid} is still running"
    finally:
        os.close(handle)


def executable(pid: int) -> str:
    return Path(f"/proc/{pid}/exe").resolve().name


def wait_until_listening(socket_path: str) -> None:
    """Until the warm host listens (it puts its socket in place once it does)."""
    wait_until(Path(socket_path).is_socket, f"the warm host does not listen on {socket_path}")


def holds(pid: int, stream) -> bool:
    """Whether the process's standard error is the pipe `stream` reads."""
    return os.stat(f"/proc/{pid}/fd/2").st_ino == os.fstat(stream.fileno()).st_ino


def test_the_language_host_serves_the_engine_and_ends_with_it(engine):
    """Its port on its first line, the engine's calls answered, and it ends when the engine stops answering
    or interrupts it."""
    started: list[LanguageHost] = []
    try:
        started.append(host := LanguageHost(engine.address))
        assert list(host.stub.GetRequiredPackages(language_pb2.GetRequiredPackagesRequest()).packages) == []
        about = host.stub.About(language_pb2.AboutRequest())
        assert Path(about.executable).name == "python3" and about.version == sys.version.split()[0]
        assert engine.health_checks.acquire(timeout=10) and engine.health_checks.acquire(timeout=10), \
            "the engine is watched"
        assert host.process.poll() is None, "checked again after an Unimplemented answer: an engine without the " \
                                            "health service still counts as alive"
        assert host.stop() == 0, "interrupted by the engine, it ends quietly"
        started.append(watched := LanguageHost(engine.address))
        engine.server.stop(None).wait()
        assert watched.process.wait(timeout=10) == 1, "the engine gone, the host ends"
    finally:
        for host in started:
            host.process.kill()
            host.process.wait()


def test_the_plugin_claims_the_provider_host_forked_off_the_program(engine, twilio, tmp_path):
    """With `warmProviderHost` (Pulumi.yaml), the program's process forks the dynamic-provider host off as it
    starts; the plugin the engine starts claims it, and it serves as the plugin would itself: in the plugin's
    folder, with its environment (here the local Twilio's address, which the language host lacks), its port
    on the plugin's output, also once the program has ended. Stopped as the engine stops it, the plugin takes
    the host with it; a second plugin finds none to claim and starts its own."""
    language_host = LanguageHost(engine.address)
    plugin = cold = None
    try:
        assert language_host.run(tmp_path, warm=False).error and warm_hosts(engine.address) == {}, \
            "without the option, no host is started"
        with language_host.waiting_program(tmp_path / "program") as end_program:
            warm_pid, socket_path = the_warm_host(engine.address)
            wait_until_listening(socket_path)  # else the plugin finds no host ready and starts its own, as it should
            plugin = Host(twilio.base_url, (str(TOOLS_BIN / "pulumi-resource-pulumi-python"), engine.address))
            assert executable(plugin.process.pid) == "pulumi-resource-pulumi-python" and not Path(socket_path).exists()
            assert Path(f"/proc/{warm_pid}/cwd").resolve() == MAIN_DIR
            assert holds(warm_pid, plugin.process.stderr) and not holds(warm_pid, language_host.process.stderr)
            plugin.stub.Configure(proto.ConfigureRequest(
                args=struct({"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN})))
            end_program()
        flow_urn, news = urn("StudioFlow"), with_provider(StudioFlowProvider(), flow_props())
        created = plugin.stub.Create(proto.CreateRequest(urn=flow_urn, properties=struct(news)))
        assert created.id in twilio.flows, "claimed, the host outlives its program"

        cold = Host(twilio.base_url, (str(TOOLS_BIN / "pulumi-resource-pulumi-python"), engine.address))
        assert executable(cold.process.pid).startswith("python"), "no host left to claim: the plugin became one"
        os.killpg(plugin.process.pid, signal.SIGINT)
        assert plugin.process.wait(timeout=10) == 0
        wait_for_exit(warm_pid)
    finally:
        for host in (plugin, cold):
            if host:
                assert AUTH_TOKEN not in host.close()
        language_host.process.kill()


@pytest.mark.parametrize("ending", ["the-engine-interrupts-the-group", "the-language-host-alone-is-interrupted",
                                    "the-program-ends"])
def test_a_provider_host_no_plugin_claims_ends_with_its_program_and_removes_its_socket(engine, tmp_path, ending):
    """Unclaimed, the host ends with its program, however that ends: the engine interrupts the language
    host's process group, or the language host alone (it kills its programs), or the program is done.
    Until then it holds the language host's standard error, which the engine reads to its end when it stops
    the language host: the engine goes on only once it is gone."""
    language_host = LanguageHost(engine.address)
    try:
        with language_host.waiting_program(tmp_path / "program") as end_programs, \
                language_host.waiting_program(tmp_path / "another"):
            warm_pid, socket_path = the_warm_host(engine.address)
            wait_until(lambda: all((tmp_path / folder / "running").exists() for folder in ("program", "another")),
                       "the two programs did not start")
            assert warm_hosts(engine.address) == {warm_pid: socket_path}, "one for the language host's life"
            wait_until_listening(socket_path)
            assert Path(socket_path).parent.stat().st_mode & 0o777 == 0o700
            assert holds(warm_pid, language_host.process.stderr)
            if ending == "the-program-ends":
                end_programs()
            else:
                assert language_host.stop(group=ending == "the-engine-interrupts-the-group") == 0
            wait_for_exit(warm_pid)
        if ending == "the-program-ends":
            assert language_host.stop() == 0
        language_host.process.stderr.read()  # at its end now: the engine, reading it so, goes on
        assert list(Path(socket_path).parent.glob(Path(socket_path).name + "*")) == [], "its socket is removed"
    finally:
        language_host.process.kill()


def test_a_stack_with_no_config_runs_its_program(tmp_path):
    """The engine sends no config for a stack that has none: the language host hands the program an empty
    map, as Pulumi's own host does."""
    (tmp_path / "Pulumi.yaml").write_text("name: bare\nruntime:\n  name: python\n  options:\n    toolchain: pip\n")
    (tmp_path / "__main__.py").write_text("import pulumi\npulumi.export('stack', pulumi.get_stack())\n")
    project = PulumiProject(tmp_path, {}, copy=False)
    project.run("stack", "init", "bare")
    preview = project.run("preview")
    assert re.search(r"Outputs:\s+stack: \"bare\"", preview.stdout), preview.stdout
