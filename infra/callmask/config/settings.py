"""Typed stack settings: the one place where every `callmask:*` config key is validated.

Values arrive either as the Pulumi engine passes them (strings, JSON for lists and objects) or as
YAML values read from stack files; both are accepted. Errors name the key and what is expected and
never echo a PIN.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from callmask.config import destinations

NAMESPACE = "callmask"
FLOW_OWN_NUMBER = "{{flow.channel.address}}"

E164 = re.compile(r"\+[1-9]\d{7,14}")
PHONE_NUMBER_SID = re.compile(r"PN[0-9a-fA-F]{32}")
FLOW_SID = re.compile(r"FW[0-9a-fA-F]{32}")
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
VOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ISO_COUNTRY = re.compile(r"[A-Z]{2}")
AREA_CODE = re.compile(r"\d{3}")
CONTAINS = re.compile(r"[0-9A-Za-z*]{2,16}")

HTTPS_URL = re.compile(r"https://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s]*)?")
MAX_DAILY_USD = 1_000_000

LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
DIGIT_RUN = re.compile(r"\d{4}")
PIN_CHECKS = ("studio", "function")

MIN_PIN_LENGTH = 6
MAX_PIN_LENGTH = 12
MAX_PROMPT_LENGTH = 4096


@dataclass(frozen=True)
class Prompts:
    """What the caller hears; every prompt has a default."""

    greeting: str = "Welcome. Please enter your PIN, followed by the pound key."
    invalidPin: str = "Sorry, that PIN is not valid. Goodbye."
    pinRetry: str = "That PIN is not valid. Enter your PIN again, then press pound."
    locked: str = "This line is not available from your phone right now. Goodbye."
    noInput: str = "We did not receive any input. Goodbye."
    dialPrompt: str = "Enter the number to call, including the country code, followed by the pound key."
    invalidNumber: str = "Sorry, that number cannot be dialed from this line. Goodbye."
    goodbye: str = "The call has ended. Goodbye."


PROMPT_KEYS = tuple(Prompts.__dataclass_fields__)


@dataclass(frozen=True)
class NumberSelection:
    """How the stack picks its phone number: buy or adopt `number`, `search` then buy, or adopt `sid`."""

    mode: Literal["number", "search", "sid"]
    number: str | None = None
    sid: str | None = None
    country: str | None = None
    area_code: str | None = None
    contains: str | None = None

    def as_input(self) -> dict[str, str]:
        """The selection as a resource input: only the keys that are set."""
        fields = {"mode": self.mode, "number": self.number, "sid": self.sid, "country": self.country,
                  "area_code": self.area_code, "contains": self.contains}
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True)
class SpendAlert:
    """A daily alarm on the account's outbound call spend: Twilio calls `callback_url` once it passes."""

    daily_usd: str  # as Twilio takes a trigger value: a decimal number of US dollars, e.g. "25.00"
    callback_url: str


@dataclass(frozen=True)
class PinGuard:
    """How PIN guessing is limited (`callmask:pinGuard`). attempts_per_call holds in both PIN-check modes;
    the rest (lockouts per caller and alerts) needs the Function's counters (pinCheck function)."""

    attempts_per_call: int = 3
    lock_after: int = 5
    window_minutes: int = 15
    lock_minutes: int = 15
    alert_after: int = 20
    alert_url: str | None = None
    enabled: bool = True  # lockouts and alerts (function mode); false: attempts per call only
    function_only: tuple[str, ...] = ()  # the keys set that only pinCheck function uses (said by a studio preview)

    def policy(self) -> dict[str, int]:
        """What the Function's code holds (non-secret; the alert URL is a Function variable)."""
        return {"lockAfter": self.lock_after, "windowMinutes": self.window_minutes, "lockMinutes": self.lock_minutes,
                "alertAfter": self.alert_after}


GUARD_KEYS = {  # key -> (PinGuard's field, low, high): the whole numbers it takes
    "attemptsPerCall": ("attempts_per_call", 1, 5), "lockAfter": ("lock_after", 2, 100),
    "windowMinutes": ("window_minutes", 1, 1440), "lockMinutes": ("lock_minutes", 1, 1440),
    "alertAfter": ("alert_after", 1, 10_000),
}
LOCAL_ALERT_URL = re.compile(r"http://(127\.0\.0\.1|localhost)(:\d{1,5})?(/[^\s]*)?")


