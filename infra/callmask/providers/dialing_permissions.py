"""Dialing permissions: the account's voice dialing permissions (Voice Geo Permissions) against the line's
destinations. They belong to the account, not the line, so callmask touches them only when the stack says so:

- `check` (the default) only reads: `check` (so `preview` and `up`, before anything is created) fails naming
  each allowed country whose ordinary ranges are disabled, and lists as `warnings` the risky ranges the
  account enables there; credentials that may not read them (403), or none (a pull-request preview), only
  warn.
- `atLeast` enables the ordinary ranges of every allowed country and disables nothing.
- `exactly` makes the account allow exactly the line's destinations (ordinary ranges of the allowed
  countries, high-risk special ranges only where the line allows premium or shared-cost numbers, toll-fraud
  ranges never), every other country off: for an account dedicated to the line.

The settings from before callmask's first write are kept (`before`), with what it set (`applied`); `delete`
puts back each country that still holds callmask's values and leaves alone one changed since. A change is one
BulkCountryUpdates call, read back to confirm; after a lost answer the account is read, never written blind.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult
from twilio.base.exceptions import TwilioException

from callmask.providers.twilio_provider import DetailedDiff, ProviderError, TwilioProvider, answer_of, twilio_operation
from callmask.twilio import twilio_api
from callmask.twilio.dialing_permissions import entry_for, needs_high_risk, permission_entries

FLAGS = ("low_risk_numbers_enabled", "high_risk_special_numbers_enabled", "high_risk_tollfraud_numbers_enabled")
WRITING_MODES = ("atLeast", "exactly")
FORBIDDEN = 403


class PermissionsRefused(ProviderError):
    pass


def read_entries(client) -> dict[str, dict[str, Any]]:
    """Every permission entry: ISO code → its three flags and country codes."""
    return {entry.iso_code: {"country_codes": entry.country_codes or [],
                             **{flag: bool(getattr(entry, flag)) for flag in FLAGS}}
            for entry in permission_entries(client)}


def flags_of(entry: dict[str, Any]) -> dict[str, bool]:
    return {flag: entry[flag] for flag in FLAGS}


def governing(entries: dict[str, dict[str, Any]], countries: list[str]) -> dict[str, str | None]:
    """Each of the line's countries → the entry that governs it (Canada: the US entry), or None."""
    codes = {iso: entry["country_codes"] for iso, entry in entries.items()}
    return {country: entry_for(country, codes) for country in countries}


def needed_entries(entries: dict[str, dict[str, Any]], countries: list[str]) -> set[str]:
    return {iso for iso in governing(entries, countries).values() if iso}


def wanted(mode: str, entries: dict[str, dict[str, Any]], needed: set[str], high_risk: bool) -> dict[str, dict]:
    """The flags each entry should have after a write: only the entries that must change."""
    if mode == "atLeast":
        target = {iso: {**flags_of(entries[iso]), FLAGS[0]: True} for iso in needed}
    else:
        target = {iso: {FLAGS[0]: iso in needed, FLAGS[1]: iso in needed and high_risk, FLAGS[2]: False}
                  for iso in entries}
    return {iso: flags for iso, flags in target.items() if flags != flags_of(entries[iso])}


def problems(entries: dict[str, dict[str, Any]], countries: list[str], high_risk: bool) -> tuple[list[str], list[str]]:
    """(blocked countries, warnings) of the account for the line, as `check` reports them."""
    entry_of = governing(entries, countries)
    blocked = [country for country, iso in entry_of.items() if iso is None or not entries[iso][FLAGS[0]]]
    warnings = []
    for iso in sorted({iso for iso in entry_of.values() if iso}):
        if entries[iso][FLAGS[2]]:
            warnings.append(f"{iso}: the account enables toll-fraud ranges; turn them off in the Console")
        if entries[iso][FLAGS[1]] and not high_risk:
            warnings.append(f"{iso}: the account enables high-risk special ranges, which the line does not need")
    return blocked, warnings


def describe(changes: dict[str, dict[str, bool]]) -> list[str]:
    names = {FLAGS[0]: "ordinary", FLAGS[1]: "high-risk special", FLAGS[2]: "toll fraud"}
    return [f"{iso}: " + ", ".join(f"{names[flag]} {'on' if on else 'off'}" for flag, on in flags.items())
            for iso, flags in sorted(changes.items())]


