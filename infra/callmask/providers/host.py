"""The dynamic-provider host the engine runs for callmask's providers: the Python SDK's own host
(`python -m pulumi.dynamic`), with two things it lacks.

- A provider's failure is a `ProviderError`, already one line that says what to do: the engine gets that
  line, not the Python traceback the SDK's host sends for every exception (other exceptions, which are
  bugs, keep their traceback).
- A diff names the inputs that changed (a detailed diff), so `pulumi preview --diff` and `refresh --diff`
  show the changed prompt or widget and not every unchanged input printed in full. A provider may name
  them itself (`twilio_provider.DetailedDiff`); otherwise they are the inputs whose values differ.
"""

from __future__ import annotations

import runpy
import sys
import traceback
from typing import Any

import grpc
from pulumi.dynamic.dynamic import PROVIDER_KEY
from pulumi.runtime import proto, rpc
from pulumi.runtime.proto import provider_pb2_grpc

from callmask.providers.twilio_provider import ProviderError

UPDATE, UPDATE_REPLACE = proto.PropertyDiff.UPDATE, proto.PropertyDiff.UPDATE_REPLACE


class OneLineErrors:
    """A gRPC context whose `abort` sends a ProviderError's own line instead of the traceback."""

    def __init__(self, context):
        self._context = context

    def abort(self, code, details: str):
        error = sys.exc_info()[1]
        self._context.abort(code, str(error) if isinstance(error, ProviderError) else details)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class ProviderHost:
    """Wraps the SDK's servicer: every call goes to it, with one-line errors; Diff adds the detail."""

    def __init__(self, servicer):
        self._servicer = servicer
        # The SDK's host module is run as a script and cannot be imported; its provider cache (deserialize
        # once, configure once) is reached through the module namespace its servicer's methods share.
        self._get_provider = type(servicer).Diff.__globals__["get_provider"]

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._servicer, name)
        if name in ("Check", "Create", "Read", "Update", "Delete"):
            return lambda request, context: method(request, OneLineErrors(context))
        return method

    def Diff(self, request, context):
        try:
            return self.diff(request)
        except Exception:  # noqa: BLE001 - every failure goes back to the engine, as the SDK's does
            OneLineErrors(context).abort(grpc.StatusCode.UNKNOWN, traceback.format_exc())

    def diff(self, request):
        olds = rpc.deserialize_properties(request.olds, True)
        news = rpc.deserialize_properties(request.news, True)
        provider = self._get_provider(olds if news[PROVIDER_KEY] == rpc.UNKNOWN else news,
                                      self._servicer._config)
        result = provider.diff(request.id, olds, news)
        changed = (getattr(result, "changed", None) or differing_inputs(olds, news)) if result.changes else []
        fields: dict[str, Any] = {"changes": proto.DiffResponse.DIFF_SOME if result.changes else
                                  proto.DiffResponse.DIFF_NONE,
                                  "replaces": result.replaces or [], "stables": result.stables or [],
                                  "deleteBeforeReplace": bool(result.delete_before_replace)}
        if changed:
            replaced = set(result.replaces or [])
            fields["detailedDiff"] = {key: proto.PropertyDiff(kind=UPDATE_REPLACE if key in replaced else UPDATE,
                                                              inputDiff=key in news) for key in changed}
            fields["hasDetailedDiff"] = True
        return proto.DiffResponse(**fields)


def differing_inputs(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    return sorted(key for key in news if key != PROVIDER_KEY and (news[key] == rpc.UNKNOWN or olds.get(key) != news[key]))


def main() -> None:
    """Serve as `python -m pulumi.dynamic` does, each servicer registered through ProviderHost."""
    register = provider_pb2_grpc.add_ResourceProviderServicer_to_server
    provider_pb2_grpc.add_ResourceProviderServicer_to_server = \
        lambda servicer, server: register(ProviderHost(servicer), server)
    runpy.run_module("pulumi.dynamic", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