@dataclass(frozen=True)
class LineSettings:
    pins: tuple[str, ...]
    pin_length: int
    language: str
    voice: str
    gather_timeout: int
    dial_timeout: int
    prompts: Prompts
    allowed_countries: tuple[str, ...]
    allowed_number_types: tuple[str, ...]
    caller_id: str
    phone_number: NumberSelection
    release_number_on_destroy: bool
    test_users: tuple[str, ...] = ()
    publish: bool = True
    spend_alert: SpendAlert | None = None
    dialing_permissions: str = "check"
    pin_check: str = "studio"  # where the PIN is checked: in the flow, or by the line's Twilio Function
    pin_labels: tuple[str, ...] = ()  # one per PIN, in order: the map's labels, or pins[0], pins[1], ...
    flow_sid: str | None = None  # a Console-built flow the stack took over (`callmask adopt`), else None
    pin_guard: PinGuard = PinGuard()

    @property
    def guards_callers(self) -> bool:
        """Lockouts and alerts run: the Function checks the PIN and the guard is on."""
        return self.checks_pin_in_function and self.pin_guard.enabled

    @property
    def checks_pin_in_function(self) -> bool:
        return self.pin_check == "function"

    def labeled_pins(self) -> dict[str, str]:
        """label -> PIN (secret): what the Function's digests are made from."""
        return dict(zip(self.pin_labels or list_labels(len(self.pins)), self.pins))

    def flow_values(self) -> dict[str, Any]:
        """The non-secret values that fill the flow template's placeholders. In function mode the Function
        says the greeting and gathers the PIN, so the flow has neither."""
        values: dict[str, Any] = {f"prompts.{key}": getattr(self.prompts, key) for key in PROMPT_KEYS}
        if self.checks_pin_in_function:
            del values["prompts.greeting"], values["prompts.pinRetry"]
            values["pinCheckTimeout"] = self.pin_check_timeout
        else:
            del values["prompts.locked"]
            values["pinLength"] = self.pin_length
            values["attemptsPerCall"] = self.pin_guard.attempts_per_call
        values.update(
            language=self.language,
            voice=self.voice,
            gatherTimeout=self.gather_timeout,
            dialTimeout=self.dial_timeout,
            numberPattern=destinations.number_pattern(self.allowed_countries, self.allowed_number_types),
            destinations=destinations.describe(self.allowed_countries, self.allowed_number_types),
            callerId=self.caller_id,
        )
        return values

    @property
    def pin_check_timeout(self) -> int:
        """Seconds the flow waits for the Function's verdict: each attempt's prompt, gather and check, with
        room to spare; far below Studio's default of four hours, so a Function that never answers leaves
        no execution waiting."""
        return PIN_CHECK_TIMEOUT_BASE + self.gather_timeout * self.pin_guard.attempts_per_call

    def function_values(self) -> dict[str, Any]:
        """What the PIN-check Function needs besides the digests (non-secret: it shows in previews)."""
        values = {"pinLength": self.pin_length, "gatherTimeout": self.gather_timeout, "voice": self.voice,
                  "language": self.language, "greeting": self.prompts.greeting, "retryPrompt": self.prompts.pinRetry,
                  "attemptsPerCall": self.pin_guard.attempts_per_call}
        if self.guards_callers:
            values["guard"] = self.pin_guard.policy()
        return values


PIN_CHECK_TIMEOUT_BASE = 90


def list_labels(count: int) -> list[str]:
    """The labels of PINs given as a list: their config keys."""
    return [f"pins[{index}]" for index in range(count)]


def shown(value: Any) -> str:
    """A value as an error message quotes it: short, one line (never used for PINs)."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "a number of thousands of digits"
    except RecursionError:  # lists or maps nested thousands deep
        return f"a {type(value).__name__} nested too deep to print"
    return text if len(text) <= 60 else text[:57] + "..."


class SettingsError(ValueError):
    """One or more config values are wrong; the message has one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in problems))


