"""Twilio Serverless: the Service, Environment, Function, Function Version, Build, Deployment and
Environment Variables that run the line's PIN-check Function (`callmask:pinCheck function`).

A Function Version is immutable, and so is a Build: a change of code or PINs uploads a new version,
builds it and deploys the build; the flow, which only knows the Environment's URL, is not touched. Every
create finds again what an earlier attempt made (by unique name, friendly name, content or build) after
a lost answer. The Service's children are created with `deleted_with` the Service: removing the line's
Function deletes the Service, which takes everything in it along.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult
from twilio.base.exceptions import TwilioRestException

from callmask.function import pin_function
from callmask.providers.twilio_provider import (
    DetailedDiff,
    changed_inputs,
    replacing,
    required_text,
    ProviderError,
    TwilioProvider,
    create_once,
    is_unknown,
    twilio_operation,
    unless_gone,
)
from callmask.twilio import twilio_api

UPLOAD_HOST = "https://serverless-upload.twilio.com"
BUILD_TIMEOUT_VARIABLE = "CALLMASK_BUILD_TIMEOUT"
DEFAULT_BUILD_TIMEOUT_SECONDS = 300.0  # as the Serverless Toolkit waits
VISIBILITIES = ("public", "protected")  # a Function cannot be private


# ---- Service ----
class ServiceProvider(TwilioProvider):
    """The line's Service: no credentials in its Functions' context, not editable in the Console."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        name = news.get("unique_name")
        failures = [] if isinstance(name, str) and 0 < len(name) <= 50 and name.replace("-", "").isalnum() else [
            CheckFailure("unique_name", "unique_name must be 1 to 50 letters, digits or '-' (it becomes the domain)")]
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_inputs(olds, news, ("unique_name",))
        changed = replaces + changed_inputs(olds, news, ("friendly_name",)) + (["drift"] if olds.get("drift") else [])
        return DetailedDiff(changed, replaces, stables=["sid"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        client, name = self.client(), props["unique_name"]
        services = client.serverless.v1.services
        with twilio_operation(f"ServerlessService {name}", "create"):
            service = create_once(f"ServerlessService {name}",
                                  lambda: next((s for s in services.stream(page_size=50) if s.unique_name == name), None),
                                  lambda: services.create(unique_name=name, friendly_name=props["friendly_name"],
                                                          include_credentials=False, ui_editable=False))
            if service.include_credentials or service.ui_editable or service.friendly_name != props["friendly_name"]:
                service = self.put_back(service.sid, props)
        return CreateResult(service.sid, self.outputs(props, service))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with twilio_operation(f"ServerlessService {news['unique_name']} ({id_})", "update"):
            return UpdateResult(self.outputs(news, self.put_back(id_, news)))

    def put_back(self, sid: str, props: dict[str, Any]):
        return self.client().serverless.v1.services(sid).update(
            friendly_name=props["friendly_name"], include_credentials=False, ui_editable=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"ServerlessService {id_}", "read"):
            service = unless_gone(client, client.serverless.v1.services(id_).fetch)
        if service is None:
            return ReadResult("", {})
        turned_on = [flag for flag in ("include_credentials", "ui_editable") if getattr(service, flag)]
        drift = f"{' and '.join(turned_on)} turned on outside callmask" if turned_on else ""
        return ReadResult(id_, {**self.outputs(props, service), "drift": drift})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Takes the Service's Environments, Functions, versions, Builds and Variables along."""
        client = self.client()
        with twilio_operation(f"ServerlessService {id_}", "delete"):
            service = client.serverless.v1.services(id_)
            unless_gone(client, service.delete, confirm=service.fetch)

    @staticmethod
    def outputs(props: dict[str, Any], service) -> dict[str, Any]:
        return {**props, "sid": service.sid, "domain_base": service.domain_base, "drift": ""}


class ServerlessService(Resource, module="twilio", name="ServerlessService"):
    sid: pulumi.Output[str]
    domain_base: pulumi.Output[str]
    drift: pulumi.Output[str]

    def __init__(self, name: str, *, unique_name: str, friendly_name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(ServiceProvider(), name, {"unique_name": unique_name, "friendly_name": friendly_name,
                                                   "sid": None, "domain_base": None, "drift": None}, opts)


# ---- what sits in the Service ----
class ServiceChildProvider(TwilioProvider):
    """A resource in one of the Service's collections: read and deleted by its SID there."""

    KIND = ""  # the resource's type name, for messages

    @staticmethod
    def collection(service):
        raise NotImplementedError

    @staticmethod
    def read_outputs(found) -> dict[str, Any]:
        """What a read adds to the inputs besides the SID."""
        return {}

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"{self.KIND} {id_}", "read"):
            found = unless_gone(client, self.collection(client.serverless.v1.services(props["service_sid"]))(id_).fetch)
        if found is None:
            return ReadResult("", {})
        return ReadResult(id_, {**props, "sid": id_, **self.read_outputs(found)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = self.client()
        with twilio_operation(f"{self.KIND} {id_}", "delete"):
            child = self.collection(client.serverless.v1.services(props["service_sid"]))(id_)
            unless_gone(client, child.delete, confirm=child.fetch)


# ---- Environment ----
class EnvironmentProvider(ServiceChildProvider):
    KIND = "ServerlessEnvironment"

    @staticmethod
    def collection(service):
        return service.environments

    @staticmethod
    def read_outputs(found) -> dict[str, Any]:
        return {"domain_name": found.domain_name}

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return required_text(news, "service_sid", "unique_name")

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return replacing(olds, news, ("service_sid", "unique_name"))

    def create(self, props: dict[str, Any]) -> CreateResult:
        environments = self.client().serverless.v1.services(props["service_sid"]).environments
        label = f"ServerlessEnvironment {props['unique_name']}"
        with twilio_operation(label, "create"):
            environment = create_once(label, lambda: find_environment(environments, props["unique_name"]),
                                      lambda: environments.create(unique_name=props["unique_name"]))
        return CreateResult(environment.sid, {**props, "sid": environment.sid, **self.read_outputs(environment)})


def find_environment(environments, unique_name: str):
    return next((e for e in environments.stream(page_size=50) if e.unique_name == unique_name), None)


class ServerlessEnvironment(Resource, module="twilio", name="ServerlessEnvironment"):
    sid: pulumi.Output[str]
    domain_name: pulumi.Output[str]

    def __init__(self, name: str, *, service_sid: pulumi.Input[str], unique_name: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(EnvironmentProvider(), name, {"service_sid": service_sid, "unique_name": unique_name,
                                                       "sid": None, "domain_name": None}, opts)


# ---- Function ----
class FunctionProvider(ServiceChildProvider):
    KIND = "ServerlessFunction"

    @staticmethod
    def collection(service):
        return service.functions

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return required_text(news, "service_sid", "friendly_name")

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return replacing(olds, news, ("service_sid", "friendly_name"))

    def create(self, props: dict[str, Any]) -> CreateResult:
        functions = self.client().serverless.v1.services(props["service_sid"]).functions
        name = props["friendly_name"]
        with twilio_operation(f"ServerlessFunction {name}", "create"):
            function = create_once(f"ServerlessFunction {name}",
                                   lambda: next((f for f in functions.stream(page_size=50) if f.friendly_name == name), None),
                                   lambda: functions.create(friendly_name=name))
        return CreateResult(function.sid, {**props, "sid": function.sid})


class ServerlessFunction(Resource, module="twilio", name="ServerlessFunction"):
    sid: pulumi.Output[str]

    def __init__(self, name: str, *, service_sid: pulumi.Input[str], friendly_name: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(FunctionProvider(), name, {"service_sid": service_sid, "friendly_name": friendly_name,
                                                    "sid": None}, opts)


# ---- Function Version: the upload ----
VERSION_INPUTS = ("service_sid", "function_sid", "path", "visibility", "source", "values", "labels", "pins", "salt")


class FunctionVersionProvider(TwilioProvider):
    """The PIN-check code with the line's digests, uploaded. `source` (the committed code), `values` (its
    settings, JSON text) and `labels` are readable in a preview; `pins` and `salt` are secrets, and the
    digests are made from them here, inside the provider."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if news.get("visibility") not in VISIBILITIES:
            failures.append(CheckFailure("visibility", f"visibility must be one of {', '.join(VISIBILITIES)} "
                                         "(a Function cannot be private)"))
        pins = news.get("pins")
        if not is_unknown(pins) and (not isinstance(pins, dict) or not pins):
            failures.append(CheckFailure("pins", "pins must be a non-empty map of label to PIN"))
        source = news.get("source")
        if isinstance(source, str) and source.count(pin_function.LINE_MARKER) != 1:
            failures.append(CheckFailure("source", f"the code must hold `{pin_function.LINE_MARKER}` exactly once"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return replacing(olds, news, VERSION_INPUTS)  # a version is immutable

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self.client()
        code = pin_function.deployed_code(props["source"], json.loads(props["values"]), props["pins"], props["salt"])
        label = f"FunctionVersion {props['path']}"
        with twilio_operation(label, "create", secrets_of(props)):
            versions = client.serverless.v1.services(props["service_sid"]).functions(props["function_sid"])

            def find():
                return next((v for v in versions.function_versions.stream(page_size=50) if v.path == props["path"]
                             and v.visibility == props["visibility"]
                             and versions.function_versions(v.sid).function_version_content().fetch().content == code),
                            None)

            version = create_once(label, find, lambda: upload(client, props, code))
        return CreateResult(version.sid, {**props, "sid": version.sid, "content_sha256": _sha256(code)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"FunctionVersion {id_}", "read"):
            versions = client.serverless.v1.services(props["service_sid"]).functions(props["function_sid"])
            content = unless_gone(client, versions.function_versions(id_).function_version_content().fetch)
        if content is None:
            return ReadResult("", {})
        # Versions never change; this one was made from these inputs.
        return ReadResult(id_, {**props, "sid": id_, "content_sha256": _sha256(content.content or "")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Twilio has no delete for a Function Version: it deletes versions that are in no Build after 30
        days."""


def secrets_of(props: dict[str, Any]) -> list[str]:
    pins = props.get("pins")
    return [*(pins.values() if isinstance(pins, dict) else []), str(props.get("salt") or "")]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Uploaded:
    def __init__(self, answer: dict[str, Any]):
        self.sid, self.path, self.visibility = answer["sid"], answer["path"], answer["visibility"]


def upload(client, props: dict[str, Any], code: str) -> _Uploaded:
    """POST the code as multipart form data to the upload host (the twilio SDK has no call for it), with
    the SDK client's base URL, timeout, credentials and 429 retries."""
    import requests

    from callmask.twilio.twilio_http import CallmaskHttpClient

    http = client.http_client
    url = f"{UPLOAD_HOST}/v1/Services/{props['service_sid']}/Functions/{props['function_sid']}/Versions"
    url = http.redirect(url) if isinstance(http, CallmaskHttpClient) else url
    attempts = getattr(http, "attempts", 1)
    for attempt in range(1, attempts + 1):
        try:
            response = requests.post(
                url, auth=(client.username, client.password), timeout=getattr(http, "timeout", None),
                data={"Path": props["path"], "Visibility": props["visibility"]},
                files={"Content": (props["path"].rsplit("/", 1)[-1] + ".js", code.encode(), "application/javascript")})
        except requests.RequestException as error:
            raise twilio_api.TwilioRequestFailed(f"POST {url} got no answer from Twilio: {type(error).__name__}") from None
        if response.status_code == 429 and attempt < attempts:
            http.pause(attempt, response.headers.get("Retry-After"))
            continue
        break
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 201:
        raise TwilioRestException(response.status_code, url, str(answer.get("message", response.reason)),
                                  answer.get("code"), "POST")
    return _Uploaded(answer)


class FunctionVersion(Resource, module="twilio", name="FunctionVersion"):
    """Outputs: `sid`, `content_sha256` (of the uploaded code, which holds digests, never a PIN)."""

    sid: pulumi.Output[str]
    content_sha256: pulumi.Output[str]

    def __init__(self, name: str, *, service_sid: pulumi.Input[str], function_sid: pulumi.Input[str], path: str,
                 visibility: str, source: str, values: str, labels: list[str], pins: pulumi.Input[dict[str, str]],
                 salt: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        """`labels`: the PINs' labels, readable (a preview shows a PIN revoked by name)."""
        props = {"service_sid": service_sid, "function_sid": function_sid, "path": path, "visibility": visibility,
                 "source": source, "values": values, "labels": labels, "pins": pulumi.Output.secret(pins),
                 "salt": pulumi.Output.secret(salt), "sid": None, "content_sha256": None}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["pins", "salt"]))
        super().__init__(FunctionVersionProvider(), name, props, opts)


# ---- Build ----
class BuildFailed(ProviderError):
    pass


RUNTIMES = ("node18", "node20", "node22")  # the runtimes Twilio still builds with


class BuildProvider(ServiceChildProvider):
    KIND = "ServerlessBuild"

    @staticmethod
    def collection(service):
        return service.builds

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if news.get("runtime") not in RUNTIMES:
            failures.append(CheckFailure("runtime", f"runtime must be one of {', '.join(RUNTIMES)}"))
        versions = news.get("function_versions")
        if not is_unknown(versions) and (not isinstance(versions, list) or not versions):
            failures.append(CheckFailure("function_versions", "a build needs at least one function version"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return replacing(olds, news, ("service_sid", "function_versions", "dependencies", "runtime"))

    def create(self, props: dict[str, Any]) -> CreateResult:
        builds = self.client().serverless.v1.services(props["service_sid"]).builds
        label = f"ServerlessBuild of {', '.join(props['function_versions'])}"
        wanted = sorted(props["function_versions"])

        def find():  # a build of these versions that has not failed
            return next((b for b in builds.stream(page_size=50) if b.status != "failed"
                         and sorted(v.get("sid") for v in b.function_versions or []) == wanted), None)

        with twilio_operation(label, "create"):
            build = create_once(label, find, lambda: builds.create(
                function_versions=props["function_versions"], dependencies=props["dependencies"],
                runtime=props["runtime"]))
            wait_for_build(builds, build.sid, label)
        return CreateResult(build.sid, {**props, "sid": build.sid})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """A build replaced by a newer one; one an Environment still runs is left for the Service's delete."""
        service = self.client().serverless.v1.services(props["service_sid"])
        with twilio_operation(f"ServerlessBuild {id_}", "delete"):
            if any(e.build_sid == id_ for e in service.environments.stream(page_size=50)):
                return
        super().delete(id_, props)


def wait_for_build(builds, sid: str, label: str) -> None:
    """Polls the build's status (Twilio suggests each second) until `completed`; `failed`, or no answer
    within CALLMASK_BUILD_TIMEOUT seconds (default 300), fails the deploy before anything uses the build."""
    limit = twilio_api.seconds_setting(BUILD_TIMEOUT_VARIABLE, DEFAULT_BUILD_TIMEOUT_SECONDS)
    interval = 2 * twilio_api.backoff_seconds()
    deadline = time.monotonic() + limit
    while True:
        status = builds(sid).build_status().fetch().status
        if status == "completed":
            return
        if status == "failed":
            raise BuildFailed(f"{label}: build {sid} failed on Twilio (see the Console's Functions > Services > "
                              "Deployments for the log). Nothing was deployed: the line still runs the previous "
                              "build. Fix the code, then run `pulumi up` again.")
        if time.monotonic() >= deadline:
            raise BuildFailed(f"{label}: build {sid} is still {status} after {limit:g} s "
                              f"({BUILD_TIMEOUT_VARIABLE}). Nothing was deployed. Run `pulumi up` again: it "
                              "adopts the build if it completes.")
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))


class ServerlessBuild(Resource, module="twilio", name="ServerlessBuild"):
    sid: pulumi.Output[str]

    def __init__(self, name: str, *, service_sid: pulumi.Input[str], function_versions: pulumi.Input[list[str]],
                 dependencies: str, runtime: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(BuildProvider(), name, {"service_sid": service_sid, "function_versions": function_versions,
                                                 "dependencies": dependencies, "runtime": runtime, "sid": None}, opts)


# ---- Deployment ----
class DeploymentProvider(TwilioProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return required_text(news, "service_sid", "environment_sid", "build_sid")

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_inputs(olds, news, ("service_sid", "environment_sid", "build_sid"))
        changed = replaces + (["drift"] if olds.get("drift") else [])
        return DetailedDiff(changed, replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        deployment = self.deploy(props)
        return CreateResult(deployment.sid, {**props, "sid": deployment.sid, "drift": ""})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Someone deployed another build: deploy the stack's build again."""
        return UpdateResult({**news, "sid": self.deploy(news, again=True).sid, "drift": ""})

    def deploy(self, props: dict[str, Any], again: bool = False):
        service = self.client().serverless.v1.services(props["service_sid"])
        environment = service.environments(props["environment_sid"])
        label = f"ServerlessDeployment of build {props['build_sid']}"

        def find():  # the environment already runs the build: the deployment that put it there
            if environment.fetch().build_sid != props["build_sid"]:
                return None
            return next((d for d in environment.deployments.stream(page_size=50)
                         if d.build_sid == props["build_sid"]), None)

        with twilio_operation(label, "create"):
            if again:
                return environment.deployments.create(build_sid=props["build_sid"])
            return create_once(label, find, lambda: environment.deployments.create(build_sid=props["build_sid"]))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"ServerlessDeployment {id_}", "read"):
            environment = unless_gone(client, client.serverless.v1.services(props["service_sid"])
                                      .environments(props["environment_sid"]).fetch)
        if environment is None:
            return ReadResult("", {})
        drift = "" if environment.build_sid == props["build_sid"] else (
            f"the environment runs build {environment.build_sid}, deployed outside callmask (callmask deployed "
            f"{props['build_sid']})")
        return ReadResult(id_, {**props, "sid": id_, "drift": drift})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Twilio keeps deployments as history (no delete); the Environment goes with the Service."""


class ServerlessDeployment(Resource, module="twilio", name="ServerlessDeployment"):
    sid: pulumi.Output[str]
    drift: pulumi.Output[str]

    def __init__(self, name: str, *, service_sid: pulumi.Input[str], environment_sid: pulumi.Input[str],
                 build_sid: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        super().__init__(DeploymentProvider(), name, {"service_sid": service_sid, "environment_sid": environment_sid,
                                                      "build_sid": build_sid, "sid": None, "drift": None}, opts)


# ---- Environment Variables ----
MAX_VARIABLE_BYTES = 450  # Twilio's limit for one value
MAX_VARIABLES_BYTES = 2048  # all of them: the Function's context (variables among them) must stay under ~3 KB


class VariablesProvider(TwilioProvider):
    """The Environment's variables the stack sets (secret values); other keys are left alone, and a key
    the stack stops setting is deleted."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        variables = news.get("variables")
        if is_unknown(variables):
            return CheckResult(news, [])
        if not isinstance(variables, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in variables.items()):
            return CheckResult(news, [CheckFailure("variables", "variables must be a map of text to text")])
        failures = [CheckFailure("variables", f"{key}: a value is at most {MAX_VARIABLE_BYTES} bytes")
                    for key, value in variables.items() if len(value.encode()) > MAX_VARIABLE_BYTES]
        if sum(len(k.encode()) + len(v.encode()) for k, v in variables.items()) > MAX_VARIABLES_BYTES:
            failures.append(CheckFailure("variables", f"the variables take more than {MAX_VARIABLES_BYTES} bytes: "
                                         "the Function's context would pass Twilio's 3 KB limit (error 82006)"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_inputs(olds, news, ("service_sid", "environment_sid"))
        changed = replaces + changed_inputs(olds, news, ("variables",)) + (["drift"] if olds.get("drift") else [])
        return DetailedDiff(changed, replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        self.apply(props, {})
        return CreateResult(f"{props['environment_sid']}/variables", {**props, "drift": ""})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.apply(news, olds.get("variables") or {})
        return UpdateResult({**news, "drift": ""})

    def apply(self, props: dict[str, Any], previous: dict[str, str]) -> None:
        """Idempotent: each key is found by name before it is created."""
        client = self.client()
        variables = environment_variables(client, props)
        wanted: dict[str, str] = props["variables"]
        with twilio_operation("EnvironmentVariables", "set", wanted.values()):
            live = {v.key: v for v in variables.stream(page_size=50)}
            for key, value in wanted.items():
                if key not in live:
                    create_once(f"EnvironmentVariables {key}",
                                lambda: next((v for v in variables.stream(page_size=50) if v.key == key), None),
                                lambda: variables.create(key=key, value=value), looked=True)
                elif live[key].value != value:
                    variables(live[key].sid).update(value=value)
            for key in set(previous) - set(wanted):
                if key in live:
                    unless_gone(client, variables(live[key].sid).delete)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation("EnvironmentVariables", "read", (props.get("variables") or {}).values()):
            variables = environment_variables(client, props)
            live = unless_gone(client, lambda: {v.key: v.value for v in variables.stream(page_size=50)})
        if live is None:
            return ReadResult("", {})
        changed = sorted(key for key, value in (props.get("variables") or {}).items() if live.get(key) != value)
        drift = f"changed outside callmask: {', '.join(changed)}" if changed else ""  # names only: values are secret
        return ReadResult(id_, {**props, "drift": drift})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = self.client()
        with twilio_operation("EnvironmentVariables", "delete"):
            variables = environment_variables(client, props)
            for variable in unless_gone(client, lambda: list(variables.stream(page_size=50))) or []:
                if variable.key in (props.get("variables") or {}):
                    unless_gone(client, variables(variable.sid).delete)


def environment_variables(client, props: dict[str, Any]):
    return client.serverless.v1.services(props["service_sid"]).environments(props["environment_sid"]).variables


class EnvironmentVariables(Resource, module="twilio", name="EnvironmentVariables"):
    drift: pulumi.Output[str]

    def __init__(self, name: str, *, service_sid: pulumi.Input[str], environment_sid: pulumi.Input[str],
                 variables: pulumi.Input[dict[str, str]], opts: pulumi.ResourceOptions | None = None):
        props = {"service_sid": service_sid, "environment_sid": environment_sid,
                 "variables": pulumi.Output.secret(variables), "drift": None}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["variables"]))
        super().__init__(VariablesProvider(), name, props, opts)

