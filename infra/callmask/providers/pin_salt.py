"""The stack's PIN salt: random bytes made once, kept in the state as a secret, the same for every PIN
of the stack (one KDF run per call checks the caller's digits against all the digests). No Twilio call."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from callmask.function.pin_function import new_salt
from callmask.providers.twilio_provider import DetailedDiff


class PinSaltProvider(ResourceProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["stack"] if olds.get("stack") != news.get("stack") else []
        return DetailedDiff(replaces, replaces, stables=["salt"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"pin-salt-{props['stack']}", {**props, "salt": new_salt()})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)


class PinSalt(Resource, module="callmask", name="PinSalt"):
    """Output: `salt` (base64, secret)."""

    salt: pulumi.Output[str]

    def __init__(self, name: str, *, stack: str, opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["salt"]))
        super().__init__(PinSaltProvider(), name, {"stack": stack, "salt": None}, opts)
