"""What the three Twilio providers share: credentials from `configure()`, errors that read plainly."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from pulumi.dynamic import ConfigureRequest, ResourceProvider
from pulumi.output import Unknown
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from callmask import twilio_api

NOT_FOUND = 404
T = TypeVar("T")


class TwilioProvider(ResourceProvider):
    """Base of the callmask providers. Holds no state that is pickled: the credentials handed to
    `configure()` stay in the provider host's memory (see `__getstate__`)."""

    def configure(self, req: ConfigureRequest) -> None:
        self._credentials = {key: req.config.get(key) for key in twilio_api.CREDENTIAL_KEYS}

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def client(self) -> Client:
        return twilio_api.connect(getattr(self, "_credentials", {}) or {})


def is_unknown(value: Any) -> bool:
    """A value the engine does not know yet (during a preview); the provider host passes it as `Unknown`."""
    return isinstance(value, Unknown)


def is_not_found(error: TwilioException) -> bool:
    return isinstance(error, TwilioRestException) and error.status == NOT_FOUND


def unless_gone(operation: Callable[[], T]) -> T | None:
    """Run a Twilio call on one resource; None when Twilio says the resource no longer exists (404)."""
    try:
        return operation()
    except TwilioException as error:
        if is_not_found(error):
            return None
        raise


def describe(error: TwilioException) -> str:
    """One line for a Twilio error: code, message and details, without the SDK's decorations."""
    if isinstance(error, TwilioRestException):
        text = f"Twilio error {error.code} (HTTP {error.status}): {error.msg}"
        if error.details:
            text += f" Details: {error.details}"
        return text
    return str(error)
