"""The PIN-check Function of `callmask:pinCheck function`: its code (`functions/pin-check.js`), the PIN
digests it is deployed with, and a local run of it under Node.

A digest is scrypt(PIN, the stack's salt) with the parameters of `functions/pin-kdf.json`, the same in
Python (hashlib) and Node (crypto). One salt per stack means one KDF run per call, compared against every
digest; its cost is what stands between someone who can read the Function's code and variables and the
PINs, so it is chosen to make a search of every 8-digit PIN take hundreds of CPU-days.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
SOURCE_FILE = FUNCTIONS_DIR / "pin-check.js"
RUNTIME_FILE = FUNCTIONS_DIR / "runtime.js"
FUNCTION_PATH = "/pin-check"
RUNTIME = "node22"
SALT_VARIABLE = "PIN_SALT"
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


@cache
def twilio_dependency() -> dict[str, str]:
    """The `twilio` helper library the Function is tested with, pinned for its Build as well."""
    package = json.loads((FUNCTIONS_DIR / "package.json").read_text())
    return {"name": "twilio", "version": package["dependencies"]["twilio"]}


class NodeUnavailable(RuntimeError):
    """Node, or the Function's test dependencies (`make setup`), are not installed."""


class LocalFunction:
    """One Function's code running under Node in `functions/runtime.js`, a stand-in for Twilio's
    Functions runtime: `request(context, event)` answers as the gateway would (status, content type,
    body). Use it as a context manager."""

    def __init__(self, code: str, scratch: Path):
        node = shutil.which("node")
        if node is None or not (FUNCTIONS_DIR / "node_modules" / "twilio").is_dir():
            raise NodeUnavailable("running the PIN-check Function needs Node 20+ and its packages: run `make setup`")
        self.file = scratch / "function.js"
        self.file.write_text(code, encoding="utf-8")
        self.process = subprocess.Popen([node, str(RUNTIME_FILE), str(self.file)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        cwd=FUNCTIONS_DIR)

    def request(self, context: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"context": dict(context), "event": dict(event)}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            # The runtime stand-in itself died (the code does not load): Twilio would answer 500.
            return {"status": 500, "contentType": "application/json", "body": '{"message":"Function error"}'}
        return json.loads(answer)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()

    def service(self, variables: Mapping[str, str]) -> Callable[[str, Mapping[str, str]], tuple[int, str]]:
        """This Function as Voice reaches it at a URL (a `twiml_call.TwimlService`): the query string and
        the request's parameters make the event, the URL's host and path and the Environment's
        variables the context."""
        def answer(url: str, params: Mapping[str, str]) -> tuple[int, str]:
            parts = urlsplit(url)
            context = {"DOMAIN_NAME": parts.netloc, "PATH": parts.path, **variables}
            reply = self.request(context, {**dict(parse_qsl(parts.query)), **params})
            return reply["status"], reply["body"]
        return answer

    def __enter__(self) -> "LocalFunction":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
