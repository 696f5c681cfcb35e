"""Phone number: bought once, adopted when already owned, released only when the stack says so.

Look before you buy: a `number` selection is looked up on the account first; a `search` selection
first looks for a number this stack already bought (by friendly name). A purchase whose answer is
unclear (no answer, or a 5xx) is never repeated blindly: the number is looked for again, with backoff.
A number that carries the stack's friendly name is the stack's purchase, however it was found. The
number's voice settings are recorded when the stack takes it, before the voice binding writes to it.
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
from twilio.base.exceptions import TwilioException

from callmask.providers.twilio_provider import (
    NOT_FOUND,
    DetailedDiff,
    ProviderError,
    TwilioProvider,
    answer_of,
    look_again,
    twilio_operation,
    unless_gone,
)
from callmask.twilio import twilio_api

NOT_AVAILABLE = 21422
INVALID_NUMBER = 21421
NO_NUMBERS_IN_AREA = 21452
SEARCH_CANDIDATES = 5


class NumberError(ProviderError):
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
        if not failures and (not olds or olds.get("selection") != selection):
            if problem := self.unobtainable(selection, news.get("friendly_name")):
                failures.append(CheckFailure("selection", problem))
        return CheckResult(news, failures)

    def unobtainable(self, selection: dict[str, Any], friendly_name: str | None) -> str | None:
        """Why the selected number can be neither adopted nor bought, found in `check` (also in a preview),
        so that `up` creates nothing for a line that could never get its number. None when it can, or when
        there are no credentials to look with (a pull-request preview): `up` looks again."""
        wanted = selection.get("number") or selection.get("sid") or f"a number in {selection.get('country')}"
        try:
            client = self.client()
            if selection["mode"] == "sid":
                adopt_by_sid(client, selection["sid"])
                return None
            if selection["mode"] == "number":
                if find_owned(client, selection["number"]) or for_sale(client, selection["number"]):
                    return None
                return (f"callmask:phoneNumber.number {selection['number']} is neither on this Twilio account nor for "
                        "sale to it: pick a number the account owns or can buy (Console: Phone Numbers > Buy a "
                        "number), or use {search: {country, areaCode}}")
            if (friendly_name and find_by_friendly_name(client, friendly_name)) or candidates(client, selection, 1):
                return None
            return search_exhausted(selection)
        except twilio_api.MissingCredentials:
            return None
        except NumberError as error:
            return str(error)
        except TwilioException as error:
            return f"cannot look up {wanted} before creating anything: {answer_of(error).describe()}. Run it again."

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("selection", "friendly_name", "release_on_destroy") if olds.get(key) != news.get(key)]
        replaces = ["selection"] if "selection" in changed and not same_number(olds, news["selection"]) else []
        return DetailedDiff(changed, replaces, stables=["sid", "phone_number"],
                          delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client, selection, name = self.client(), props["selection"], props["friendly_name"]
        wanted = selection.get("number") or selection.get("sid") or f"search in {selection.get('country')}"
        with twilio_operation(f"PhoneNumber {wanted}", "create"):
            if selection["mode"] == "sid":
                number = adopt_by_sid(client, selection["sid"])
            elif selection["mode"] == "number":
                number = find_owned(client, selection["number"]) or purchase(client, selection["number"], name)
            else:
                number = find_by_friendly_name(client, name) or search_and_buy(client, selection, name)
        return CreateResult(number.sid, outputs(props, number, number.friendly_name == name, voice_before(number)))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        kept = {key: olds.get(key) for key in ("phone_number", "purchased", "voice_before")}
        if olds.get("purchased") and olds.get("friendly_name") != news["friendly_name"]:
            with twilio_operation(f"PhoneNumber {olds.get('phone_number')}", "rename"):
                self.client().incoming_phone_numbers(id_).update(friendly_name=news["friendly_name"])
        return UpdateResult({**news, "sid": id_, **kept})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"PhoneNumber {props.get('phone_number')}", "read"):
            number = unless_gone(client, client.incoming_phone_numbers(id_).fetch)
        if number is None:
            return ReadResult("", {})
        return ReadResult(id_, outputs(props, number, bool(props.get("purchased")), props.get("voice_before")))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Releases only a number this stack bought, and only with releaseNumberOnDestroy: true."""
        if props.get("release_on_destroy") and props.get("purchased"):
            client = self.client()
            with twilio_operation(f"PhoneNumber {props.get('phone_number')}", "release"):
                number = client.incoming_phone_numbers(id_)
                unless_gone(client, number.delete, confirm=number.fetch)


def adopt_by_sid(client, sid: str):
    number = unless_gone(client, client.incoming_phone_numbers(sid).fetch)
    if number is None:
        raise NumberError(f"callmask:phoneNumber.sid {sid} is not a phone number on this Twilio account; "
                          "check the SID in the Console (Phone Numbers > Manage > Active numbers).")
    return number


def same_number(olds: dict[str, Any], selection: dict[str, Any]) -> bool:
    """A new selection that names the number we already hold needs no replacement."""
    return (selection.get("number") is not None and selection.get("number") == olds.get("phone_number")) or \
        (selection.get("sid") is not None and selection.get("sid") == olds.get("sid"))


def voice_before(number) -> dict[str, str]:
    """The number's voice settings as the stack found them, for the voice binding to put back."""
    return {"voice_url": number.voice_url or "", "voice_method": number.voice_method or "POST",
            "voice_application_sid": number.voice_application_sid or ""}


