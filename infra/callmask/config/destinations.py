"""Where the line may dial: ISO countries and number types, turned into the flow's number check.

A country calling code is shared (1 is 25 countries, Jamaica and the Dominican Republic among them), and
within one country premium-rate, shared-cost and personal ranges are where toll fraud goes. So the check
is built from libphonenumber's metadata (the `phonenumbers` package): for each allowed country only the
ranges of the allowed number types, by default fixed-line and mobile. Anything else, unknown ranges
included, does not match.
"""

from __future__ import annotations

from phonenumbers import SUPPORTED_REGIONS, PhoneMetadata, region_code_for_country_code

# Config names of number types -> libphonenumber's metadata fields.
NUMBER_TYPES = {
    "fixedLine": "fixed_line", "mobile": "mobile", "tollFree": "toll_free", "premiumRate": "premium_rate",
    "sharedCost": "shared_cost", "personalNumber": "personal_number", "voip": "voip", "uan": "uan",
    "pager": "pager", "voicemail": "voicemail",
}
TYPE_WORDS = {"fixedLine": "fixed line", "mobile": "mobile", "tollFree": "toll-free", "premiumRate": "premium rate",
              "sharedCost": "shared cost", "personalNumber": "personal", "voip": "VoIP", "uan": "UAN",
              "pager": "pager", "voicemail": "voicemail"}


def is_country(code: object) -> bool:
    return isinstance(code, str) and code in SUPPORTED_REGIONS


def number_pattern(countries: tuple[str, ...], types: tuple[str, ...]) -> str:
    """A Studio `regex` for the digits a caller keys (country code first): only the allowed countries'
    ranges of the allowed types. A trailing `*` is accepted: callers may end the number with it."""
    ranges: dict[int, list[str]] = {}
    for country in countries:
        metadata = PhoneMetadata.metadata_for_region(country)
        for kind in types:
            description = getattr(metadata, NUMBER_TYPES[kind])
            pattern = description.national_number_pattern if description is not None else None
            if pattern and pattern not in ranges.setdefault(metadata.country_code, []):
                ranges[metadata.country_code].append(pattern)
    alternatives = [f"{code}(?:{'|'.join(patterns)})" for code, patterns in sorted(ranges.items()) if patterns]
    return "^(?:" + "|".join(alternatives) + r")\*?$"


def describe(countries: tuple[str, ...], types: tuple[str, ...]) -> str:
    """The check in words, for the flow's condition name (what a preview and a diagram show)."""
    return f"{', '.join(countries)}: {', '.join(TYPE_WORDS[kind] for kind in types)} numbers"


def countries_for_codes(codes: list[object]) -> list[str]:
    """The main country of each calling code, for the migration from allowedCountryCodes."""
    found = [region_code_for_country_code(int(code)) for code in codes if str(code).isdigit()]
    return [region for region in found if region != "ZZ"]
