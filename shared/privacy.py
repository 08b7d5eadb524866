"""Personal-data rules shared by every service (ARCHITECTURE.md §1 "privacy and audit", §3).

- :func:`pseudonymous_key`: the customer as the rest of the platform sees them, a keyed
  HMAC-SHA256 of the normalised customer number.
- :func:`redact`: free text with phone numbers, resident ID numbers, card and account
  numbers and e-mail addresses replaced by placeholders, before it leaves intake in an
  event, a log line or a metric.
- :class:`Vault`: AES-256-GCM encryption of personal data at rest, with a key id per
  ciphertext so keys can rotate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import unicodedata
from typing import Any

import pydantic_core
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def normalise_customer_number(customer_number: str) -> str:
    """Return the canonical form of a customer number: NFKC, no spaces or dashes, upper case."""
    text = unicodedata.normalize("NFKC", customer_number)
    return re.sub(r"[\s\-_.]", "", text).upper()


def pseudonymous_key(secret: str, customer_number: str) -> str:
    """Return the customer's pseudonymous key: ``cus_`` + 32 hex chars of HMAC-SHA256.

    The same customer number always gives the same key under one secret; without the
    secret the key reveals nothing about the number.
    """
    digest = hmac.new(
        secret.encode(), normalise_customer_number(customer_number).encode(), hashlib.sha256
    ).hexdigest()
    return "cus_" + digest[:32]


# --- redaction -------------------------------------------------------------------------

# The patterns run on a "shadow" copy of the text in which full-width forms (U+FF01..FF5E,
# common in Chinese input methods: "１３８００１３８０００", "＠") and the ideographic space are
# mapped one-to-one onto ASCII. The mapping keeps every index, so a match in the shadow is
# replaced at the same span in the original and the rest of the text survives unchanged.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20
# Only the forms whose ASCII counterpart a pattern can tell apart from other text are
# mapped: all of them but ＂，：；＜＞［＼］ (common Chinese punctuation among them), which
# no pattern uses. Mapping them or not gives the same matches (the property test compares
# with the whole table) but costs a dictionary lookup per character of the text.
_FULLWIDTH_IN_PATTERNS = re.compile(
    "[\uff01\uff03-\uff0b\uff0d-\uff19\uff1d\uff1f-\uff3a\uff3e-\uff5e\u3000]"
)


def _ascii_form(match: re.Match[str]) -> str:
    return chr(_FULLWIDTH[ord(match.group())])


def _shadow(text: str) -> str:
    """Return ``text`` with the full-width forms the patterns use mapped onto ASCII."""
    if _FULLWIDTH_IN_PATTERNS.search(text) is None:
        return text
    return _FULLWIDTH_IN_PATTERNS.sub(_ascii_form, text)


# Local part: the RFC 5322 "atext" characters and dots.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+\s?@\s?"
    r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
)
# 18 characters with optional single separators after the 6-digit region and 8-digit birth date.
_ID18 = re.compile(
    r"(?<![0-9A-Za-z])([1-9]\d{5})[ \-]?((?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))"
    r"[ \-]?(\d{3}[0-9Xx])(?![0-9A-Za-z])"
)
_DIGIT_RUN = re.compile(r"(?<![0-9])(?:\d[ \-]?){12,22}\d(?![0-9])")
_CN_MOBILE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[ \-]?)?1[3-9]\d[ \-]?\d{4}[ \-]?\d{4}(?![0-9])")
_CN_LANDLINE = re.compile(
    r"(?<![0-9])(?:(?:\+|00)?86[ \-]?)?(?:\(0\d{2,3}\)|0\d{2,3})[ \-]?\d{3,4}[ \-]?\d{4}"
    r"(?:[ \-]?(?:转|ext\.?|x)[ \-]?\d{1,5})?(?![0-9])"
)
_INTL_PHONE = re.compile(
    r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}[ \-.]?(?:\(?\d{1,4}\)?[ \-.]?){2,5}\d{2,4}(?![0-9])"
)
_US_PHONE = re.compile(r"(?<![0-9])\(?\d{3}\)?[ \-.]\d{3}[ \-.]\d{4}(?![0-9])")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
#: Placeholders that :func:`redact` writes; they are never personal data themselves.
PLACEHOLDERS = ("[EMAIL]", "[ID]", "[CARD]", "[ACCOUNT]", "[PHONE]")


def valid_resident_id(number: str) -> bool:
    """Return True when ``number`` is an 18-character PRC resident ID with a valid checksum.

    Source: GB 11643-1999 (ISO 7064 MOD 11-2).
    """
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    """Return True when the digit string passes the Luhn check (ISO/IEC 7812 card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_or_account(match: re.Match[str]) -> str | None:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return "[CARD]"
    if 16 <= len(digits) <= 22:
        return "[ACCOUNT]"
    return None


def _resident_id(match: re.Match[str]) -> str | None:
    return "[ID]" if valid_resident_id("".join(match.groups())) else None


def _fixed(placeholder: str) -> Any:
    return lambda _match: placeholder


def _replace(pattern: re.Pattern[str], decide: Any, original: str, shadow: str) -> tuple[str, str]:
    """Replace the matches of ``pattern`` in ``shadow`` at the same spans of ``original``.

    ``decide(match)`` returns the placeholder, or None to keep the matched text.
    """
    out_o: list[str] = []
    out_s: list[str] = []
    last = 0
    for match in pattern.finditer(shadow):
        placeholder = decide(match)
        if placeholder is None:
            continue
        start, end = match.span()
        out_o += (original[last:start], placeholder)
        out_s += (shadow[last:start], placeholder)
        last = end
    if last == 0:
        return original, shadow
    out_o.append(original[last:])
    out_s.append(shadow[last:])
    return "".join(out_o), "".join(out_s)


#: The number rules, applied in this order after the e-mail rule, each with the fewest
#: digits it can match (a region with fewer digits cannot hold a match).
_NUMBER_RULES: tuple[tuple[re.Pattern[str], Any, int], ...] = (
    (_ID18, _resident_id, 17),
    (_DIGIT_RUN, _card_or_account, 13),
    (_CN_MOBILE, _fixed("[PHONE]"), 11),
    (_INTL_PHONE, _fixed("[PHONE]"), 5),  # "+1 2 3 45"
    (_CN_LANDLINE, _fixed("[PHONE]"), 10),
    (_US_PHONE, _fixed("[PHONE]"), 10),
)
_EMAIL_PLACEHOLDER = _fixed("[EMAIL]")

# Where a number rule can match. Every match of a number rule starts with a digit, "+" or
# "(" and consists only of digits, the separators " -.()", "+", "x"/"X" (an ID's check
# character, an extension) and "e", "t", "转" (extension markers), and its look-arounds see
# one character on each side. A number region is a run of those characters from its first
# digit, "+" or "(": every match lies inside one, so the rules run on each region with one
# character of context on either side instead of over the whole text. That gives the same
# result as running them over the whole text (the property test compares both), at a
# fraction of the cost: Python's regular expressions try a pattern that starts with a
# look-behind at every position of the text, but find a region's first character by a fast
# scan.
_NUMBER_REGION = re.compile(r"[\d+(][\d \-.()+xXet转]*")
_MIN_NUMBER_DIGITS = min(rule[2] for rule in _NUMBER_RULES)


def redact(text: str) -> str:
    """Replace personal data in free text with placeholders.

    Replaced: e-mail addresses (``[EMAIL]``); 18-character resident ID numbers with a valid
    GB 11643 checksum, also with a separator after the region or the birth date (``[ID]``);
    Luhn-valid card numbers of 13-19 digits, grouped or not (``[CARD]``); other runs of
    16-22 digits, which may be account numbers (``[ACCOUNT]``); mainland mobile numbers
    (with or without +86/0086), landlines with area code (and extension),
    international numbers written with + or 00, and North-American style numbers
    (``[PHONE]``).
    Full-width digits and ``＠`` are recognised like their ASCII forms.

    Kept: amounts (``¥1,234.56``, ``1234.56元``), dates and times (``2024-01-15``,
    ``2024年1月15日``, ``20240115``), short numbers (95588), reference numbers with
    letters (``C-260930-7K3QX9``), ID-like numbers whose checksum fails, and digit runs
    of 13-15 digits that fail the Luhn check.

    Args:
        text: any text; None-safe only for the empty string.

    Returns:
        The text with each finding replaced; everything else unchanged, character for
        character.
    """
    if not text:
        return text
    shadow = _shadow(text)
    out = text
    if "@" in shadow:
        out, shadow = _replace(_EMAIL, _EMAIL_PLACEHOLDER, out, shadow)
    pieces: list[str] = []
    last = 0
    for region in _NUMBER_REGION.finditer(shadow):
        digits = sum(map(str.isdecimal, region.group()))  # what \d matches
        if digits < _MIN_NUMBER_DIGITS:
            continue
        start, end = region.span()
        lo, hi = max(start - 1, 0), min(end + 1, len(shadow))
        window = unchanged = out[lo:hi]
        window_shadow = shadow[lo:hi]
        for pattern, decide, min_digits in _NUMBER_RULES:
            if digits >= min_digits:  # replacements only ever remove digits
                window, window_shadow = _replace(pattern, decide, window, window_shadow)
        if window is not unchanged:
            # The context characters are never part of a match: keep the region's part.
            pieces += (out[last:start], window[start - lo : len(window) - (hi - end)])
            last = end
    if not pieces:
        return out
    pieces.append(out[last:])
    return "".join(pieces)


def contains_personal_data(text: str) -> bool:
    """Return True when :func:`redact` would change ``text`` (used by tests and scanners)."""
    return redact(text) != text


# --- text helpers ----------------------------------------------------------------------


def _joins_previous(ch: str, prev: str) -> bool:
    """Return True when ``ch`` continues the grapheme cluster that ``prev`` belongs to."""
    cp = ord(ch)
    if prev == "\u200d":  # after a zero-width joiner (emoji ZWJ sequences)
        return True
    if unicodedata.category(ch) in ("Mn", "Me", "Mc"):  # combining marks
        return True
    return (
        ch == "\u200d"
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors
        or 0x1F3FB <= cp <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # emoji tag sequences (subdivision flags)
        or 0xE0100 <= cp <= 0xE01EF  # variation selectors supplement
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def preview(text: str, max_chars: int, *, ellipsis: str = "…") -> str:
    """Return ``text`` cut to at most ``max_chars`` code points without splitting a character.

    Python strings never split a code point; this also keeps user-perceived characters
    whole: a base character with its combining marks, emoji with variation selectors,
    skin tones or zero-width-joiner sequences, and flag pairs (Unicode UAX #29, simplified).
    When the text is cut, ``ellipsis`` is appended (it counts towards ``max_chars``).

    Args:
        text: any text.
        max_chars: upper bound on the result's length in code points, >= 1.
        ellipsis: appended when the text is cut.

    Returns:
        ``text`` itself when it fits, else a prefix ending on a cluster boundary plus the
        ellipsis.

    Raises:
        ValueError: ``max_chars`` < 1.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    if len(text) <= max_chars:
        return text
    cut = max(max_chars - len(ellipsis), 0)
    while 0 < cut < len(text) and _joins_previous(text[cut], text[cut - 1]):
        cut -= 1
    # An odd number of regional indicators before the cut means a flag would be split.
    if 0 < cut < len(text) and _is_regional_indicator(text[cut]):
        run = 0
        while cut - run - 1 >= 0 and _is_regional_indicator(text[cut - run - 1]):
            run += 1
        if run % 2 == 1:
            cut -= 1
    return text[:cut].rstrip() + ellipsis


# --- vault encryption ------------------------------------------------------------------


class Vault:
    """AES-256-GCM encryption of personal data with rotating keys.

    Args:
        keys: ``"id:base64key[,id:base64key...]"`` — 32-byte keys; the first encrypts, all
            decrypt.

    Raises:
        ValueError: a malformed spec or a key that is not 32 bytes.
    """

    def __init__(self, keys: str) -> None:
        self.keys: dict[str, AESGCM] = {}
        self.current: str = ""
        for part in keys.split(","):
            key_id, _, b64 = part.strip().partition(":")
            raw = base64.b64decode(b64)
            if not key_id or len(raw) != 32:
                raise ValueError("vault keys must be id:base64(32 bytes)[,...]")
            self.keys[key_id] = AESGCM(raw)
            self.current = self.current or key_id

    def encrypt(self, data: dict[str, Any], *, aad: str) -> tuple[str, bytes]:
        """Encrypt a JSON-able mapping bound to ``aad`` (e.g. the submission id).

        Returns:
            ``(key_id, nonce || ciphertext)``.
        """
        nonce = os.urandom(12)
        # Compact UTF-8 JSON (pydantic-core's encoder: a quarter of json.dumps's time).
        blob = self.keys[self.current].encrypt(nonce, pydantic_core.to_json(data), aad.encode())
        return self.current, nonce + blob

    def decrypt(self, key_id: str, blob: bytes, *, aad: str) -> dict[str, Any]:
        """Decrypt what :meth:`encrypt` produced.

        Raises:
            KeyError: unknown key id. cryptography.exceptions.InvalidTag: tampered data.
        """
        plain = self.keys[key_id].decrypt(blob[:12], blob[12:], aad.encode())
        result: dict[str, Any] = json.loads(plain)
        return result
