"""Near-duplicate suggestions: MinHash LSH over character n-grams (issue 4 "Deliver" 7).

Two suggestions are near-duplicates when the Jaccard similarity of their character n-gram
sets reaches a threshold (``ROUTING_NEAR_DUPLICATE_THRESHOLD``, default 0.7). Texts are
normalised first: NFKC, traditional Chinese converted to simplified, lower case, and only
letters and digits kept, so punctuation, spacing and script variants do not matter.
Chinese text uses character bigrams (a short Chinese suggestion has few characters),
other text character trigrams.

Comparing a new suggestion with every earlier one would grow without bound, so each
suggestion's MinHash signature (128 hash functions) is cut into 32 bands of 4 rows and the
band keys are stored in ``suggestion_minhash``. Only earlier suggestions sharing a band key
are candidates; their exact Jaccard similarity is then computed from their stored text. A
pair with similarity s becomes a candidate with probability ``1 - (1 - s**4)**32``: 0.87 at
s = 0.5, 0.9996 at s = 0.7, so thresholds from 0.5 up lose almost nothing; below about 0.4
candidates start to be missed (0.56 at s = 0.4).
"""

from __future__ import annotations

import hashlib
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing import tables
from services.routing.classifier.language import detect_language, is_cjk
from services.routing.classifier.rules import simplify_chinese

NUM_PERM = 128
BANDS = 32
ROWS = NUM_PERM // BANDS
_PRIME = (1 << 31) - 1  # a * x + b stays below 2**63 for 32-bit x: no uint64 overflow
_rng = np.random.default_rng(20261129)  # fixed: stored band keys must stay comparable
_A = _rng.integers(1, _PRIME, size=(NUM_PERM, 1), dtype=np.uint64)
_B = _rng.integers(0, _PRIME, size=(NUM_PERM, 1), dtype=np.uint64)
MAX_CHARS = 4000
"""Only the first this many characters of a text are compared."""


def normalise(text: str) -> str:
    """Return the comparable form of a text.

    NFKC, traditional Chinese converted to simplified, lower case, only letters and digits
    kept (no spaces or punctuation).
    """
    text = unicodedata.normalize("NFKC", text[:MAX_CHARS])
    if any(is_cjk(ch) for ch in text):
        text = simplify_chinese(text)
    return "".join(ch for ch in text.lower() if ch.isalnum())


def shingles(text: str) -> frozenset[str]:
    """Return the character n-grams of a text (bigrams for Chinese, trigrams otherwise).

    A normalised text shorter than n gives itself as its only shingle; an empty one gives
    the empty set.
    """
    norm = normalise(text)
    n = 2 if detect_language(text) == "zh" else 3
    if len(norm) <= n:
        return frozenset([norm]) if norm else frozenset()
    return frozenset(norm[i : i + n] for i in range(len(norm) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Return ``|a & b| / |a | b|`` (0.0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def signature(grams: Iterable[str]) -> npt.NDArray[np.uint64]:
    """Return the MinHash signature of a shingle set, shape (NUM_PERM,).

    Raises:
        ValueError: the set is empty.
    """
    ids = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64)
    if ids.size == 0:
        raise ValueError("no shingles")
    hashed = (_A * ids[np.newaxis, :] + _B) % np.uint64(_PRIME)
    result: npt.NDArray[np.uint64] = hashed.min(axis=1)
    return result


def band_keys(sig: npt.NDArray[np.uint64]) -> list[tuple[int, int]]:
    """Return ``(band, bucket)`` per band: bucket is a signed 64-bit hash of the band's rows."""
    keys = []
    for band in range(BANDS):
        chunk = sig[band * ROWS : (band + 1) * ROWS].astype("<u8").tobytes()
        digest = hashlib.blake2b(chunk, digest_size=8).digest()
        keys.append((band, int.from_bytes(digest, "little", signed=True)))
    return keys


@lru_cache(maxsize=4096)
def _cached_shingles(text: str) -> frozenset[str]:
    return shingles(text)


@dataclass(frozen=True)
class NearDuplicate:
    """The earlier suggestion a new one nearly repeats.

    Attributes:
        suggestion_id: id of the earlier suggestion.
        similarity: Jaccard similarity of the two shingle sets, 0..1.
    """

    suggestion_id: str
    similarity: float


async def find_and_index(
    *,
    session: AsyncSession,
    suggestion_id: str,
    received_at: datetime,
    text: str,
    threshold: float,
) -> NearDuplicate | None:
    """Find the most similar earlier suggestion and index this one's band keys.

    Earlier means received no later than this one (a redelivered or replayed suggestion
    never matches itself). Ties in similarity go to the earliest suggestion.

    Args:
        session: the consumer's session (not committed here).
        suggestion_id: UUID of the new suggestion.
        received_at: its receipt instant.
        text: its (redacted) text.
        threshold: minimum Jaccard similarity, 0 < threshold <= 1.

    Returns:
        The near-duplicate, or None (also for a text without letters or digits).
    """
    grams = shingles(text)
    if not grams:
        return None
    keys = band_keys(signature(grams))
    m, c = tables.suggestion_minhash, tables.classification
    rows = (
        await session.execute(
            select(c.c.subject_id, c.c.description, c.c.received_at)
            .where(
                c.c.subject_id.in_(
                    select(m.c.suggestion_id)
                    .where(tuple_(m.c.band, m.c.bucket).in_(keys))
                    .where(m.c.suggestion_id != suggestion_id)
                    .distinct()
                ),
                c.c.kind == "suggestion",
                c.c.received_at <= received_at,
            )
            .order_by(c.c.received_at, c.c.subject_id)
        )
    ).all()
    best: NearDuplicate | None = None
    for row in rows:
        sim = jaccard(grams, _cached_shingles(row.description))
        if sim >= threshold and (best is None or sim > best.similarity):
            best = NearDuplicate(str(row.subject_id), round(sim, 4))
    await session.execute(
        pg_insert(m)
        .values([{"band": b, "bucket": k, "suggestion_id": suggestion_id} for b, k in keys])
        .on_conflict_do_nothing()
    )
    return best