class DialingPermissionsProvider(TwilioProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Reads the account (also in a preview): `check` mode refuses a blocked country here, before
        anything is created; the other modes list what `up` would change (`planned`)."""
        news = {**news, "planned": [], "warnings": []}
        try:
            entries = read_entries(self.client())
        except twilio_api.MissingCredentials:
            news["warnings"] = ["dialing permissions not checked: no Twilio credentials here (a pull-request "
                                "preview has none); `pulumi up` checks them"]
            return CheckResult(news, [])
        except TwilioException as error:
            answer = answer_of(error)
            if answer.status == FORBIDDEN and news["mode"] == "check":
                news["warnings"] = ["dialing permissions not checked: these credentials may not read them (HTTP "
                                    "403), so a disabled country or enabled toll-fraud ranges go unseen"]
                return CheckResult(news, [])
            return CheckResult(news, [CheckFailure("mode", f"cannot read the account's voice dialing permissions: "
                                                           f"{answer.describe()}")])
        high_risk = needs_high_risk(news["number_types"])
        blocked, news["warnings"] = problems(entries, news["countries"], high_risk)
        if news["mode"] == "exactly":
            news["warnings"] = []  # the ranges warned of are the ones it turns off
        missing = [country for country, iso in governing(entries, news["countries"]).items() if iso is None]
        if (news["mode"] == "check" and blocked) or missing:
            blocked = blocked if news["mode"] == "check" else missing
            return CheckResult(news, [CheckFailure("countries", blocked_message(blocked))])
        if news["mode"] in WRITING_MODES:
            needed = needed_entries(entries, news["countries"])
            news["planned"] = describe(wanted(news["mode"], entries, needed, high_risk))
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("mode", "countries", "number_types") if olds.get(key) != news.get(key)]
        changed += ["planned"] if news.get("planned") else []
        changed += ["drift"] if olds.get("drift") else []
        changed += ["warnings"] if olds.get("warnings") != news.get("warnings") else []
        return DetailedDiff(changed)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"dialing-permissions-{props['stack']}", self.apply(props, {}))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self.apply(news, olds))

    def apply(self, props: dict[str, Any], olds: dict[str, Any]) -> dict[str, Any]:
        before, applied = dict(olds.get("before") or {}), dict(olds.get("applied") or {})
        outputs = {**props, "planned": [], "before": before, "applied": applied, "drift": ""}
        if props["mode"] not in WRITING_MODES:
            return outputs
        client = self.client()
        with twilio_operation("DialingPermissions", "update"):
            entries = read_entries(client)
            entry_of = governing(entries, props["countries"])
            needed = {iso for iso in entry_of.values() if iso}
            if missing := [country for country, iso in entry_of.items() if iso is None]:
                raise PermissionsRefused(f"DialingPermissions: {blocked_message(missing)}")
            changes = wanted(props["mode"], entries, needed, needs_high_risk(props["number_types"]))
            if changes:
                # The whole account as it was before callmask's first write (a country callmask sets only later,
                # say after a Console edit, still goes back to that).
                before.update({iso: flags_of(entry) for iso, entry in entries.items() if iso not in before})
                applied.update(changes)
                try:
                    write(client, changes)
                except TwilioException as error:
                    if not answer_of(error).unclear:
                        raise
                    # Twilio may have acted: the settings from before are kept in the state all the same, so
                    # destroy can put them back; the next `up` checks and finishes the change.
                    outputs["drift"] = (f"not confirmed ({answer_of(error).describe()}): "
                                        f"{'; '.join(describe(changes))}; `pulumi up` again finishes it")
        return outputs

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if props.get("mode") not in WRITING_MODES:
            return ReadResult(id_, props)
        client = self.client()
        with twilio_operation("DialingPermissions", "read"):
            entries = read_entries(client)
        needed = needed_entries(entries, props["countries"])
        changes = wanted(props["mode"], entries, needed, needs_high_risk(props["number_types"]))
        drift = f"changed outside callmask: {'; '.join(describe(changes))} would be set again" if changes else ""
        return ReadResult(id_, {**props, "drift": drift})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        applied, before = props.get("applied") or {}, props.get("before") or {}
        if not applied:
            return
        client = self.client()
        with twilio_operation("DialingPermissions", "delete"):
            entries = read_entries(client)
            # Only a country that still holds what callmask set goes back; one changed since is left alone.
            restore = {iso: before[iso] for iso, flags in applied.items()
                       if iso in entries and iso in before and flags_of(entries[iso]) == flags}
            if restore:
                write(client, restore)


def blocked_message(countries: list[str]) -> str:
    return (f"calls to {', '.join(countries)} would fail (Twilio error 13227): the account's voice dialing "
            "permissions disable ordinary numbers there. Enable them in the Console (Voice > Settings > Geo "
            "permissions) or set callmask:dialingPermissions to atLeast; `callmask account` shows them all")


def write(client, changes: dict[str, dict[str, bool]]) -> None:
    """One BulkCountryUpdates call, read back to confirm. After an answer that did not come, the account is
    read and only what is still not set is sent again; after a clear answer, Twilio's word stands."""
    for attempt in range(2):
        request = [{"iso_code": iso, **{flag: str(on).lower() for flag, on in flags.items()}}
                   for iso, flags in sorted(changes.items())]
        try:
            client.voice.v1.dialing_permissions.bulk_country_updates.create(update_request=json.dumps(request))
        except TwilioException as error:
            if not answer_of(error).unclear or attempt:
                raise
            entries = read_entries(client)  # what the lost request did
        else:
            try:
                entries = read_entries(client)
            except TwilioException:
                return
        changes = {iso: flags for iso, flags in changes.items() if flags_of(entries[iso]) != flags}
        if not changes:
            return
    raise ProviderError(f"DialingPermissions: Twilio did not apply {'; '.join(describe(changes))}. "
                        "Run `pulumi up` again.")


class DialingPermissions(Resource, module="twilio", name="DialingPermissions"):
    """The account's voice dialing permissions as the stack's mode says. Outputs: `warnings`, `planned`,
    `before`, `applied`, `drift`."""

    warnings: pulumi.Output[list[str]]
    drift: pulumi.Output[str]

    def __init__(self, name: str, *, stack: str, mode: str, countries: list[str], number_types: list[str],
                 opts: pulumi.ResourceOptions | None = None):
        props = {"stack": stack, "mode": mode, "countries": countries, "number_types": number_types,
                 "warnings": None, "planned": None, "before": None, "applied": None, "drift": None}
        super().__init__(DialingPermissionsProvider(), name, props, opts)
