"""What Twilio Voice does with the TwiML that a TwiML Redirect widget's URL answers: say, gather,
redirect, hang up, until the call comes back to the flow (a redirect to its webhook with
`FlowEvent=return`) or ends. The service behind the URL is given: for the line's PIN check, its
Function run under Node (`pin_function.LocalFunction`)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

# (url, the request's parameters) -> (HTTP status, body)
TwimlService = Callable[[str, Mapping[str, str]], tuple[int, str]]
MAX_REQUESTS = 20


@dataclass
class Played:
    returned: dict[str, str] | None = None  # the parameters the call came back to the flow with; None: it ended
    said: list[str] = field(default_factory=list)
    digits: str | None = None  # what a gather collected ("" when it heard nothing)
    ended: str | None = None  # why the call ended outside the flow


def gathered_digits(pressed: str, finish_on_key: str | None, number_of_digits: int | None) -> str:
    """The digits a gather submits for what the caller pressed (the finishing key excluded)."""
    digits = ""
    for key in pressed:
        if finish_on_key and key == finish_on_key:
            break
        digits += key
        if number_of_digits and len(digits) >= number_of_digits:
            break
    return digits


def play(service: TwimlService, url: str, call: Mapping[str, str], flow_webhook: str,
         keys: Callable[[], str | None]) -> Played:
    """Follows the call through the service's TwiML. `keys()` is what the caller presses at each gather
    (None: nothing)."""
    played, params = Played(), dict(call)
    for _ in range(MAX_REQUESTS):
        status, body = service(url, params)
        if status != 200:
            played.ended = f"the TwiML URL answered HTTP {status}: Voice says an application error and hangs up"
            return played
        try:
            verbs = _verbs(body)
        except ValueError as error:
            played.ended = f"the TwiML URL answered something that is not TwiML ({error}): Voice hangs up"
            return played
        following = _follow(verbs, played, keys)
        if following is None:
            return played
        target, params = following[0], {**call, **following[1]}
        parts = urlsplit(target)
        if f"{parts.scheme}://{parts.netloc}{parts.path}" == flow_webhook:
            query = dict(parse_qsl(parts.query))
            if query.pop("FlowEvent", None) == "return":
                played.returned = query
                return played
        url = target
    played.ended = f"the TwiML redirected more than {MAX_REQUESTS} times"
    return played


def _verbs(body: str) -> list[ElementTree.Element]:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise ValueError(str(error)) from None
    if root.tag != "Response":
        raise ValueError(f"the document is <{root.tag}>, not <Response>")
    return list(root)


def _follow(verbs: list[ElementTree.Element], played: Played,
            keys: Callable[[], str | None]) -> tuple[str, dict[str, str]] | None:
    """The next request (url, parameters) the verbs make Voice send, or None when the call ends."""
    for verb in verbs:
        if verb.tag == "Say":
            played.said.append(verb.text or "")
        elif verb.tag == "Gather":
            played.said += [said.text or "" for said in verb if said.tag == "Say"]
            limit = verb.get("numDigits")
            digits = gathered_digits(keys() or "", verb.get("finishOnKey", "#"),
                                     int(limit) if limit and limit.isdigit() else None)
            played.digits = digits
            if digits:
                return verb.get("action") or "", {"Digits": digits}
        elif verb.tag == "Redirect":
            return (verb.text or "").strip(), {}
        elif verb.tag == "Hangup":
            played.ended = "the TwiML hung up"
            return None
        elif verb.tag != "Pause":
            played.ended = f"the TwiML uses <{verb.tag}>, which this simulation does not play"
            return None
    played.ended = "the TwiML ended without returning to the flow: Voice hangs up"
    return None
