"""What a failed Twilio request means: an answer with its status and Twilio's error code, or none at all
(Twilio may then have acted), told in words a user can act on."""

from __future__ import annotations

import json
from dataclasses import dataclass

from twilio.base.exceptions import TwilioException, TwilioRestException

from callmask.twilio import twilio_api

NOT_FOUND = 404
TOO_MANY_REQUESTS = 429


@dataclass(frozen=True)
class Answer:
    """What Twilio answered to a request that failed; `status` None when no answer came."""

    status: int | None
    code: int | None = None
    message: str = ""

    @property
    def unclear(self) -> bool:
        """Twilio may have acted on the request: no answer, or a server error."""
        return self.status is None or self.status >= 500

    def describe(self) -> str:
        if self.status is None:
            return "Twilio did not answer (timeout or lost connection), so it may or may not have acted"
        if self.status == TOO_MANY_REQUESTS:
            return "Twilio is rate limiting this account (HTTP 429), still after retries"
        code = f", code {self.code}" if self.code else ""
        if self.status >= 500:
            return f"Twilio had a temporary server error (HTTP {self.status}{code})"
        return f"Twilio error {self.code or '?'} (HTTP {self.status}): {self.message}"


def answer_of(error: TwilioException) -> Answer:
    if isinstance(error, twilio_api.TwilioRequestFailed):
        return Answer(None)
    if isinstance(error, TwilioRestException):
        details = f" Details: {json.dumps(error.details)}" if error.details else ""
        return Answer(error.status, error.code, (error.msg or "") + details)
    # List calls raise a plain TwilioException("Unable to fetch page", response).
    from twilio.http.response import Response  # loaded already: the failed call came through it

    response = error.args[1] if len(error.args) == 2 else None
    if isinstance(response, Response):
        try:
            body = json.loads(response.text)
        except (TypeError, ValueError):
            body = {}
        body = body if isinstance(body, dict) else {}
        return Answer(response.status_code, body.get("code"), str(body.get("message", "")))
    return Answer(None, None, str(error))
