"""The platform's complaint taxonomy: categories, product lines and priorities.

The scheme lives in ``services/routing/taxonomy.csv`` (a copy of the team's
``shared/data/taxonomy/categories.csv``). Chinese labels are kept as given there, in
traditional characters.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Literal

TAXONOMY_CSV = Path(__file__).resolve().parent.parent / "taxonomy.csv"

Kind = Literal["category", "product_line"]

OTHER = "other"
"""Code of the fallback class, present in both the category and the product-line lists."""


class Priority(StrEnum):
    """Handling priority of a complaint; ``P1`` is the highest."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


PRIORITIES: tuple[Priority, ...] = (Priority.P1, Priority.P2, Priority.P3, Priority.P4)

# Suggested default priority per category: money at risk first, then broken service, then
# disputes about charges or conduct, then everything else. The routing service may override.
CATEGORY_PRIORITY: dict[str, Priority] = {
    "fraud_security": Priority.P1,
    "technical_failure": Priority.P2,
    "privacy": Priority.P2,
    "fees_charges": Priority.P3,
    "staff_attitude": Priority.P3,
    "incorrect_information": Priority.P3,
    "service_quality": Priority.P3,
    "product_function": Priority.P4,
    OTHER: Priority.P4,
}


@dataclass(frozen=True)
class Label:
    """One taxonomy entry.

    Attributes:
        kind: ``"category"`` or ``"product_line"``.
        code: stable snake_case code, e.g. ``"fees_charges"``.
        label_zh: Chinese label (traditional characters, as in the CSV).
        label_en: English label.
    """

    kind: Kind
    code: str
    label_zh: str
    label_en: str


@cache
def load_taxonomy(path: Path = TAXONOMY_CSV) -> tuple[Label, ...]:
    """Read the taxonomy CSV.

    Args:
        path: CSV with columns ``kind, code, label_zh, label_en``.

    Returns:
        The entries in file order.

    Raises:
        OSError: the file cannot be read.
        ValueError: a row has an unknown kind or the file has no ``other`` entry per kind.
    """
    entries: list[Label] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            kind = row["kind"]
            if kind not in ("category", "product_line"):
                raise ValueError(f"unknown taxonomy kind {kind!r} in {path}")
            entries.append(Label(kind, row["code"], row["label_zh"], row["label_en"]))  # type: ignore[arg-type]
    for kind in ("category", "product_line"):
        if not any(e.kind == kind and e.code == OTHER for e in entries):
            raise ValueError(f"taxonomy {path} has no '{OTHER}' {kind}")
    return tuple(entries)


def _codes(kind: Kind) -> tuple[str, ...]:
    return tuple(e.code for e in load_taxonomy() if e.kind == kind)


CATEGORIES: tuple[str, ...] = _codes("category")
"""Category codes in taxonomy order (``other`` last)."""

PRODUCT_LINES: tuple[str, ...] = _codes("product_line")
"""Product-line codes in taxonomy order (``other`` last)."""


def label(kind: Kind, code: str, lang: Literal["zh", "en"] = "en") -> str:
    """Return the display label of a code.

    Args:
        kind: ``"category"`` or ``"product_line"``.
        code: a code from :data:`CATEGORIES` or :data:`PRODUCT_LINES`.
        lang: ``"zh"`` (traditional characters) or ``"en"``.

    Raises:
        KeyError: unknown code for that kind.
    """
    for entry in load_taxonomy():
        if entry.kind == kind and entry.code == code:
            return entry.label_zh if lang == "zh" else entry.label_en
    raise KeyError(f"unknown {kind} code {code!r}")


def priority_for(category: str) -> Priority:
    """Return the suggested priority of a category (unknown codes get ``P4``)."""
    return CATEGORY_PRIORITY.get(category, Priority.P4)