KNOWN_KEYS = (
    "pins", "pinLength", "language", "voice", "gatherTimeout", "dialTimeout", "prompts",
    "allowedCountries", "allowedNumberTypes", "callerId", "phoneNumber", "releaseNumberOnDestroy", "testUsers",
    "publish", "spendAlert", "dialingPermissions", "pinCheck", "flowSid", "pinGuard",
)
DIALING_PERMISSION_MODES = ("check", "atLeast", "exactly", "off")
REPLACED_KEYS = ("allowedCountryCodes",)


TWILIO_KEYS = ("accountSid", "authToken", "apiKey", "apiSecret")
NAMESPACES = (NAMESPACE, "twilio")


def other_key_problems(keys: Iterable[object]) -> list[str]:
    """The stack's keys outside `callmask:`: only the four `twilio:` credentials, and no namespace that
    looks like a misspelling of `callmask` or `twilio` (Pulumi would silently ignore it)."""
    problems = []
    for key in keys:
        namespace, _, name = str(key).partition(":")
        if namespace == "twilio":
            if name not in TWILIO_KEYS:
                problems.append(f"{key}: unknown key; expected twilio:{', twilio:'.join(TWILIO_KEYS)}")
        elif namespace not in NAMESPACES and (close := difflib.get_close_matches(namespace, NAMESPACES, 1, 0.7)):
            problems.append(f"{key}: unknown namespace {shown(namespace)}; did you mean {close[0]}:{name}?")
    return problems


def parse_settings(raw: Mapping[str, Any], other_keys: Iterable[object] = ()) -> LineSettings:
    """Validate the `callmask` namespace (keys without the `callmask:` prefix) into LineSettings, and the
    names of the stack's other keys.

    Raises SettingsError listing every problem at once.
    """
    reader = _Reader(raw)
    reader.problems += other_key_problems(other_keys)
    for key in sorted(map(str, set(raw) - set(KNOWN_KEYS) - set(REPLACED_KEYS))):
        reader.problem(key, f"unknown key; expected one of {', '.join(KNOWN_KEYS)}")
    pin_length = reader.integer("pinLength", MIN_PIN_LENGTH, MAX_PIN_LENGTH)
    pins, labels = reader.pins(pin_length)
    settings = LineSettings(
        pins=pins,
        pin_labels=labels,
        pin_check=reader.choice("pinCheck", PIN_CHECKS, "studio"),
        pin_length=pin_length or 0,
        language=reader.matching("language", LANGUAGE, "a language tag such as en-US"),
        voice=reader.matching("voice", VOICE, "a Twilio voice name such as Polly.Joanna"),
        gather_timeout=reader.integer("gatherTimeout", 1, 30) or 0,
        dial_timeout=reader.integer("dialTimeout", 5, 600) or 0,
        prompts=reader.prompts(),
        allowed_countries=reader.countries(),
        allowed_number_types=reader.number_types(),
        caller_id=reader.caller_id(),
        phone_number=reader.phone_number(),
        release_number_on_destroy=reader.boolean("releaseNumberOnDestroy"),
        test_users=reader.test_users(),
        publish=reader.boolean("publish", default=True),
        spend_alert=reader.spend_alert(),
        dialing_permissions=reader.choice("dialingPermissions", DIALING_PERMISSION_MODES, "check"),
        flow_sid=reader.flow_sid(),
        pin_guard=reader.pin_guard(),
    )
    if not settings.publish and not settings.test_users and not any(
            problem.startswith(f"{NAMESPACE}:testUsers") for problem in reader.problems):
        reader.problem("publish", "is false, so each change becomes a draft only test users reach, but "
                       "callmask:testUsers is empty: list the numbers that try drafts, or set publish to true")
    if reader.problems:
        raise SettingsError(reader.problems)
    return settings


def _decode(value: Any, kind: type) -> Any:
    """Engine config values are strings; lists and objects are JSON text."""
    if isinstance(value, str) and kind in (list, dict):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
    return value


