"""The local Twilio's Serverless API (Services, Environments, Functions and their versions, Builds,
Deployments, Variables), checked against `twilio_serverless_v1.json` like every other route, and the
Function Version upload, which is outside the spec and the SDK and gets a strict check of its own.
A deployed Function answers calls: `place_call` runs its uploaded code under Node.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from werkzeug.wrappers import Request, Response

from callmask.twilio.twilio_api import BASE_URL_VARIABLE

SERVERLESS_HOST = "https://serverless.twilio.com"
UPLOAD_HOST = "https://serverless-upload.twilio.com"
UPLOAD_PATH = re.compile(r"/v1/Services/(ZS\w+)/Functions/(ZH\w+)/Versions")
UPLOAD_FIELDS = {"Path", "Visibility"}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
SERVED = "Serverless Services with their environments, functions, function versions (and the upload), builds, " \
         "deployments and variables"


@dataclass
class LocalServerless:
    """Mixed into LocalTwilio, whose lock, SIDs and JSON answers it uses."""

    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    build_outcome: str = "completed"  # what every new build ends as: completed or failed
    build_polls: int = 1  # status reads that still say `building`
    uploads: list[dict[str, Any]] = field(default_factory=list)  # every accepted upload, as sent

    def serverless_routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        service, environment = r"/v1/Services/(ZS\w+|[\w-]+)", r"/v1/Services/(ZS\w+)/Environments/(ZE\w+)"
        return [
            ("GET", r"/v1/Services", self._list_services),
            ("POST", r"/v1/Services", self._create_service),
            ("GET", service, self._fetch_service),
            ("POST", service, self._update_service),
            ("DELETE", service, self._delete_service),
            ("GET", r"/v1/Services/(ZS\w+)/Environments", self._list_environments),
            ("POST", r"/v1/Services/(ZS\w+)/Environments", self._create_environment),
            ("GET", environment, self._fetch_child("environments", self._environment)),
            ("DELETE", environment, self._delete_child("environments")),
            ("GET", r"/v1/Services/(ZS\w+)/Functions", self._list_functions),
            ("POST", r"/v1/Services/(ZS\w+)/Functions", self._create_function),
            ("GET", r"/v1/Services/(ZS\w+)/Functions/(ZH\w+)", self._fetch_child("functions", self._function)),
            ("DELETE", r"/v1/Services/(ZS\w+)/Functions/(ZH\w+)", self._delete_child("functions")),
            ("GET", r"/v1/Services/(ZS\w+)/Functions/(ZH\w+)/Versions", self._list_versions),
            ("POST", UPLOAD_PATH.pattern, self._upload_version),
            ("GET", r"/v1/Services/(ZS\w+)/Functions/(ZH\w+)/Versions/(ZN\w+)", self._fetch_version),
            ("GET", r"/v1/Services/(ZS\w+)/Functions/(ZH\w+)/Versions/(ZN\w+)/Content", self._version_content),
            ("GET", r"/v1/Services/(ZS\w+)/Builds", self._list_builds),
            ("POST", r"/v1/Services/(ZS\w+)/Builds", self._create_build),
            ("GET", r"/v1/Services/(ZS\w+)/Builds/(ZB\w+)", self._fetch_child("builds", self._build)),
            ("DELETE", r"/v1/Services/(ZS\w+)/Builds/(ZB\w+)", self._delete_child("builds", self._build_in_use)),
            ("GET", r"/v1/Services/(ZS\w+)/Builds/(ZB\w+)/Status", self._build_status),
            ("GET", environment + "/Deployments", self._list_deployments),
            ("POST", environment + "/Deployments", self._create_deployment),
            ("GET", environment + r"/Variables", self._list_variables),
            ("POST", environment + r"/Variables", self._create_variable),
            ("POST", environment + r"/Variables/(ZV\w+)", self._update_variable),
            ("DELETE", environment + r"/Variables/(ZV\w+)", self._delete_variable),
        ]

    # ---- what tests and `place_call` use ----
    def deploy_in_console(self, service_sid: str, code: str) -> str:
        """Someone uploads other code for the service's Function and deploys it outside callmask."""
        service = self.services[service_sid]
        function_sid, function = next(iter(service["functions"].items()))
        old = next(iter(function["versions"].values()))
        version_sid = self._new_version(service_sid, function_sid, old["path"], old["visibility"], code)
        build_sid = self._new_build(service_sid, [version_sid], "[]", "node22", status="completed")
        for environment_sid in service["environments"]:
            self._deploy(service_sid, environment_sid, build_sid)
        return build_sid

    def set_variable_in_console(self, service_sid: str, key: str, value: str) -> None:
        for environment in self.services[service_sid]["environments"].values():
            for variable in environment["variables"].values():
                if variable["key"] == key:
                    variable["value"] = value

    def deployed_function(self, url: str) -> tuple[str, dict[str, str]] | None:
        """(the code, the Environment's variables) that answer a Function URL, or None."""
        match = re.fullmatch(r"https://([^/?]+)(/[^?]*)(\?.*)?", url)
        for service in self.services.values() if match else ():
            for environment in service["environments"].values():
                build = service["builds"].get(environment["build_sid"] or "")
                if environment["domain_name"] != match.group(1) or build is None:
                    continue
                for version_sid in build["function_versions"]:
                    version = self._version_anywhere(service, version_sid)
                    if version and version["path"] == match.group(2) and version["visibility"] != "private":
                        return version["content"], {v["key"]: v["value"] for v in environment["variables"].values()}
        return None

    # ---- Services ----
    def _service_of(self, key: str) -> tuple[str, dict[str, Any]] | None:
        return next(((s, service) for s, service in self.services.items() if key in (s, service["unique_name"])), None)

    def _list_services(self, request, form) -> Response:
        return self._json(200, self._studio_page("services", request, [self._service(s) for s in self.services],
                                                 SERVERLESS_HOST))

    def _create_service(self, request, form) -> Response:
        if self._service_of(form["UniqueName"]):
            return self._error(409, 20409, f"Service with UniqueName {form['UniqueName']} already exists")
        service_sid = self._sid("ZS")
        self.services[service_sid] = {
            "sid": service_sid, "unique_name": form["UniqueName"], "friendly_name": form["FriendlyName"],
            "include_credentials": form.get("IncludeCredentials", "true") == "true",
            "ui_editable": form.get("UiEditable", "false") == "true",
            "domain_base": f"{form['UniqueName']}-{len(self.services) + 1000}", "environments": {}, "functions": {},
            "builds": {}, "date": self._now()}
        return self._json(201, self._service(service_sid))

    def _fetch_service(self, request, form, key) -> Response:
        found = self._service_of(key)
        return self._json(200, self._service(found[0])) if found else self._not_found(request)

    def _update_service(self, request, form, key) -> Response:
        found = self._service_of(key)
        if not found:
            return self._not_found(request)
        service = found[1]
        for name, key_in_form in (("include_credentials", "IncludeCredentials"), ("ui_editable", "UiEditable")):
            if key_in_form in form:
                service[name] = form[key_in_form] == "true"
        service["friendly_name"] = form.get("FriendlyName", service["friendly_name"])
        return self._json(200, self._service(found[0]))

    def _delete_service(self, request, form, key) -> Response:
        found = self._service_of(key)
        if not found:
            return self._not_found(request)
        del self.services[found[0]]
        return Response(status=204)

    def _service(self, service_sid: str) -> dict[str, Any]:
        service = self.services[service_sid]
        url = f"{SERVERLESS_HOST}/v1/Services/{service_sid}"
        return {**self._common(service, url), "friendly_name": service["friendly_name"],
                "unique_name": service["unique_name"], "include_credentials": service["include_credentials"],
                "ui_editable": service["ui_editable"], "domain_base": service["domain_base"],
                "links": {name: f"{url}/{name.capitalize()}" for name in ("environments", "functions", "assets", "builds")}}

    # ---- what sits in a Service: environments, functions, builds ----
    def _child(self, service_sid: str, kind: str, child_sid: str) -> dict[str, Any] | None:
        return self.services.get(service_sid, {}).get(kind, {}).get(child_sid)

    def _fetch_child(self, kind: str, shown: Callable[[str, str], dict[str, Any]]) -> Callable[..., Response]:
        def fetch(request, form, service_sid, child_sid) -> Response:
            if not self._child(service_sid, kind, child_sid):
                return self._not_found(request)
            return self._json(200, shown(service_sid, child_sid))
        return fetch

    def _delete_child(self, kind: str, refusal: Callable[[str, str], Response | None] = lambda *_: None
                      ) -> Callable[..., Response]:
        def delete(request, form, service_sid, child_sid) -> Response:
            if not self._child(service_sid, kind, child_sid):
                return self._not_found(request)
            if refused := refusal(service_sid, child_sid):
                return refused
            del self.services[service_sid][kind][child_sid]
            return Response(status=204)
        return delete

    # ---- Environments ----
    def _list_environments(self, request, form, service_sid) -> Response:
        if service_sid not in self.services:
            return self._not_found(request)
        items = [self._environment(service_sid, e) for e in self.services[service_sid]["environments"]]
        return self._json(200, self._studio_page("environments", request, items, SERVERLESS_HOST))

    def _create_environment(self, request, form, service_sid) -> Response:
        service = self.services.get(service_sid)
        if service is None:
            return self._not_found(request)
        if any(e["unique_name"] == form["UniqueName"] for e in service["environments"].values()):
            return self._error(409, 20409, f"Environment with UniqueName {form['UniqueName']} already exists")
        environment_sid = self._sid("ZE")
        suffix = f"-{form['DomainSuffix']}" if form.get("DomainSuffix") else ""
        service["environments"][environment_sid] = {
            "sid": environment_sid, "unique_name": form["UniqueName"], "domain_suffix": form.get("DomainSuffix"),
            "domain_name": f"{service['domain_base']}{suffix}.twil.io", "build_sid": None, "deployments": {},
            "variables": {}, "date": self._now()}
        return self._json(201, self._environment(service_sid, environment_sid))

    def _environment(self, service_sid: str, environment_sid: str) -> dict[str, Any]:
        environment = self._child(service_sid, "environments", environment_sid)
        url = f"{SERVERLESS_HOST}/v1/Services/{service_sid}/Environments/{environment_sid}"
        return {**self._common(environment, url), "service_sid": service_sid, "build_sid": environment["build_sid"],
                "unique_name": environment["unique_name"], "domain_suffix": environment["domain_suffix"],
                "domain_name": environment["domain_name"],
                "links": {name: f"{url}/{name.capitalize()}" for name in ("variables", "deployments", "logs")}}

    # ---- Functions and their versions ----
    def _list_functions(self, request, form, service_sid) -> Response:
        if service_sid not in self.services:
            return self._not_found(request)
        items = [self._function(service_sid, f) for f in self.services[service_sid]["functions"]]
        return self._json(200, self._studio_page("functions", request, items, SERVERLESS_HOST))

    def _create_function(self, request, form, service_sid) -> Response:
        service = self.services.get(service_sid)
        if service is None:
            return self._not_found(request)
        function_sid = self._sid("ZH")
        service["functions"][function_sid] = {"sid": function_sid, "friendly_name": form["FriendlyName"],
                                              "versions": {}, "date": self._now()}
        return self._json(201, self._function(service_sid, function_sid))

    def _function(self, service_sid: str, function_sid: str) -> dict[str, Any]:
        function = self._child(service_sid, "functions", function_sid)
        url = f"{SERVERLESS_HOST}/v1/Services/{service_sid}/Functions/{function_sid}"
        return {**self._common(function, url), "service_sid": service_sid, "friendly_name": function["friendly_name"],
                "links": {"function_versions": f"{url}/Versions"}}

    def _list_versions(self, request, form, service_sid, function_sid) -> Response:
        function = self._child(service_sid, "functions", function_sid)
        if function is None:
            return self._not_found(request)
        items = [self._version(service_sid, function_sid, v) for v in reversed(function["versions"])]
        return self._json(200, self._studio_page("function_versions", request, items, SERVERLESS_HOST))

    def _upload_version(self, request, form, service_sid, function_sid) -> Response:
        """The upload host's endpoint, outside the OpenAPI spec: checked here, field by field, as Twilio
        documents it (multipart form data: Content as a file, Path, Visibility)."""
        if problem := upload_problem(request):
            return self._error(400, 20001, f"Invalid upload: {problem}")
        if self._child(service_sid, "functions", function_sid) is None:
            return self._not_found(request)
        path = form["Path"] if form["Path"].startswith("/") else "/" + form["Path"]
        code = request.files["Content"].read().decode("utf-8")
        self.uploads.append({"path": path, "visibility": form["Visibility"], "content": code,
                             "content_type": request.files["Content"].mimetype})
        version_sid = self._new_version(service_sid, function_sid, path, form["Visibility"], code)
        return self._json(201, self._version(service_sid, function_sid, version_sid))

    def _new_version(self, service_sid: str, function_sid: str, path: str, visibility: str, code: str) -> str:
        version_sid = self._sid("ZN")
        self._child(service_sid, "functions", function_sid)["versions"][version_sid] = {
            "sid": version_sid, "path": path, "visibility": visibility, "content": code, "date": self._now()}
        return version_sid

    def _version_anywhere(self, service: dict[str, Any], version_sid: str) -> dict[str, Any] | None:
        return next((f["versions"][version_sid] for f in service["functions"].values() if version_sid in f["versions"]),
                    None)

    def _fetch_version(self, request, form, service_sid, function_sid, version_sid) -> Response:
        if version_sid not in (self._child(service_sid, "functions", function_sid) or {}).get("versions", {}):
            return self._not_found(request)
        return self._json(200, self._version(service_sid, function_sid, version_sid))

    def _version_content(self, request, form, service_sid, function_sid, version_sid) -> Response:
        version = (self._child(service_sid, "functions", function_sid) or {}).get("versions", {}).get(version_sid)
        if version is None:
            return self._not_found(request)
        url = f"{SERVERLESS_HOST}/v1/Services/{service_sid}/Functions/{function_sid}/Versions/{version_sid}/Content"
        return self._json(200, {"sid": version_sid, "account_sid": self.account(), "service_sid": service_sid,
                                "function_sid": function_sid, "content": version["content"], "url": url})

    def _version(self, service_sid: str, function_sid: str, version_sid: str) -> dict[str, Any]:
        version = self._child(service_sid, "functions", function_sid)["versions"][version_sid]
        url = f"{SERVERLESS_HOST}/v1/Services/{service_sid}/Functions/{function_sid}/Versions/{version_sid}"
        common = self._common(version, url)
        del common["date_updated"]
        return {**common, "service_sid": service_sid, "function_sid": function_sid, "path": version["path"],
                "visibility": version["visibility"], "links": {"function_version_content": f"{url}/Content"}}

    # ---- Builds ----
    def _list_builds(self, request, form, service_sid) -> Response:
        if service_sid not in self.services:
            return self._not_found(request)
        items = [self._build(service_sid, b) for b in reversed(self.services[service_sid]["builds"])]
        return self._json(200, self._studio_page("builds", request, items, SERVERLESS_HOST))

    def _create_build(self, request, form, service_sid) -> Response:
        service = self.services.get(service_sid)
        if service is None:
            return self._not_found(request)
        versions = form.getlist("FunctionVersions")
        if not versions or any(self._version_anywhere(service, v) is None for v in versions):
            return self._error(400, 20001, "FunctionVersions must name versions of this Service's Functions")
        try:
            dependencies = json.loads(form.get("Dependencies", "[]"))
        except json.JSONDecodeError:
            return self._error(400, 20001, "Dependencies must be a JSON list of {name, version}")
        if not isinstance(dependencies, list) or not all(isinstance(d, dict) and set(d) == {"name", "version"}
                                                         for d in dependencies):
            return self._error(400, 20001, "Dependencies must be a JSON list of {name, version}")
        build_sid = self._new_build(service_sid, versions, form.get("Dependencies", "[]"), form.get("Runtime", "node22"))
        return self._json(201, self._build(service_sid, build_sid))

    def _new_build(self, service_sid: str, versions: list[str], dependencies: str, runtime: str,
                   status: str = "building") -> str:
        build_sid = self._sid("ZB")
        self.services[service_sid]["builds"][build_sid] = {
            "sid": build_sid, "function_versions": versions, "dependencies": json.loads(dependencies),
            "runtime": runtime, "status": status, "polls_left": self.build_polls, "date": self._now()}
        return build_sid

    def _build_in_use(self, service_sid: str, build_sid: str) -> Response | None:
        if any(e["build_sid"] == build_sid for e in self.services[service_sid]["environments"].values()):
            return self._error(409, 20409, f"Build {build_sid} is deployed to an Environment")
        return None

    def _build_status(self, request, form, service_sid, build_sid) -> Response:
        build = self._child(service_sid, "builds", build_sid)
        if build is None:
            return self._not_found(request)
        if build["status"] == "building":
            if build["polls_left"] > 0:
                build["polls_left"] -= 1
            else:
                build["status"] = self.build_outcome
        return self._json(200, {"sid": build_sid, "account_sid": self.account(), "service_sid": service_sid,
                                "status": build["status"],
                                "url": f"{SERVERLESS_HOST}/v1/Services/{service_sid}/Builds/{build_sid}/Status"})

    def _build(self, service_sid: str, build_sid: str) -> dict[str, Any]:
        build = self._child(service_sid, "builds", build_sid)
        service = self.services[service_sid]
        url = f"{SERVERLESS_HOST}/v1/Services/{service_sid}/Builds/{build_sid}"
        versions = []
        for version_sid in build["function_versions"]:
            function_sid = next(f for f, function in service["functions"].items() if version_sid in function["versions"]) \
                if self._version_anywhere(service, version_sid) else None
            version = self._version_anywhere(service, version_sid) or {}
            versions.append({"sid": version_sid, "account_sid": self.account(), "service_sid": service_sid,
                             "function_sid": function_sid, "path": version.get("path"),
                             "visibility": version.get("visibility"),
                             "date_created": version["date"].isoformat().replace("+00:00", "Z") if version else None})
        return {**self._common(build, url), "service_sid": service_sid, "status": build["status"],
                "asset_versions": [], "function_versions": versions, "dependencies": build["dependencies"],
                "runtime": build["runtime"], "links": {"build_status": f"{url}/Status"}}

    # ---- Deployments ----
    def _list_deployments(self, request, form, service_sid, environment_sid) -> Response:
        environment = self._child(service_sid, "environments", environment_sid)
        if environment is None:
            return self._not_found(request)
        items = [self._deployment(service_sid, environment_sid, d) for d in reversed(environment["deployments"])]
        return self._json(200, self._studio_page("deployments", request, items, SERVERLESS_HOST))

    def _create_deployment(self, request, form, service_sid, environment_sid) -> Response:
        environment = self._child(service_sid, "environments", environment_sid)
        if environment is None:
            return self._not_found(request)
        build = self._child(service_sid, "builds", form.get("BuildSid", ""))
        if build is None or build["status"] != "completed":
            return self._error(400, 20001, f"Build {form.get('BuildSid')} is not a completed build of this Service")
        deployment_sid = self._deploy(service_sid, environment_sid, form["BuildSid"])
        return self._json(201, self._deployment(service_sid, environment_sid, deployment_sid))

    def _deploy(self, service_sid: str, environment_sid: str, build_sid: str) -> str:
        environment = self._child(service_sid, "environments", environment_sid)
        deployment_sid = self._sid("ZD")
        environment["deployments"][deployment_sid] = {"sid": deployment_sid, "build_sid": build_sid, "date": self._now()}
        environment["build_sid"] = build_sid
        return deployment_sid

    def _deployment(self, service_sid: str, environment_sid: str, deployment_sid: str) -> dict[str, Any]:
        deployment = self._child(service_sid, "environments", environment_sid)["deployments"][deployment_sid]
        url = f"{SERVERLESS_HOST}/v1/Services/{service_sid}/Environments/{environment_sid}/Deployments/{deployment_sid}"
        return {**self._common(deployment, url), "service_sid": service_sid, "environment_sid": environment_sid,
                "build_sid": deployment["build_sid"]}

    # ---- Variables ----
    def _list_variables(self, request, form, service_sid, environment_sid) -> Response:
        environment = self._child(service_sid, "environments", environment_sid)
        if environment is None:
            return self._not_found(request)
        items = [self._variable(service_sid, environment_sid, v) for v in environment["variables"]]
        return self._json(200, self._studio_page("variables", request, items, SERVERLESS_HOST))

    def _create_variable(self, request, form, service_sid, environment_sid) -> Response:
        environment = self._child(service_sid, "environments", environment_sid)
        if environment is None:
            return self._not_found(request)
        if problem := variable_problem(form.get("Key"), form.get("Value"), environment, None):
            return self._error(400, 20001, problem)
        variable_sid = self._sid("ZV")
        environment["variables"][variable_sid] = {"sid": variable_sid, "key": form["Key"], "value": form["Value"],
                                                  "date": self._now()}
        return self._json(201, self._variable(service_sid, environment_sid, variable_sid))

    def _update_variable(self, request, form, service_sid, environment_sid, variable_sid) -> Response:
        environment = self._child(service_sid, "environments", environment_sid)
        variable = (environment or {}).get("variables", {}).get(variable_sid)
        if variable is None:
            return self._not_found(request)
        key, value = form.get("Key", variable["key"]), form.get("Value", variable["value"])
        if problem := variable_problem(key, value, environment, variable_sid):
            return self._error(400, 20001, problem)
        variable.update(key=key, value=value)
        return self._json(200, self._variable(service_sid, environment_sid, variable_sid))

    def _delete_variable(self, request, form, service_sid, environment_sid, variable_sid) -> Response:
        environment = self._child(service_sid, "environments", environment_sid)
        if variable_sid not in (environment or {}).get("variables", {}):
            return self._not_found(request)
        del environment["variables"][variable_sid]
        return Response(status=204)

    def _variable(self, service_sid: str, environment_sid: str, variable_sid: str) -> dict[str, Any]:
        variable = self._child(service_sid, "environments", environment_sid)["variables"][variable_sid]
        url = f"{SERVERLESS_HOST}/v1/Services/{service_sid}/Environments/{environment_sid}/Variables/{variable_sid}"
        return {**self._common(variable, url), "service_sid": service_sid, "environment_sid": environment_sid,
                "key": variable["key"], "value": variable["value"]}

    # ---- shared ----
    def _common(self, resource: dict[str, Any], url: str) -> dict[str, Any]:
        moment = resource["date"].isoformat().replace("+00:00", "Z")
        return {"sid": resource["sid"], "account_sid": self.account(), "date_created": moment,
                "date_updated": moment, "url": url}


