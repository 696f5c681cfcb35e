"""The Python dynamic-provider host's watch on the Pulumi engine it serves (tools/dynamic-provider-host).

Pulumi's Go plugins (and the language host, tools/pulumi/language-host) poll the engine's gRPC health service
and stop once it stops answering; without that a killed `pulumi` leaves the provider host running (and with
it the Go plugin that waits on it, tools/pulumi/provider-plugin). Installed beside the host in .tools/bin.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import grpc

EVERY_SECONDS = float(os.environ.get("CALLMASK_ENGINE_WATCH_SECONDS") or 1.0)  # the tests set a tenth
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def watch_engine(address: str, on_gone: Callable[[], None], every: float = EVERY_SECONDS) -> None:
    """Call `on_gone` (from a daemon thread) once the engine at `address` no longer answers its health check.
    An engine without the health service (UNIMPLEMENTED) still counts as alive, as Pulumi's own plugins treat it."""
    channel = grpc.insecure_channel(address)
    # An empty HealthCheckRequest is zero bytes; the answer's content does not matter, only that one comes.
    check = channel.unary_unary(HEALTH_CHECK, request_serializer=lambda _: b"", response_deserializer=bytes)

    def poll() -> None:
        while True:
            time.sleep(every)
            try:
                check(None)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                    on_gone()
                    return

    threading.Thread(target=poll, name="engine-watch", daemon=True).start()
