"""Script-based language detection, good enough to pick the rule set and model weight."""

from __future__ import annotations

import unicodedata

UNDETERMINED = "und"
"""ISO 639-2 code for "undetermined" (empty text, digits, emoji only)."""

# (first code point, last code point, ISO 639-1 code) of scripts that identify a language.
_SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x3040, 0x30FF, "ja"),  # hiragana, katakana
    (0xAC00, 0xD7AF, "ko"),  # hangul syllables
    (0x1100, 0x11FF, "ko"),
    (0x0400, 0x04FF, "ru"),  # Cyrillic
    (0x0600, 0x06FF, "ar"),
    (0x0590, 0x05FF, "he"),
    (0x0370, 0x03FF, "el"),
    (0x0E00, 0x0E7F, "th"),
    (0x0900, 0x097F, "hi"),
)


def is_cjk(ch: str) -> bool:
    """Return whether a character is a CJK unified ideograph (Chinese character)."""
    cp = ord(ch)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF


def detect_language(text: str, *, sample_chars: int = 2000) -> str:
    """Guess the language of a text from its scripts.

    Chinese wins when Han characters make up at least a fifth of the letters (a Chinese
    review often contains Latin words such as "APP"); kana or hangul anywhere in the sample
    decide Japanese or Korean. Latin script is reported as English, the only Latin-script
    language the platform handles.

    Args:
        text: any string.
        sample_chars: only the first this many characters are looked at.

    Returns:
        An ISO 639-1 code (``"zh"``, ``"en"``, ``"ja"``, ...) or ``"und"`` when the text
        has no letters.
    """
    han = latin = 0
    other: dict[str, int] = {}
    sample = text[:sample_chars]
    if sample.isascii():  # the common English case, without a per-character loop
        return "en" if any(ch.isalpha() for ch in sample) else UNDETERMINED
    for ch in sample:
        if ch.isascii():
            latin += ch.isalpha()
            continue
        if is_cjk(ch):
            han += 1
            continue
        if not ch.isalpha():
            continue
        cp = ord(ch)
        for lo, hi, code in _SCRIPT_RANGES:
            if lo <= cp <= hi:
                other[code] = other.get(code, 0) + 1
                break
        else:
            if "LATIN" in unicodedata.name(ch, ""):
                latin += 1
    if other.get("ja") or other.get("ko"):
        return "ja" if other.get("ja", 0) >= other.get("ko", 0) else "ko"
    letters = han + latin + sum(other.values())
    if letters == 0:
        return UNDETERMINED
    if han * 5 >= letters:
        return "zh"
    best = max(other.items(), key=lambda kv: kv[1], default=("", 0))
    if best[1] > latin:
        return best[0]
    return "en"