def upload_problem(request: Request) -> str | None:
    """What Twilio would refuse in an upload, or None."""
    if request.mimetype != "multipart/form-data":
        return f"expected multipart/form-data, got {request.mimetype or 'no Content-Type'}"
    if set(request.form) != UPLOAD_FIELDS or list(request.files) != ["Content"]:
        return (f"expected the fields Path and Visibility and one file Content, got fields {sorted(request.form)} "
                f"and files {sorted(request.files)}")
    if any(len(request.form.getlist(name)) != 1 for name in UPLOAD_FIELDS):
        return "each field is sent once"
    path, visibility = request.form["Path"], request.form["Visibility"]
    if not 0 < len(path) <= 255 or not re.fullmatch(r"/?[A-Za-z0-9._~/-]+", path):
        return f"Path {path[:80]!r} is not 1 to 255 URL path characters"
    if visibility not in ("public", "protected"):
        return f"Visibility {visibility[:20]!r} is not public or protected (a Function cannot be private)"
    content = request.files["Content"]
    if content.mimetype not in ("application/javascript", "text/javascript"):
        return f"Content must be JavaScript (application/javascript), got {content.mimetype or 'no type'}"
    data = content.read()
    content.seek(0)
    if not data or len(data) > MAX_UPLOAD_BYTES:
        return f"Content must be 1 byte to {MAX_UPLOAD_BYTES} bytes, got {len(data)}"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "Content is not UTF-8 text"
    return None


