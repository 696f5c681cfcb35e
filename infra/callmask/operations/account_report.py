"""`callmask account`: what the account's voice dialing permissions (Voice Geo Permissions) allow, against
what the stack's line needs. Read-only (the entries are read as callmask.twilio.dialing_permissions reads
them for the DialingPermissions provider)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from twilio.base.exceptions import TwilioException

from callmask.operations.deployed_stack import DeployedStack, StackUnreadable, twilio_failure
from callmask.twilio.dialing_permissions import entry_for, needs_high_risk, permission_entries


@dataclass
class CountryPermission:
    country: str
    entry: str | None  # the permission entry that governs it ("US" for Canada)
    ordinary: bool | None  # low-risk ranges enabled (None: no entry)
    high_risk_special: bool | None
    toll_fraud: bool | None
    needs_high_risk: bool
    verdict: str


@dataclass
class AccountReport:
    countries: list[CountryPermission]
    also_enabled: list[str]  # entries with ordinary ranges on that the line does not need

    @property
    def blocked(self) -> list[str]:
        return [c.country for c in self.countries if c.ordinary is not True]


def read_permissions(stack: DeployedStack) -> list[Any]:
    client = stack.client()
    try:
        return permission_entries(client)
    except TwilioException as error:
        raise twilio_failure(stack.name, "the account's voice dialing permissions", error) from None


def report(entries: list[Any], allowed_countries: tuple[str, ...], number_types: tuple[str, ...]) -> AccountReport:
    by_iso = {entry.iso_code: entry for entry in entries}
    high_risk = needs_high_risk(number_types)
    rows, used = [], set()
    codes = {iso: entry.country_codes for iso, entry in by_iso.items()}
    for country in allowed_countries:
        iso = entry_for(country, codes)
        entry = by_iso.get(iso) if iso else None
        if entry is None:
            rows.append(CountryPermission(country, None, None, None, None, high_risk,
                                          "BLOCKED: the account lists no dialing permission for it"))
            continue
        used.add(entry.iso_code)
        rows.append(CountryPermission(
            country, entry.iso_code, entry.low_risk_numbers_enabled, entry.high_risk_special_numbers_enabled,
            entry.high_risk_tollfraud_numbers_enabled, high_risk, verdict(entry, high_risk)))
    also = sorted(iso for iso, entry in by_iso.items() if entry.low_risk_numbers_enabled and iso not in used)
    return AccountReport(rows, also)


def verdict(entry: Any, high_risk: bool) -> str:
    if not entry.low_risk_numbers_enabled:
        return "BLOCKED: ordinary numbers are disabled, so every call there fails (Twilio error 13227)"
    warnings = []
    if entry.high_risk_tollfraud_numbers_enabled:
        warnings.append("toll-fraud ranges are ENABLED: turn them off")
    if entry.high_risk_special_numbers_enabled and not high_risk:
        warnings.append("high-risk special ranges are enabled, which the line does not need")
    if high_risk and not entry.high_risk_special_numbers_enabled:
        warnings.append("high-risk special ranges are off, so premium or shared-cost numbers fail")
    return "WARNING: " + "; ".join(warnings) if warnings else "ok"


def table(result: AccountReport, stack: str) -> str:
    def mark(value: bool | None) -> str:
        return "-" if value is None else "on" if value else "off"

    header = ("COUNTRY", "ENTRY", "ORDINARY", "HIGH-RISK SPECIAL", "TOLL FRAUD", "VERDICT")
    rows = [(c.country, c.entry or "-", mark(c.ordinary), mark(c.high_risk_special), mark(c.toll_fraud), c.verdict)
            for c in result.countries]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    summary = [f"Stack {stack} dials {', '.join(c.country for c in result.countries)}."]
    if result.blocked:
        summary.append(f"!! Calls to {', '.join(result.blocked)} fail until their ordinary ranges are enabled "
                       "(Console: Voice > Settings > Geo permissions).")
    if result.also_enabled:
        summary.append(f"Also enabled on the account, not needed by this line: {', '.join(result.also_enabled)}.")
    return "\n".join([*lines, "", *summary])


def as_json(result: AccountReport) -> str:
    return json.dumps({"countries": [asdict(c) for c in result.countries], "also_enabled": result.also_enabled},
                      indent=2)


def account(stack: DeployedStack, allowed_countries: tuple[str, ...], number_types: tuple[str, ...],
            as_text: bool = True) -> str:
    if not allowed_countries:
        raise StackUnreadable(f"stack {stack.name} allows no country")
    result = report(read_permissions(stack), allowed_countries, number_types)
    return table(result, stack.name) if as_text else as_json(result)
