"""Phone number: bought once, adopted when already owned, released only when the stack says so.

Look before you buy: a `number` selection is looked up on the account first; a `search` selection
first looks for a number this stack already bought (by friendly name). A purchase that times out or
fails with a 5xx is never repeated blindly: the number is looked up to learn whether it was bought.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)
from twilio.base.exceptions import TwilioRestException

from callmask.providers.twilio_provider import TwilioProvider, describe, unless_gone
from callmask.twilio_api import TwilioRequestFailed

NOT_AVAILABLE = 21422
INVALID_NUMBER = 21421
NO_NUMBERS_IN_AREA = 21452
SEARCH_CANDIDATES = 5


class NumberError(Exception):
    """A phone number could not be bought or adopted; the message says what to change."""


class NumberUnavailable(NumberError):
    """Twilio no longer sells this number (someone else bought it)."""


class PhoneNumberProvider(TwilioProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        selection = news.get("selection")
        if not isinstance(selection, dict) or selection.get("mode") not in ("number", "search", "sid"):
            failures.append(CheckFailure("selection", "selection must have mode number, search or sid"))
        if olds and olds.get("selection") != selection and olds.get("release_on_destroy"):
            failures.append(CheckFailure(
                "selection",
                "callmask:phoneNumber changed while releaseNumberOnDestroy is true, which would release the "
                "old number. Set releaseNumberOnDestroy to false and run `pulumi up` first; release the old "
                "number yourself if you mean to."))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("selection", "friendly_name", "release_on_destroy") if olds.get(key) != news.get(key)]
        replaces = ["selection"] if "selection" in changed and not same_number(olds, news["selection"]) else []
        return DiffResult(changes=bool(changed), replaces=replaces, stables=["sid", "phone_number"],
                          delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self.client()
        selection = props["selection"]
        if selection["mode"] == "sid":
            number, purchased = adopt_by_sid(client, selection["sid"]), False
        elif selection["mode"] == "number":
            owned = find_owned(client, selection["number"])
            number, purchased = (owned, False) if owned else (purchase(client, selection["number"], props), True)
        else:
            owned = find_by_friendly_name(client, props["friendly_name"])
            number, purchased = (owned, True) if owned else (search_and_buy(client, selection, props), True)
        return CreateResult(number.sid, outputs(props, number, purchased))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        number = self.client().incoming_phone_numbers(id_)
        if olds.get("purchased") and olds.get("friendly_name") != news["friendly_name"]:
            number = number.update(friendly_name=news["friendly_name"])
            return UpdateResult(outputs(news, number, True))
        return UpdateResult({**news, "sid": id_, "phone_number": olds["phone_number"], "purchased": olds["purchased"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        number = unless_gone(self.client().incoming_phone_numbers(id_).fetch)
        if number is None:
            return ReadResult("", {})
        return ReadResult(id_, outputs(props, number, bool(props.get("purchased"))))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Releases only a number this stack bought, and only with releaseNumberOnDestroy: true."""
        if props.get("release_on_destroy") and props.get("purchased"):
            unless_gone(self.client().incoming_phone_numbers(id_).delete)


def adopt_by_sid(client, sid: str):
    number = unless_gone(client.incoming_phone_numbers(sid).fetch)
    if number is None:
        raise NumberError(f"callmask:phoneNumber.sid {sid} is not a phone number on this Twilio account; "
                          "check the SID in the Console (Phone Numbers > Manage > Active numbers).")
    return number


def same_number(olds: dict[str, Any], selection: dict[str, Any]) -> bool:
    """A new selection that names the number we already hold needs no replacement."""
    return (selection.get("number") is not None and selection.get("number") == olds.get("phone_number")) or \
        (selection.get("sid") is not None and selection.get("sid") == olds.get("sid"))


def outputs(props: dict[str, Any], number, purchased: bool) -> dict[str, Any]:
    return {**props, "sid": number.sid, "phone_number": number.phone_number, "purchased": purchased}


def find_owned(client, phone_number: str):
    """The account's number with exactly this E.164 value (Twilio's filter also matches partially)."""
    matches = client.incoming_phone_numbers.list(phone_number=phone_number, limit=20)
    return next((number for number in matches if number.phone_number == phone_number), None)


def find_by_friendly_name(client, friendly_name: str):
    matches = client.incoming_phone_numbers.list(friendly_name=friendly_name, limit=20)
    return next((number for number in matches if number.friendly_name == friendly_name), None)


def purchase(client, phone_number: str, props: dict[str, Any]):
    try:
        return client.incoming_phone_numbers.create(phone_number=phone_number, friendly_name=props["friendly_name"])
    except TwilioRequestFailed as error:
        outcome = f"the purchase request got no answer ({error})"
    except TwilioRestException as error:
        if error.code == NOT_AVAILABLE:
            raise NumberUnavailable(f"{phone_number} is not available to buy (Twilio error {NOT_AVAILABLE}). Choose another "
                              "number in callmask:phoneNumber, or use {search: {country, areaCode}}.") from None
        if error.code == INVALID_NUMBER:
            raise NumberError(f"{phone_number} is not a number Twilio can sell (Twilio error {INVALID_NUMBER}); "
                              "check callmask:phoneNumber.number.") from None
        if error.status < 500:
            raise NumberError(f"Buying {phone_number} failed: {describe(error)}") from None
        outcome = f"the purchase request failed on Twilio's side ({describe(error)})"
    bought = find_owned(client, phone_number)
    if bought:
        return bought
    raise NumberError(f"Buying {phone_number} did not complete: {outcome}. The account does not own it "
                      "(checked), so nothing was bought; run `pulumi up` again.")


def search_and_buy(client, selection: dict[str, Any], props: dict[str, Any]):
    criteria = {key: selection[key] for key in ("area_code", "contains") if selection.get(key)}
    wanted = f"country {selection['country']}" + "".join(f", {key} {value}" for key, value in criteria.items())
    try:
        candidates = client.available_phone_numbers(selection["country"]).local.list(
            voice_enabled=True, limit=SEARCH_CANDIDATES, **criteria)
    except TwilioRestException as error:
        if error.code == NO_NUMBERS_IN_AREA:
            candidates = []
        else:
            raise NumberError(f"Searching for a number ({wanted}) failed: {describe(error)}") from None
    for candidate in candidates:
        try:
            return purchase(client, candidate.phone_number, props)
        except NumberUnavailable:
            continue
    raise NumberError(f"No voice-capable local number is available for {wanted}. Widen "
                      "callmask:phoneNumber.search (drop areaCode or contains), or pick a number.")


class PhoneNumber(Resource, module="twilio", name="PhoneNumber"):
    """An IncomingPhoneNumber owned by the stack. Outputs: `sid`, `phone_number`, `purchased`."""

    sid: pulumi.Output[str]
    phone_number: pulumi.Output[str]
    purchased: pulumi.Output[bool]

    def __init__(self, name: str, *, selection: dict[str, str], friendly_name: str, release_on_destroy: bool,
                 opts: pulumi.ResourceOptions | None = None):
        props = {"selection": selection, "friendly_name": friendly_name, "release_on_destroy": release_on_destroy,
                 "sid": None, "phone_number": None, "purchased": None}
        super().__init__(PhoneNumberProvider(), name, props, opts)