def variable_problem(key: Any, value: Any, environment: dict[str, Any], variable_sid: str | None) -> str | None:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", key):
        return "Key must be 1 to 128 letters, digits or '_', not starting with a digit"
    if not isinstance(value, str) or len(value.encode()) > 450:
        return "Value must be at most 450 bytes"
    if any(v["key"] == key and s != variable_sid for s, v in environment["variables"].items()):
        return f"Variable with Key {key} already exists"
    return None



class DeployedFunctions:
    """The local Twilio's deployed Functions as Voice reaches them (a `twiml_call.TwimlService`): each URL
    answered by the code its Environment's build holds, run under Node; 404 where nothing is deployed."""

    def __init__(self, local: LocalServerless):
        self.local = local
        self.running: dict[str, Any] = {}
        self.scratch = tempfile.TemporaryDirectory(prefix="callmask-function-")
        self.starting = threading.Lock()  # calls may arrive together (the local Twilio serves each in a thread)

    def __call__(self, url: str, params: Mapping[str, str]) -> tuple[int, str]:
        from callmask.function.pin_function import LocalFunction  # Node: only for a call that reaches a Function

        deployed = self.local.deployed_function(url)
        if deployed is None:
            return 404, ""
        code, variables = deployed
        # The Function's own calls to Twilio (the PIN guard's Sync) reach this local Twilio.
        variables = {**variables, BASE_URL_VARIABLE: self.local.base_url}
        with self.starting:
            if code not in self.running:
                folder = Path(self.scratch.name) / str(len(self.running))
                folder.mkdir()
                self.running[code] = LocalFunction(code, folder)
        return self.running[code].service(variables)(url, params)

    def __enter__(self) -> "DeployedFunctions":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        with self.starting:
            for function in self.running.values():
                function.close()
            self.running.clear()
            self.scratch.cleanup()
