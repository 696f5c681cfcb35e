"""The account's voice dialing permissions (Voice Geo Permissions), as `callmask account` and the
DialingPermissions provider both read them.

Twilio lists one permission entry per country, except that the +1 countries share: the "United
States/Canada" entry (iso_code US, country code +1) covers the US and Canada, while every other +1 country
(Jamaica, the Bahamas, ...) has an entry of its own under its area codes. So a country is looked up by its
own ISO code, else by the entry that lists its calling code.
"""

from __future__ import annotations

from typing import Any


PAGE_SIZE = 250
HIGH_RISK_TYPES = ("premiumRate", "sharedCost")  # the number types Twilio puts under high-risk special ranges


def permission_entries(client) -> list[Any]:
    """Every permission entry of the account, every page (the report and the DialingPermissions provider)."""
    return list(client.voice.v1.dialing_permissions.countries.stream(page_size=PAGE_SIZE))


def needs_high_risk(number_types: tuple[str, ...] | list[str]) -> bool:
    return any(kind in HIGH_RISK_TYPES for kind in number_types)


def entry_for(country: str, country_codes: dict[str, list[str]]) -> str | None:
    """The permission entry (its ISO code) that governs a country, from each entry's country codes."""
    if country in country_codes:
        return country
    import phonenumbers  # a country not listed by its own code is rare: load the metadata only then

    code = f"+{phonenumbers.country_code_for_region(country)}"
    return next((iso for iso, codes in country_codes.items() if code in (codes or [])), None)
