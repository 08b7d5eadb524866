"""Read the public labelled data sets and map their labels onto the platform taxonomy.

Sources (under the team's ``shared/data`` folder, never copied into the repository):

- ``cfpb/complaints_with_narratives.csv``: CFPB narratives with ``Product`` and ``Issue``
  (both targets). Public domain.
- ``cfpb/narratives_2015_2026_reduced_fields.csv``: CFPB narratives with ``Product`` only
  (product line only). Public domain.
- ``banking77/queries.csv``: BANKING77 (Casanueva et al., 2020), 77 intents mapped to both
  targets. CC BY 4.0.
- ``zh/icbc_app_reviews.csv``: unlabelled Chinese app reviews. No licence stated: used for
  evaluation only, never for training the shipped model.
"""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from services.routing.classifier.taxonomy import CATEGORIES, PRODUCT_LINES

CFPB_FULL = "cfpb_narratives"
CFPB_REDUCED = "cfpb_reduced"
BANKING77 = "banking77"
SOURCES: tuple[str, ...] = (CFPB_FULL, CFPB_REDUCED, BANKING77)

_SOURCE_FILES = {
    CFPB_FULL: "cfpb/complaints_with_narratives.csv",
    CFPB_REDUCED: "cfpb/narratives_2015_2026_reduced_fields.csv",
    BANKING77: "banking77/queries.csv",
}
ICBC_REVIEWS = "zh/icbc_app_reviews.csv"


@dataclass(frozen=True)
class Example:
    """One labelled text.

    Attributes:
        text: the complaint or query text.
        category: category code, or ``None`` when the source has no category label.
        product_line: product-line code, or ``None`` when the source has none.
        source: source name, one of :data:`SOURCES` or ``"extra"``.
        fine: the source's own finer label when it has one (the BANKING77 intent, e.g.
            ``"card_arrival"``), else ``None``; the query experts learn these classes and
            sum their probabilities per taxonomy code (see :mod:`.model`).
    """

    text: str
    category: str | None
    product_line: str | None
    source: str
    fine: str | None = None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _mapping(path: Path, key: str, value: str) -> dict[str, str]:
    return {row[key].strip(): row[value].strip() for row in _read_csv(path)}


def _checked(code: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if code is not None and code not in allowed:
        raise ValueError(f"mapping gives unknown {what} code {code!r}")
    return code


def load_source(data_dir: Path, source: str) -> list[Example]:
    """Load one labelled source with its labels mapped onto the taxonomy.

    Rows with an empty text or an unmapped label are dropped.

    Args:
        data_dir: the ``shared/data`` folder (holds ``cfpb/``, ``banking77/``, ``taxonomy/``).
        source: one of :data:`SOURCES`.

    Returns:
        The examples in file order.

    Raises:
        KeyError: unknown source.
        OSError: a file is missing.
        ValueError: a mapping names a code that is not in the taxonomy.
    """
    tax = data_dir / "taxonomy"
    rows = _read_csv(data_dir / _SOURCE_FILES[source])
    out: list[Example] = []
    if source in (CFPB_FULL, CFPB_REDUCED):
        products = _mapping(
            tax / "cfpb_product_to_product_line.csv", "cfpb_product", "product_line"
        )
        issues = _mapping(tax / "cfpb_issue_to_category.csv", "cfpb_issue", "category")
        for row in rows:
            text = row.get("Consumer complaint narrative", "").strip()
            product_line = products.get(row.get("Product", "").strip())
            category = issues.get(row.get("Issue", "").strip()) if source == CFPB_FULL else None
            if not text or product_line is None or (source == CFPB_FULL and category is None):
                continue
            out.append(
                Example(
                    text,
                    _checked(category, CATEGORIES, "category"),
                    _checked(product_line, PRODUCT_LINES, "product line"),
                    source,
                )
            )
    else:
        intents = {
            row["banking77_intent"].strip(): (row["category"].strip(), row["product_line"].strip())
            for row in _read_csv(tax / "banking77_intent_to_taxonomy.csv")
        }
        for row in rows:
            text = row.get("text", "").strip()
            intent = row.get("category", "").strip()
            target = intents.get(intent)
            if not text or target is None:
                continue
            out.append(
                Example(
                    text,
                    _checked(target[0], CATEGORIES, "category"),
                    _checked(target[1], PRODUCT_LINES, "product line"),
                    source,
                    intent,
                )
            )
    return out


def load_icbc_reviews(data_dir: Path) -> list[str]:
    """Return the texts of the unlabelled ICBC app reviews (evaluation only; no licence stated).

    Raises:
        OSError: the file is missing.
    """
    return [r["review_text"] for r in _read_csv(data_dir / ICBC_REVIEWS) if r["review_text"]]


_SPACE = re.compile(r"\s+")


def _norm_key(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


def stratified_split(
    examples: Iterable[Example],
    key: Callable[[Example], str],
    *,
    test_share: float = 0.2,
    seed: int = 13,
) -> tuple[list[Example], list[Example]]:
    """Split examples into train and held-out parts, stratified by ``key``.

    Identical texts (after lower-casing and collapsing white space) always land on the same
    side, so template letters cannot leak from training into evaluation. Every stratum with
    at least two distinct texts gives ``round(test_share * n)`` of them (at least one) to the
    held-out part; singletons stay in training.

    Args:
        examples: the examples of one source.
        key: the stratification label of an example (e.g. its product line).
        test_share: held-out share, 0 < test_share < 1.
        seed: seed of the shuffle; the same seed gives the same split.

    Returns:
        ``(train, test)``.
    """
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[_norm_key(ex.text)].append(ex)
    strata: dict[str, list[str]] = defaultdict(list)
    for text_key, members in groups.items():
        strata[key(members[0])].append(text_key)
    rng = random.Random(seed)
    held: set[str] = set()
    for label in sorted(strata):
        keys = sorted(strata[label])
        rng.shuffle(keys)
        if len(keys) >= 2:
            n_test = max(1, round(test_share * len(keys)))
            held.update(keys[:n_test])
    train = [ex for k, members in groups.items() if k not in held for ex in members]
    test = [ex for k, members in groups.items() if k in held for ex in members]
    return train, test


def subsample(
    examples: list[Example], fraction: float, key: Callable[[Example], str], seed: int
) -> list[Example]:
    """Keep a stratified ``fraction`` of the examples (at least one per label).

    Args:
        examples: the examples of one source.
        fraction: share to keep, 0 < fraction <= 1.
        key: the stratification label.
        seed: shuffle seed.
    """
    if fraction >= 1.0:
        return list(examples)
    by_label: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_label[key(ex)].append(ex)
    rng = random.Random(seed)
    kept: list[Example] = []
    for label in sorted(by_label):
        members = by_label[label]
        rng.shuffle(members)
        kept.extend(members[: max(1, round(fraction * len(members)))])
    return kept
