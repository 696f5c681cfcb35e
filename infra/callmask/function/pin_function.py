"""The PIN-check Function of `callmask:pinCheck function`: its code (`functions/pin-check.js`), the PIN
digests it is deployed with, and a local run of it in Twilio's own Functions runtime under Node.

A digest is scrypt(PIN, the stack's salt) with the parameters of `functions/pin-kdf.json`, the same in
Python (hashlib) and Node (crypto). One salt per stack means one KDF run per call, compared against every
digest; its cost is what stands between someone who can read the Function's code and variables and the
PINs, so it is chosen to make a search of every 8-digit PIN take hundreds of CPU-days.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


FUNCTIONS_DIR = Path(__file__).resolve().parents[3] / "functions"
SOURCE_FILE = FUNCTIONS_DIR / "pin-check.js"
RUNTIME_FILE = FUNCTIONS_DIR / "local-runtime.js"  # Twilio's Functions runtime, serving one Function
LOCAL_SECONDS = 30  # far above the scrypt check; a runtime that hangs fails the call, as Twilio's would
FUNCTION_PATH = "/pin-check"
RUNTIME = "node22"
SALT_VARIABLE = "PIN_SALT"
ALERT_VARIABLE = "ALERT_URL"
# The PIN guard's counters (a Sync Map) and the API key the Function reaches them with.
GUARD_VARIABLES = ("SYNC_SERVICE_SID", "SYNC_MAP_SID", "GUARD_KEY_SID", "GUARD_KEY_SECRET")
CALLER_PREFIX, ALL_CALLERS = "caller-", "all-callers"  # the Map's item keys
ANONYMOUS = "anonymous"  # every caller with a withheld or malformed caller ID
# The one line of the committed code that a deploy replaces with the line's settings and digests.
LINE_MARKER = 'const LINE = {"digests": []};'


class FunctionCodeError(ValueError):
    """The Function's code cannot be deployed as it is (one line, naming the file)."""


@cache
def kdf() -> dict[str, int]:
    parameters = json.loads((FUNCTIONS_DIR / "pin-kdf.json").read_text())
    return {key: int(parameters[key]) for key in ("N", "r", "p", "keylen", "maxmem")}


def new_salt() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode()


def pin_digest(pin: str, salt: str, parameters: Mapping[str, int] | None = None) -> str:
    cost = parameters or kdf()
    key = hashlib.scrypt(pin.encode(), salt=base64.b64decode(salt), n=cost["N"], r=cost["r"], p=cost["p"],
                         dklen=cost["keylen"], maxmem=cost["maxmem"])
    return base64.b64encode(key).decode()


def source() -> str:
    return SOURCE_FILE.read_text(encoding="utf-8")


def deployed_code(code: str, values: Mapping[str, Any], labeled_pins: Mapping[str, str], salt: str,
                  cost: Mapping[str, int] | None = None) -> str:
    """The code as uploaded: the committed source with the line's settings and PIN digests in place of
    its empty LINE. Holds no PIN. `cost`: other scrypt parameters than pin-kdf.json's (tests only)."""
    if code.count(LINE_MARKER) != 1:
        raise FunctionCodeError(f"{SOURCE_FILE.name}: expected the line `{LINE_MARKER}` exactly once (a deploy "
                                "fills it with the PIN digests)")
    cost = cost or kdf()
    line = {**values, "kdf": dict(cost),
            "digests": [{"label": label, "digest": pin_digest(pin, salt, cost)} for label, pin in labeled_pins.items()]}
    return code.replace(LINE_MARKER, f"const LINE = {json.dumps(line, ensure_ascii=False)};")


def caller_key(salt: str, caller: str) -> str:
    """The Sync item key of a caller (E.164, or `anonymous`): a keyed hash, as the Function makes it."""
    digest = hmac.new(base64.b64decode(salt), f"caller:{caller}".encode(), hashlib.sha256).hexdigest()
    return f"{CALLER_PREFIX}{digest[:40]}"


def guard_variables(service_sid: str, map_sid: str, key_sid: str, key_secret: str) -> dict[str, str]:
    """The Function's variables that name the guard's Sync Map and hold its API key."""
    return dict(zip(GUARD_VARIABLES, (service_sid, map_sid, key_sid, key_secret)))


@cache
def build_dependencies() -> list[dict[str, str]]:
    """The packages the Function's Build pins: exactly those its tests and local runs use
    (functions/package.json and its lock file): the `twilio` helper and Twilio's Functions runtime."""
    package = json.loads((FUNCTIONS_DIR / "package.json").read_text())
    return [{"name": name, "version": version} for name, version in sorted(package["dependencies"].items())]


class NodeUnavailable(RuntimeError):
    """Node, or the Function's packages (`make setup`), are not installed."""


class LocalFunction:
    """One Function's code served over HTTP by Twilio's own Functions runtime (@twilio/runtime-handler's
    LocalDevelopmentServer, through `functions/local-runtime.js`), as Voice reaches it. A runtime is started
    per domain and set of Environment variables the Function is called with. Use it as a context manager."""

    def __init__(self, code: str, scratch: Path):
        self.node = shutil.which("node")
        if self.node is None or not (FUNCTIONS_DIR / "node_modules" / "@twilio" / "runtime-handler").is_dir():
            raise NodeUnavailable("running the PIN-check Function needs Node 20+ and its packages: run `make setup`")
        self.file = scratch / "function.js"
        self.file.write_text(code, encoding="utf-8")
        self.runtimes: dict[tuple[str, str, str], tuple[subprocess.Popen, str]] = {}
        self.starting = threading.Lock()  # calls may arrive together: each runtime is started once

    def origin(self, domain: str, path: str, variables: Mapping[str, str]) -> str:
        """http://127.0.0.1:PORT of the runtime serving this Function at `domain` + `path`."""
        key = (domain, path, json.dumps(dict(variables), sort_keys=True))
        with self.starting:
            if key not in self.runtimes:
                process = subprocess.Popen([self.node, str(RUNTIME_FILE), str(self.file), path, domain],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                           text=True, cwd=FUNCTIONS_DIR, env={**os.environ, "FUNCTION_VARIABLES": key[2]})
                port = process.stdout.readline().strip() if process.stdout else ""
                if not port.isdigit():
                    process.kill()
                    raise NodeUnavailable(f"Twilio's Functions runtime did not start ({RUNTIME_FILE.name}): "
                                          "run `make setup`")
                self.runtimes[key] = (process, f"http://127.0.0.1:{port}")
            return self.runtimes[key][1]

    def close(self) -> None:
        with self.starting:
            for process, _ in self.runtimes.values():
                if process.stdin:
                    process.stdin.close()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if process.stdout:
                    process.stdout.close()
            self.runtimes.clear()

    def service(self, variables: Mapping[str, str]) -> Callable[[str, Mapping[str, str]], tuple[int, str]]:
        """This Function as Voice reaches it at a URL (a `twiml_call.TwimlService`): a POST of the request's
        parameters to the URL's path and query, in the runtime for the URL's domain and these variables."""
        import requests  # only a local run posts to the runtime (`callmask --help` loads none of it)

        def answer(url: str, params: Mapping[str, str]) -> tuple[int, str]:
            parts = urlsplit(url)
            local = f"{self.origin(parts.netloc, parts.path, variables)}{parts.path}"
            reply = requests.post(local + (f"?{parts.query}" if parts.query else ""), data=dict(params),
                                  timeout=LOCAL_SECONDS)
            return reply.status_code, reply.text
        return answer

    def __enter__(self) -> "LocalFunction":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