class _Reader:
    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw
        self.problems: list[str] = []

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{NAMESPACE}:{key}: {text}")

    def present(self, key: str) -> Any:
        if key not in self.raw or self.raw[key] is None:
            self.problem(key, "is required but not set")
            return None
        return self.raw[key]

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self.present(key)
        if value is None:
            return None
        number = whole_number(value, low, high)
        if number is None:
            self.problem(key, f"expected a whole number from {low} to {high}, got {shown(as_number(value))}")
        return number

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self.present(key) if default is None else self.raw.get(key, default)
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            if value is not None:
                self.problem(key, f"expected true or false, got {shown(value)}")
            return False
        return value

    def matching(self, key: str, pattern: re.Pattern[str], expected: str) -> str:
        value = self.present(key)
        if value is None:
            return ""
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.problem(key, f"expected {expected}, got {shown(value)}")
            return ""
        return value

    def pins(self, pin_length: int | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(PINs, labels): a list of PINs, or a map of label -> PIN. A PIN is never echoed."""
        value = _decode(self.present("pins"), dict)
        if value is None:
            return (), ()
        if isinstance(value, dict) and value:
            return self.labeled_pins(value, pin_length)
        if not isinstance(value, list) or not value:
            self.problem("pins", "expected a non-empty list of PINs, or a map of label -> PIN (set them as secrets, "
                         "see the README)")
            return (), ()
        for index, pin in enumerate(value):
            if reason := pin_problem(pin, pin_length):
                self.problem(f"pins[{index}]", reason)
        texts = tuple(pin for pin in value if isinstance(pin, str))
        if len(set(texts)) != len(texts):
            self.problem("pins", "contains the same PIN more than once")
        return texts, ()

    def labeled_pins(self, value: dict[Any, Any], pin_length: int | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """A map of label -> PIN: labels name whose PIN opened a call, so they show in previews and logs and
        must not hold a PIN or anything like one."""
        labels: list[str] = []
        for position, (label, pin) in enumerate(value.items(), start=1):
            label = str(label)
            # A refused label is named by its position only: it may be a PIN typed in the wrong place.
            if not LABEL.fullmatch(label):
                self.problem("pins", f"label {position} is not a name: a PIN label is a letter, then up to 31 "
                             "letters, digits, '.', '_' or '-' (e.g. callmask:pins.alice)")
            elif DIGIT_RUN.search(label):
                self.problem("pins", f"label {position} holds 4 or more digits in a row, like a PIN or a phone "
                             "number: labels show in previews and logs, so name the person or purpose instead")
            elif label.lower() in (known.lower() for known in labels):
                self.problem(f"pins.{label}", "the label is used twice (labels are compared without case): give "
                             "each PIN its own name")
            else:
                labels.append(label)
                if reason := pin_problem(pin, pin_length):
                    self.problem(f"pins.{label}", reason)
        pins = [pin for pin in value.values() if isinstance(pin, str)]
        if len(set(pins)) != len(pins):
            self.problem("pins", "gives the same PIN under two labels")
        if len(labels) != len(value):
            return (), ()
        return tuple(pins), tuple(labels)

    def test_users(self) -> tuple[str, ...]:
        """E.164 numbers; never echoed (the list may be a secret)."""
        value = _decode(self.raw.get("testUsers", []), list)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem("testUsers", "expected a list of E.164 numbers, e.g. [\"+14155550123\"]")
            return ()
        for index, number in enumerate(value):
            if lost_plus(number):  # never echoed: the list may be a secret
                self.problem(f"testUsers[{index}]", number_lost_plus(f"testUsers[{index}]", "+1..."))
            elif not isinstance(number, str) or not E164.fullmatch(number):
                self.problem(f"testUsers[{index}]", "expected an E.164 number: + then the country code and number, "
                             "digits only, e.g. +14155550123 (quote it in YAML)")
        numbers = tuple(number for number in value if isinstance(number, str) and E164.fullmatch(number))
        if len(set(numbers)) != len(numbers):
            self.problem("testUsers", "lists a number more than once")
        return numbers

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw.get(key, default)
        if value in choices:
            return value
        close = difflib.get_close_matches(str(value), choices, 1, 0.6) if isinstance(value, str) else []
        hint = f"; did you mean {close[0]}?" if close else ""
        self.problem(key, f"expected one of {', '.join(choices)}, got {shown(value)}{hint}")
        return default

    def spend_alert(self) -> SpendAlert | None:
        value = _decode(self.raw.get("spendAlert"), dict)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem("spendAlert", 'expected an object {dailyUsd: 25, callbackUrl: "https://..."}')
            return None
        for key in sorted(map(str, set(value) - {"dailyUsd", "callbackUrl"})):
            self.problem(f"spendAlert.{key}", "unknown key; expected dailyUsd and callbackUrl")
        amount, url = value.get("dailyUsd"), value.get("callbackUrl")
        usd = _usd(amount)
        if usd is None:
            self.problem("spendAlert.dailyUsd", f"expected a positive number of US dollars such as 25, got {shown(amount)}")
        if not isinstance(url, str) or not HTTPS_URL.fullmatch(url):
            self.problem("spendAlert.callbackUrl", f"expected an https:// URL that Twilio can call, got {shown(url)}")
        return SpendAlert(usd, url) if usd and isinstance(url, str) and HTTPS_URL.fullmatch(url) else None

    def prompts(self) -> Prompts:
        value = _decode(self.raw.get("prompts", {}), dict)
        if not isinstance(value, dict):
            self.problem("prompts", f"expected an object with keys {', '.join(PROMPT_KEYS)}")
            return Prompts()
        chosen = {}
        for key, text in value.items():
            if key not in PROMPT_KEYS:
                self.problem(f"prompts.{key}", f"unknown prompt; expected one of {', '.join(PROMPT_KEYS)}")
            elif not isinstance(text, str) or not text.strip() or len(text) > MAX_PROMPT_LENGTH:
                self.problem(f"prompts.{key}", f"expected non-empty text of at most {MAX_PROMPT_LENGTH} characters")
            elif "${" in text:
                self.problem(f"prompts.{key}", "must not contain `${`: that marks a deploy-time placeholder")
            else:
                chosen[key] = text
        return Prompts(**chosen)

    def countries(self) -> tuple[str, ...]:
        if "allowedCountryCodes" in self.raw:
            codes = _decode(self.raw["allowedCountryCodes"], list)
            suggestion = ", ".join(destinations.countries_for_codes(codes if isinstance(codes, list) else [])) or "US"
            self.problem("allowedCountryCodes", "is replaced by allowedCountries, ISO countries (a calling code such as "
                         f"1 is shared by 25 countries): set callmask:allowedCountries to [{suggestion}] (and every other "
                         "country you mean) and remove allowedCountryCodes")
        value = _decode(self.present("allowedCountries"), list)
        if value is None:
            return ()
        if not isinstance(value, list) or not value:
            self.problem("allowedCountries", "expected a non-empty list of ISO countries, e.g. [US, CA]")
            return ()
        for country in value:
            if not isinstance(country, str):
                self.problem("allowedCountries", f"{shown(country)} is not text: quote every country, e.g. [\"US\", \"NO\"] "
                             "(YAML reads a bare NO as false)")
            elif not destinations.is_country(country):
                self.problem("allowedCountries", f"{shown(country)} is not an ISO 3166 country code, e.g. US, GB")
        if len({shown(country) for country in value}) != len(value):
            self.problem("allowedCountries", "lists a country more than once")
        return tuple(country for country in value if destinations.is_country(country))

    def number_types(self) -> tuple[str, ...]:
        value = _decode(self.present("allowedNumberTypes"), list)
        if value is None:
            return ()
        known = ", ".join(destinations.NUMBER_TYPES)
        if not isinstance(value, list) or not value:
            self.problem("allowedNumberTypes", f"expected a non-empty list of number types from {known}")
            return ()
        chosen = [kind for kind in value if isinstance(kind, str) and kind in destinations.NUMBER_TYPES]
        for kind in value:
            if kind not in chosen:
                self.problem("allowedNumberTypes", f"{shown(kind)} is not a number type; expected some of {known}")
        return tuple(dict.fromkeys(chosen))

    def caller_id(self) -> str:
        value = self.raw.get("callerId") or ""
        if value == "":
            return FLOW_OWN_NUMBER
        if lost_plus(value, whole_key=True):
            self.problem("callerId", number_lost_plus("callerId", f"+{value}"))
        elif not isinstance(value, str) or not E164.fullmatch(value):
            self.problem("callerId", f"expected an E.164 number such as +14155550123, or empty for the line's own number; got {shown(value)}")
        return value

    def phone_number(self) -> NumberSelection:
        value = _decode(self.present("phoneNumber"), dict)
        if value is None:
            return NumberSelection(mode="number")
        chosen = sorted(set(value) & {"number", "search", "sid"}) if isinstance(value, dict) else []
        if not isinstance(value, dict) or len(chosen) != 1 or len(value) != 1:
            self.problem("phoneNumber", 'expected exactly one of {number: "+1..."}, {search: {country, areaCode?, contains?}} or {sid: "PN..."}')
            return NumberSelection(mode="number")
        mode = chosen[0]
        if mode == "number":
            if lost_plus(value["number"]):
                self.problem("phoneNumber.number", number_lost_plus("phoneNumber.number", f"+{value['number']}"))
            elif not isinstance(value["number"], str) or not E164.fullmatch(value["number"]):
                self.problem("phoneNumber.number", f"expected an E.164 number such as +14155550123, got {shown(value['number'])}")
            return NumberSelection(mode="number", number=value["number"])
        if mode == "sid":
            if not isinstance(value["sid"], str) or not PHONE_NUMBER_SID.fullmatch(value["sid"]):
                self.problem("phoneNumber.sid", f"expected a phone number SID (PN followed by 32 hex digits), got {shown(value['sid'])}")
            return NumberSelection(mode="sid", sid=value["sid"])
        return self.number_search(value["search"])

    def flow_sid(self) -> str | None:
        """The Studio flow the stack adopted (`callmask adopt`), kept in place instead of a new one."""
        value = self.raw.get("flowSid")
        if value in (None, ""):
            return None
        if not isinstance(value, str) or not FLOW_SID.fullmatch(value):
            self.problem("flowSid", f"expected a Studio flow SID (FW followed by 32 hex digits), got {shown(value)}")
            return None
        return value

    def pin_guard(self) -> PinGuard:
        value = _decode(self.raw.get("pinGuard", {}), dict)
        if not isinstance(value, dict):
            self.problem("pinGuard", "expected an object {attemptsPerCall, lockAfter, windowMinutes, lockMinutes, "
                         "alertAfter, alertUrl, enabled}")
            return PinGuard()
        known = (*GUARD_KEYS, "alertUrl", "enabled")
        for key in sorted(map(str, set(value) - set(known))):
            self.problem(f"pinGuard.{key}", f"unknown key; expected one of {', '.join(known)}")
        chosen = {}
        for key, (name, low, high) in GUARD_KEYS.items():
            if key not in value:
                continue
            if (number := whole_number(value[key], low, high)) is None:
                self.problem(f"pinGuard.{key}", f"expected a whole number from {low} to {high}, "
                             f"got {shown(as_number(value[key]))}")
            else:
                chosen[name] = number
        url = value.get("alertUrl")
        if url is not None and not (isinstance(url, str) and any(p.fullmatch(url) for p in (HTTPS_URL, LOCAL_ALERT_URL))):
            given = "a URL that is not one" if isinstance(url, str) else "a value that is not text"  # never echoed
            self.problem("pinGuard.alertUrl", "expected an https:// URL the Function can POST alerts to (or http:// to "
                         f"127.0.0.1 or localhost for local runs), got {given}")
            url = None
        enabled = value.get("enabled", True)
        if enabled in ("true", "false"):
            enabled = enabled == "true"
        if not isinstance(enabled, bool):
            self.problem("pinGuard.enabled", f"expected true or false, got {shown(enabled)}")
            enabled = True
        function_only = tuple(sorted(map(str, set(value) - {"attemptsPerCall", "enabled"})))
        return PinGuard(**chosen, alert_url=url, enabled=enabled, function_only=function_only)

    def number_search(self, search: Any) -> NumberSelection:
        if not isinstance(search, dict):
            self.problem("phoneNumber.search", "expected an object {country, areaCode?, contains?}")
            return NumberSelection(mode="search")
        for key in sorted(map(str, set(search) - {"country", "areaCode", "contains"})):
            self.problem(f"phoneNumber.search.{key}", "unknown key; expected country, areaCode or contains")
        country = search.get("country")
        if not isinstance(country, str) or not ISO_COUNTRY.fullmatch(country):
            self.problem("phoneNumber.search.country", f"expected an ISO 3166 country code such as US, got {shown(country)}")
        area_code = search.get("areaCode")
        if isinstance(area_code, (int, float)) and not isinstance(area_code, bool):
            self.problem("phoneNumber.search.areaCode", f"is the number {area_code}, not text: quote it, e.g. "
                         'areaCode: "0415" (YAML reads 0415 as the octal number 269)')
            area_code = None
        elif area_code is not None and (not isinstance(area_code, str) or not AREA_CODE.fullmatch(area_code)):
            self.problem("phoneNumber.search.areaCode", f"expected a 3-digit area code as text, got {shown(area_code)}")
        contains = search.get("contains")
        if contains is not None and (not isinstance(contains, str) or not CONTAINS.fullmatch(contains)):
            self.problem("phoneNumber.search.contains", f"expected 2 to 16 digits, letters or * wildcards, got {shown(contains)}")
        return NumberSelection(mode="search", country=country, area_code=area_code, contains=contains)


def as_number(value: Any) -> Any:
    """The engine's text of a whole number ("15") as that number; anything else as it is."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) < 10:
        return int(value)
    return value


def whole_number(value: Any, low: int, high: int) -> int | None:
    """A whole number from low to high (YAML's or the engine's text of one), else None."""
    value = as_number(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _usd(amount: Any) -> str | None:
    """A positive amount of dollars as Twilio takes it ("25.00"), or None when it is not one."""
    if isinstance(amount, bool):
        return None
    try:
        number = float(amount) if isinstance(amount, (int, float, str)) else None
    except ValueError:
        return None
    if number is None or not 0 < number <= MAX_DAILY_USD or round(number, 2) != number:
        return None
    return f"{number:.2f}"


def lost_plus(value: Any, whole_key: bool = False) -> bool:
    """A phone number read as a number: `pulumi config set --path` (or bare YAML) turns +14155550101 into
    14155550101, which the engine hands a program as the text "14155550101" where it is a `whole_key`."""
    digits = str(value) if isinstance(value, int) and not isinstance(value, bool) else value if whole_key else None
    return isinstance(digits, str) and digits.isascii() and digits.isdigit() and E164.fullmatch(f"+{digits}") is not None


def number_lost_plus(key: str, example: str) -> str:
    return (f"is a number, not text: the leading + was lost (`pulumi config set --path` reads +1... as a number); "
            f"set it as text: pulumi config set --path --type string '{NAMESPACE}:{key}' '{example}'")


def pin_problem(pin: Any, pin_length: int | None) -> str | None:
    """Why a PIN is refused, in words that never repeat the PIN."""
    if isinstance(pin, int) and not isinstance(pin, bool):
        return ("is a number, not text (a number loses its leading zeros): set each PIN as a secret (a secret is kept as text), "
                "pulumi config set --path --secret 'callmask:pins[N]' (type the PIN when asked)")
    if not isinstance(pin, str) or not pin.isascii() or not pin.isdigit():
        return "a PIN must be a string of digits 0-9"
    if pin_length is not None and len(pin) != pin_length:
        return f"has {len(pin)} digits; every PIN must have exactly pinLength ({pin_length}) digits"
    if len(pin) < MIN_PIN_LENGTH:
        return f"has {len(pin)} digits; a PIN needs at least {MIN_PIN_LENGTH}"
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:])}
    if steps == {0}:
        return "is one digit repeated; choose a PIN that is hard to guess"
    if steps in ({1}, {9}):
        return "is a run of ascending or descending digits (9 to 0 counts as a step); choose a PIN that is hard to guess"
    if any(pin == (pin[:period] * len(pin))[:len(pin)] for period in range(2, len(pin) // 2 + 1)):
        return "repeats a short pattern; choose a PIN that is hard to guess"
    return None
