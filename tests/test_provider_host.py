"""The providers driven through callmask's provider host (the SDK's `python -m pulumi.dynamic` with one-line errors and detailed diffs) over gRPC, exactly as the Pulumi engine does:
the host runs in the project's `main` directory, unpickles each provider from `__provider`, gets the
stack config through Configure, and answers Check, Diff, Create, Read, Update and Delete."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from callmask.providers.phone_number import PhoneNumberProvider
from callmask.providers.studio_flow import StudioFlowProvider
from callmask.providers.voice_binding import VoiceBindingProvider
from callmask.twilio.twilio_api import BASE_URL_VARIABLE
from conftest import TEST_PINS
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


class Host:
    def __init__(self, base_url: str):
        env = {key: value for key, value in os.environ.items() if not key.startswith("TWILIO_")}
        env.update({BASE_URL_VARIABLE: base_url, "PULUMI_PROJECT": "callmask"})
        self.process = subprocess.Popen([sys.executable, "-m", "callmask.providers.host"], cwd=MAIN_DIR, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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


def test_the_language_host_serves_the_engine_and_ends_with_it():
    """The language host `make setup` builds (tools/pulumi/language-host): its port on its first line, the
    engine's calls answered, and it ends when the engine stops answering or interrupts it."""
    language_host = TOOLS_BIN / "pulumi-language-python"
    assert language_host.exists(), "run `make setup`: it builds the language host into .tools/bin"
    health_checks = threading.Semaphore(0)

    def without_health_service(_request, context):
        health_checks.release()
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "no health service")

    engine = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(without_health_service)}),))
    engine_port = engine.add_insecure_port("127.0.0.1:0")
    engine.start()
    environment = {**os.environ, "PATH": f"{sys.prefix}/bin{os.pathsep}{os.environ['PATH']}",
                   "CALLMASK_ENGINE_WATCH_SECONDS": "0.01"}
    started: list[subprocess.Popen] = []

    def start_host() -> subprocess.Popen:
        started.append(subprocess.Popen([language_host, f"127.0.0.1:{engine_port}"], stdout=subprocess.PIPE,
                                        text=True, env=environment))
        return started[-1]

    try:
        host = start_host()
        port = int(host.stdout.readline())
        stub = language_pb2_grpc.LanguageRuntimeStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        assert list(stub.GetRequiredPackages(language_pb2.GetRequiredPackagesRequest()).packages) == []
        about = stub.About(language_pb2.AboutRequest())
        assert Path(about.executable).name == "python3" and about.version == sys.version.split()[0]
        assert health_checks.acquire(timeout=10) and health_checks.acquire(timeout=10), "the engine is watched"
        assert host.poll() is None, "checked again after an Unimplemented answer: an engine without the health " \
                                    "service still counts as alive"
        host.send_signal(signal.SIGINT)
        assert host.wait(timeout=10) == 0, "interrupted by the engine, it ends quietly"
        watched = start_host()
        assert int(watched.stdout.readline()) > 0
        engine.stop(None).wait()
        assert watched.wait(timeout=10) == 1, "the engine gone, the host ends"
    finally:
        for process in started:
            process.kill()
            process.wait()
        engine.stop(None)


def test_a_stack_with_no_config_runs_its_program(tmp_path):
    """The engine sends no config for a stack that has none: the language host hands the program an empty
    map, as Pulumi's own host does."""
    (tmp_path / "Pulumi.yaml").write_text("name: bare\nruntime:\n  name: python\n  options:\n    toolchain: pip\n")
    (tmp_path / "__main__.py").write_text("import pulumi\npulumi.export('stack', pulumi.get_stack())\n")
    project = PulumiProject(tmp_path, {}, copy=False)
    project.run("stack", "init", "bare")
    preview = project.run("preview")
    assert re.search(r"Outputs:\s+stack: \"bare\"", preview.stdout), preview.stdout
