"""Measure the complaint classifier: load time and classifications per second.

Run: ``uv run python bench/bench_classifier.py [--n 500] [--data ../shared/data]``.
English texts are CFPB narratives, Chinese texts ICBC app reviews (read from the shared
data folder, never copied). One process, one thread, ``predict`` one text at a time and
``predict_many`` in one batch.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from services.routing.classifier import ComplaintClassifier  # noqa: E402
from services.routing.classifier.data import (  # noqa: E402
    CFPB_FULL,
    load_icbc_reviews,
    load_source,
)
from services.routing.classifier.rules import warm_up  # noqa: E402


def _rate(clf: ComplaintClassifier, texts: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    for text in texts:
        clf.predict(text)
    single = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    clf.predict_many(texts)
    batch = len(texts) / (time.perf_counter() - started)
    return single, batch


def main() -> None:
    """Print load time and throughput figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--n", type=int, default=500, help="texts per language")
    args = parser.parse_args()

    started = time.perf_counter()
    clf = ComplaintClassifier.load()
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    warm_up()
    warm_seconds = time.perf_counter() - started
    print(
        f"model {clf.version}: load {load_seconds:.2f} s, jieba/OpenCC warm-up {warm_seconds:.2f} s"
    )

    rng = random.Random(7)
    english = [e.text for e in load_source(args.data, CFPB_FULL)]
    chinese = load_icbc_reviews(args.data)
    for name, pool in (("en CFPB narratives", english), ("zh ICBC reviews", chinese)):
        texts = rng.sample(pool, min(args.n, len(pool)))
        mean_chars = sum(map(len, texts)) / len(texts)
        single, batch = _rate(clf, texts)
        print(
            f"{name:20} n={len(texts):5} mean {mean_chars:6.0f} chars: "
            f"predict {single:7.1f}/s, predict_many {batch:7.1f}/s"
        )


if __name__ == "__main__":
    main()
