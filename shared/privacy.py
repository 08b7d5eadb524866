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

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_ID18 = re.compile(
    r"(?<![0-9A-Za-z])([1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx])(?![0-9A-Za-z])"
)
_DIGIT_RUN = re.compile(r"(?<![0-9])(?:\d[ \-]?){12,22}\d(?![0-9])")
_CN_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[ \-]?)?1[3-9]\d[ \-]?\d{4}[ \-]?\d{4}(?![0-9])")
_CN_LANDLINE = re.compile(r"(?<![0-9])(?:\(?0\d{2,3}\)?[ \-]?)\d{7,8}(?![0-9])")
_INTL_PHONE = re.compile(r"(?<![\w+])\+\d{1,3}[ \-]?(?:\(?\d{1,4}\)?[ \-]?){2,5}\d{2,4}(?![0-9])")
_US_PHONE = re.compile(r"(?<![0-9])\(?\d{3}\)?[ \-.]\d{3}[ \-.]\d{4}(?![0-9])")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


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


def _card_or_account(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return "[CARD]"
    if 16 <= len(digits) <= 22:
        return "[ACCOUNT]"
    return match.group(0)


def _resident_id(match: re.Match[str]) -> str:
    return "[ID]" if valid_resident_id(match.group(1)) else match.group(0)


def redact(text: str) -> str:
    """Replace personal data in free text with placeholders.

    Replaced: e-mail addresses (``[EMAIL]``), 18-digit resident ID numbers with a valid
    checksum (``[ID]``), Luhn-valid card numbers of 13-19 digits (``[CARD]``), other 16-22
    digit runs (``[ACCOUNT]``), mainland mobile and landline numbers, international and
    North-American numbers (``[PHONE]``). Amounts, dates and reference numbers stay.
    """
    if not text:
        return text
    out = _EMAIL.sub("[EMAIL]", text)
    out = _ID18.sub(_resident_id, out)
    out = _DIGIT_RUN.sub(_card_or_account, out)
    out = _CN_MOBILE.sub("[PHONE]", out)
    out = _INTL_PHONE.sub("[PHONE]", out)
    out = _CN_LANDLINE.sub("[PHONE]", out)
    out = _US_PHONE.sub("[PHONE]", out)
    return out


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
        blob = self.keys[self.current].encrypt(
            nonce, json.dumps(data, ensure_ascii=False).encode(), aad.encode()
        )
        return self.current, nonce + blob

    def decrypt(self, key_id: str, blob: bytes, *, aad: str) -> dict[str, Any]:
        """Decrypt what :meth:`encrypt` produced.

        Raises:
            KeyError: unknown key id. cryptography.exceptions.InvalidTag: tampered data.
        """
        plain = self.keys[key_id].decrypt(blob[:12], blob[12:], aad.encode())
        result: dict[str, Any] = json.loads(plain)
        return result
