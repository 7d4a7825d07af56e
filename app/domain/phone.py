"""Phone number normalisation to E.164 (SPEC S14: numbers must carry their country code).

`normalise_phone` is called once per CSV row (hundreds of thousands of times for a 20 MB file), so:
- a cheap pre-check rejects what phonenumbers would reject anyway (letters, no country code, wrong length);
- `_fast_verdict` then validates with per-country validators compiled once from phonenumbers' own
  metadata, following the library's own steps (country code, region choice for shared codes such as +1,
  general pattern, then number types) at a few microseconds instead of ~40 µs for `parse` +
  `is_valid_number`. Where the library would do more (strip a national prefix written after the country
  code, or a metadata gap) the fast path steps aside and the library decides, so verdicts are the
  library's own: tests/unit/test_phone.py and bench/csv_audience.py compare them number by number.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import NumberParseException

MISSING = "Missing number"
NO_COUNTRY_CODE = "Country code missing (start with + and the country code)"
NOT_A_NUMBER = "Not a valid phone number"
UNKNOWN_COUNTRY_CODE = "Unknown country code"
TOO_SHORT = "Too short to be a phone number"
TOO_LONG = "Too long to be a phone number (at most 15 digits)"

REASONS: tuple[str, ...] = (MISSING, NO_COUNTRY_CODE, NOT_A_NUMBER, UNKNOWN_COUNTRY_CODE, TOO_SHORT, TOO_LONG)

# Separators people type inside numbers; anything else (letters, extensions) is not a bare number.
_SEPARATORS = re.compile(r"[\s.\-()/\u00a0]+")
_DIGITS = re.compile(r"\d+")
_E164_DIGITS = 15
_MIN_DIGITS = 6  # the shortest valid international numbers (e.g. some +683 Niue numbers) have 4 + 3 digits


def normalise_phone(raw: str) -> tuple[str | None, str | None]:
    """Return (E.164, None) for a valid number with its country code, else (None, reason)."""
    if raw is None:
        return None, MISSING
    if type(raw) is str and raw[:1] == "+" and raw[1:].isdecimal():
        # Already "+digits" (most rows of a real file): the steps below, without the regexes. isdecimal() is
        # exactly `\d` (Unicode category Nd), so the verdict is the same.
        digits = raw[1:]
        if len(digits) > _E164_DIGITS:
            return None, TOO_LONG
        if len(digits) < _MIN_DIGITS:
            return None, TOO_SHORT
        return _validate_digits(digits)
    text = _SEPARATORS.sub("", str(raw))
    if not text:
        return None, MISSING
    if text[0] == "+":
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif _DIGITS.fullmatch(text):
        return None, NO_COUNTRY_CODE
    else:
        return None, NOT_A_NUMBER
    if not _DIGITS.fullmatch(digits):
        return None, NOT_A_NUMBER
    if len(digits) > _E164_DIGITS:
        return None, TOO_LONG
    if len(digits) < _MIN_DIGITS:
        return None, TOO_SHORT
    return _validate_digits(digits)


def _validate_digits(digits: str) -> tuple[str | None, str | None]:
    verdict = _fast_verdict(digits)
    return verdict if verdict is not None else _library_verdict(digits)


@lru_cache(maxsize=65536)
def _library_verdict(digits: str) -> tuple[str | None, str | None]:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            return None, UNKNOWN_COUNTRY_CODE
        return None, NOT_A_NUMBER
    if not phonenumbers.is_valid_number(number):
        if phonenumbers.region_code_for_country_code(number.country_code) == phonenumbers.UNKNOWN_REGION:
            return None, UNKNOWN_COUNTRY_CODE
        return None, NOT_A_NUMBER
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


# --- the fast path: phonenumbers' validation steps with precompiled metadata -------------------

_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' own bounds for a national significant number


def _descs(metadata) -> tuple[object | None, tuple[object, ...]]:
    def reduce(desc):
        return desc if desc is not None and desc.national_number_pattern else None

    # Valid = the general description matches and so does one of the types _number_type_helper tries
    # (when mobile and fixed-line share a pattern, checking fixed-line covers both).
    kinds = (
        "fixed_line",
        "mobile",
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
    )
    types = tuple(d for d in (reduce(getattr(metadata, k)) for k in kinds) if d is not None)
    return reduce(metadata.general_desc), types


def _fits(desc, length: int) -> bool:
    return not desc.possible_length or length in desc.possible_length


class _Region:
    """One region's validity test as one regex per number length: the general pattern as a lookahead,
    then the alternatives of every number type whose possible lengths include that length."""

    __slots__ = ("code", "leading", "by_length")

    def __init__(self, code: str, metadata) -> None:
        self.code = code
        self.leading = re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None
        general, types = _descs(metadata)
        self.by_length: dict[int, re.Pattern] = {}
        if general is None:
            return
        for length in range(_MIN_NSN, _MAX_NSN + 1):
            if not _fits(general, length):
                continue
            alternatives = [d.national_number_pattern for d in types if _fits(d, length)]
            if alternatives:
                self.by_length[length] = re.compile(
                    f"(?=(?:{general.national_number_pattern})\\Z)(?:{'|'.join(f'(?:{a})' for a in alternatives)})"
                )

    def is_valid(self, nsn: str) -> bool:
        pattern = self.by_length.get(len(nsn))
        return pattern is not None and pattern.fullmatch(nsn) is not None


_UNSURE = object()


@cache
def _country(cc: int):
    """(national-prefix pattern of the main region, regions in the library's order) or _UNSURE."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not regions:
        return _UNSURE
    from phonenumbers.phonemetadata import PhoneMetadata

    main = PhoneMetadata.metadata_for_region_or_calling_code(cc, regions[0])
    if main is None:
        return _UNSURE
    prefix = re.compile(main.national_prefix_for_parsing) if main.national_prefix_for_parsing else None
    transform = bool(main.national_prefix_transform_rule)
    compiled = []
    for code in regions:
        if code == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
            metadata = PhoneMetadata.metadata_for_nongeo_region(cc)
        else:
            metadata = PhoneMetadata.metadata_for_region(code)
        if metadata is None:
            if len(regions) == 1:
                return _UNSURE
            continue  # the library skips regions without metadata when choosing among several
        compiled.append(_Region(code, metadata))
    return prefix, transform, tuple(compiled), len(regions) == 1


def _prefix_changes(prefix: re.Pattern, transform: bool, nsn: str) -> bool:
    """Whether parse() could rewrite the number with the national prefix rule (_maybe_strip_national_prefix
    _carrier_code). An empty match with no captured group to transform leaves it as it is: Argentina's
    rule matches the empty string on every number, and those numbers stay on the fast path."""
    match = prefix.match(nsn)
    if match is None:
        return False
    if match.end() > 0:
        return True
    groups = match.groups()
    return transform and bool(groups) and groups[-1] is not None


# Country-code digits as written ("33") -> _country(33): one dict lookup per row instead of int() and a
# cached call per prefix length. Only the shortest prefix that is a country code is ever stored, which is
# the one the loop in _fast_verdict picks, so a hit gives the loop's answer.
_BY_PREFIX: dict[str, tuple[int, object]] = {}


def _fast_verdict(digits: str) -> tuple[str | None, str | None] | None:
    """The library's verdict for "+<digits>", or None when only the library itself can tell."""
    if digits[0] == "0":
        return None, UNKNOWN_COUNTRY_CODE
    by_prefix = _BY_PREFIX
    hit = by_prefix.get(digits[:1]) or by_prefix.get(digits[:2]) or by_prefix.get(digits[:3])
    if hit is None:
        codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
        for size in (1, 2, 3):
            cc = int(digits[:size])
            if cc in codes:
                break
        else:
            return None, UNKNOWN_COUNTRY_CODE
        hit = by_prefix[digits[:size]] = (size, _country(cc))
    size, info = hit
    nsn = digits[size:]
    if info is _UNSURE or not _MIN_NSN <= len(nsn) <= _MAX_NSN:
        return None
    prefix, transform, regions, single = info
    if prefix is not None and _prefix_changes(prefix, transform, nsn):
        return None  # parse() may strip or rewrite a national prefix here: let the library decide
    if single:
        pattern = regions[0].by_length.get(len(nsn))  # (_Region.is_valid, inlined: this runs once per row)
        return ("+" + digits, None) if pattern is not None and pattern.fullmatch(nsn) else (None, NOT_A_NUMBER)
    region = next((r for r in regions if (r.leading.match(nsn) if r.leading is not None else r.is_valid(nsn))), None)
    if region is None:
        return None, NOT_A_NUMBER
    return ("+" + digits, None) if region.is_valid(nsn) else (None, NOT_A_NUMBER)