def outputs(props: dict[str, Any], number, purchased: bool, before: dict[str, str] | None) -> dict[str, Any]:
    return {**props, "sid": number.sid, "phone_number": number.phone_number, "purchased": purchased,
            "voice_before": before}


def find_owned(client, phone_number: str):
    """The account's number with exactly this E.164 value (Twilio's filter also matches partially)."""
    matches = client.incoming_phone_numbers.list(phone_number=phone_number, limit=20)
    return next((number for number in matches if number.phone_number == phone_number), None)


def find_by_friendly_name(client, friendly_name: str):
    matches = client.incoming_phone_numbers.list(friendly_name=friendly_name, limit=20)
    return next((number for number in matches if number.friendly_name == friendly_name), None)


def purchase(client, phone_number: str, friendly_name: str):
    """Buys the number once. After an unclear answer it looks for it again instead of buying again."""
    try:
        return client.incoming_phone_numbers.create(phone_number=phone_number, friendly_name=friendly_name)
    except TwilioException as error:
        answer = answer_of(error)
        if answer.code == NOT_AVAILABLE:
            raise NumberUnavailable(f"PhoneNumber {phone_number} is not available to buy (Twilio error {NOT_AVAILABLE}). "
                                    "Choose another number in callmask:phoneNumber, or use {search: {country, areaCode}}.") from None
        if answer.code == INVALID_NUMBER:
            raise NumberError(f"PhoneNumber {phone_number} is not a number Twilio can sell (Twilio error "
                              f"{INVALID_NUMBER}); check callmask:phoneNumber.number.") from None
        if not answer.unclear:
            raise
        try:
            bought = look_again(lambda: find_owned(client, phone_number))
        except TwilioException as lookup:
            raise NumberError(f"PhoneNumber {phone_number}: the purchase got an unclear answer ({answer.describe()}) "
                              f"and looking for the number failed too ({answer_of(lookup).describe()}). Run "
                              "`pulumi up` again: it looks for the number before buying.") from None
        if bought is None:
            raise NumberError(f"PhoneNumber {phone_number}: the purchase got an unclear answer ({answer.describe()}) "
                              "and the account does not own the number yet; it may still complete. Run `pulumi up` "
                              "again: it looks for the number before buying.") from None
        return bought


def for_sale(client, phone_number: str) -> bool:
    """Whether Twilio sells this exact number to the account: looked up among the available numbers of its
    country and type (local, mobile or toll-free), by its digits."""
    import phonenumbers  # only a purchase needs its metadata: the provider host starts without it
    from phonenumbers import PhoneNumberType

    parsed = phonenumbers.parse(phone_number)
    country = phonenumbers.region_code_for_number(parsed)
    if not country or country == "001":
        return False
    kind = {PhoneNumberType.TOLL_FREE: "toll_free", PhoneNumberType.MOBILE: "mobile"}.get(
        phonenumbers.number_type(parsed), "local")
    try:
        found = getattr(client.available_phone_numbers(country), kind).list(
            contains=phone_number.lstrip("+"), voice_enabled=True, limit=SEARCH_CANDIDATES)
    except TwilioException as error:
        if answer_of(error).status == NOT_FOUND or answer_of(error).code == NO_NUMBERS_IN_AREA:
            return False
        raise
    return any(candidate.phone_number == phone_number for candidate in found)


def candidates(client, selection: dict[str, Any], limit: int = SEARCH_CANDIDATES) -> list:
    """Voice-capable local numbers for sale that match a `search` selection."""
    criteria = {key: selection[key] for key in ("area_code", "contains") if selection.get(key)}
    try:
        return client.available_phone_numbers(selection["country"]).local.list(
            voice_enabled=True, limit=limit, **criteria)
    except TwilioException as error:
        if answer_of(error).code != NO_NUMBERS_IN_AREA:
            raise
        return []


def search_exhausted(selection: dict[str, Any]) -> str:
    criteria = {key: selection[key] for key in ("area_code", "contains") if selection.get(key)}
    wanted = f"country {selection['country']}" + "".join(f", {key} {value}" for key, value in criteria.items())
    return (f"No voice-capable local number is available for {wanted}. Widen callmask:phoneNumber.search (drop "
            "areaCode or contains), or pick a number.")


def search_and_buy(client, selection: dict[str, Any], friendly_name: str):
    for candidate in candidates(client, selection):
        try:
            return purchase(client, candidate.phone_number, friendly_name)
        except NumberUnavailable:
            # Sold meanwhile, perhaps to this stack's own earlier purchase that completed late.
            ours = find_by_friendly_name(client, friendly_name)
            if ours is not None:
                return ours
    raise NumberError(search_exhausted(selection))


class PhoneNumber(Resource, module="twilio", name="PhoneNumber"):
    """An IncomingPhoneNumber owned by the stack. Outputs: `sid`, `phone_number`, `purchased`, and
    `voice_before`, its voice settings when the stack took it."""

    sid: pulumi.Output[str]
    phone_number: pulumi.Output[str]
    purchased: pulumi.Output[bool]
    voice_before: pulumi.Output[dict]

    def __init__(self, name: str, *, selection: dict[str, str], friendly_name: str, release_on_destroy: bool,
                 opts: pulumi.ResourceOptions | None = None):
        props = {"selection": selection, "friendly_name": friendly_name, "release_on_destroy": release_on_destroy,
                 "sid": None, "phone_number": None, "purchased": None, "voice_before": None}
        super().__init__(PhoneNumberProvider(), name, props, opts)
