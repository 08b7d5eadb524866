"""Train, evaluate and ship the complaint classifier.

Command line::

    uv run python -m services.routing.classifier.train \
        --data ../shared/data --out services/routing/artifacts/v20250101-120000

It reads the public labelled data and the label mappings, holds out 20 % of each source
(stratified, fixed seed, identical texts kept on one side), trains the model, trains a
TF-IDF + LinearSVC baseline on the same split, evaluates both and the full classifier
(rules + model), and writes ``model.joblib`` and ``metrics.json`` into the output folder
and regenerates ``docs/classifier.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.svm import LinearSVC

from services.routing.classifier import ARTIFACT_FILE, ARTIFACT_FORMAT, ComplaintClassifier
from services.routing.classifier import data as data_mod
from services.routing.classifier.data import (
    BANKING77,
    CFPB_FULL,
    CFPB_REDUCED,
    SOURCES,
    Example,
)
from services.routing.classifier.model import (
    FINE_PREFIX,
    TARGETS,
    ModelConfig,
    Target,
    fit_gate,
    fit_target,
    fit_vectorizers,
    gate_features,
    make_vectorizers,
    prepare_text,
)
from services.routing.classifier.taxonomy import CATEGORIES, PRODUCT_LINES

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DOCS = REPO_ROOT / "docs" / "classifier.md"
TEST_SHARE = 0.2

ExtraExample = tuple[str, str, str]
"""(text, category code, product-line code), e.g. a supervisor's correction."""

_STRATA: dict[str, Callable[[Example], str]] = {
    CFPB_FULL: lambda e: str(e.category),
    CFPB_REDUCED: lambda e: str(e.product_line),
    BANKING77: lambda e: f"{e.category}|{e.product_line}",
}


@dataclass(frozen=True)
class TrainingReport:
    """What one training run produced.

    Attributes:
        version: artifact version (the output folder's name).
        artifact_path: the written ``model.joblib``.
        metrics_path: the written ``metrics.json``.
        artifact_bytes: size of ``model.joblib`` in bytes.
        seconds: wall time of the whole run.
        metrics: the content of ``metrics.json``.
    """

    version: str
    artifact_path: Path
    metrics_path: Path
    artifact_bytes: int
    seconds: float
    metrics: dict[str, Any]

    def score(self, source: str, target: str, system: str = "combined") -> float:
        """Return the held-out macro-F1 of a system on a source and target.

        Args:
            source: e.g. ``"banking77"``, or ``"cfpb"`` for both CFPB files pooled.
            target: ``"category"`` or ``"product_line"``.
            system: ``"baseline"``, ``"model"`` or ``"combined"``.

        Raises:
            KeyError: no such result.
        """
        return float(self.metrics["results"][source][target][system]["macro_f1"])


def _scores(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the classes present in y_true, and per-class figures."""
    labels = sorted(set(y_true))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(
            float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4
        ),
        "per_class": {
            lab: {
                "precision": round(float(p[i]), 4),
                "recall": round(float(r[i]), 4),
                "f1": round(float(f[i]), 4),
                "support": int(s[i]),
            }
            for i, lab in enumerate(labels)
        },
    }


def _is_narrative(example: Example) -> bool:
    """CFPB letters and supervisors' corrections are narratives; BANKING77 are queries."""
    return example.source != BANKING77


def _labelled(examples: Iterable[Example], target: Target) -> list[Example]:
    return [e for e in examples if getattr(e, target) is not None]


def build_artifact(
    train_examples: Sequence[Example],
    *,
    config: ModelConfig,
    version: str,
    product_name_map: dict[str, str],
) -> dict[str, Any]:
    """Fit the vectorizers, the gate and the two experts per target; return the artifact.

    The narrative experts learn from narratives only (CFPB, extra examples); the query
    experts from every example, narratives weighted ``config.query_narrative_weight``.
    See :mod:`services.routing.classifier.model`.

    Raises:
        ValueError: an expert has fewer than two classes, or the gate only one kind of
            text, in the training data.
    """
    word, char = make_vectorizers(config)
    prepared = [prepare_text(e.text) for e in train_examples]
    features = fit_vectorizers(word, char, prepared)
    narrative = np.array([_is_narrative(e) for e in train_examples])
    gate = fit_gate(gate_features(features, prepared), narrative.tolist(), config)
    class_weights = {
        "category": config.narrative_category_class_weight,
        "product_line": config.narrative_product_line_class_weight,
    }
    experts: dict[str, dict[str, Any]] = {}
    class_maps: dict[str, dict[str, str]] = {}
    for target in TARGETS:
        labelled = np.array([getattr(e, target) is not None for e in train_examples])
        labels = np.array([str(getattr(e, target)) for e in train_examples])
        # The query expert learns the finer source labels where there are any (the 77
        # BANKING77 intents; see model.FINE_PREFIX) and sums them per code at prediction.
        fine = (
            np.array(
                [
                    f"{FINE_PREFIX}{e.fine}" if e.fine else str(getattr(e, target))
                    for e in train_examples
                ]
            )
            if config.query_fine_labels
            else labels
        )
        class_maps[target] = {
            str(f): str(c) for f, c, ok in zip(fine, labels, labelled, strict=True) if ok
        }
        experts[target] = {}
        for name, rows, weight_of_narrative, class_weight, c, y in (
            ("narrative", labelled & narrative, 1.0, class_weights[target], config.svm_c, labels),
            ("query", labelled, config.query_narrative_weight, None, config.query_svm_c, fine),
        ):
            idx = np.flatnonzero(rows)
            if len(set(labels[idx])) < 2:
                raise ValueError(f"{target}/{name}: need at least two classes to train")
            weights = np.where(narrative[idx], weight_of_narrative, 1.0)
            experts[target][name] = fit_target(
                features[idx],
                y[idx].tolist(),
                weights,
                c=c,
                class_weight=class_weight,
                folds=config.calibration_folds,
            )
    return {
        "format": ARTIFACT_FORMAT,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sklearn_version": sklearn.__version__,
        "config": asdict(config),
        "word_vectorizer": word,
        "char_vectorizer": char,
        "gate": gate,
        "experts": experts,
        "class_maps": class_maps,
        "product_name_map": product_name_map,
        "training_counts": dict(Counter(e.source for e in train_examples)),
    }


def _baseline(train_examples: Sequence[Example], target: Target) -> Callable[[list[str]], Any]:
    """TF-IDF word uni+bigrams + LinearSVC, unweighted: the reference system."""
    rows = _labelled(train_examples, target)
    vec = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2))
    svm = LinearSVC()
    features = vec.fit_transform([prepare_text(e.text) for e in rows])
    svm.fit(features, [getattr(e, target) for e in rows])
    return lambda texts: svm.predict(vec.transform([prepare_text(t) for t in texts]))


def _product_name_map(data_dir: Path) -> dict[str, str]:
    path = data_dir / "taxonomy" / "cfpb_product_to_product_line.csv"
    return data_mod._mapping(path, "cfpb_product", "product_line")


def _version_now() -> str:
    return datetime.now(UTC).strftime("v%Y%m%d-%H%M%S")


def default_out_dir() -> Path:
    """Return a new version folder under the shipped artifacts: ``artifacts/v<UTC time>``."""
    from services.routing.classifier import ARTIFACTS_DIR

    return ARTIFACTS_DIR / _version_now()


def train(
    data_dir: Path,
    out_dir: Path,
    *,
    fraction: float = 1.0,
    seed: int = 13,
    extra_examples: Sequence[ExtraExample] = (),
    config: ModelConfig | None = None,
    docs_path: Path | None = DEFAULT_DOCS,
    evaluate_icbc: bool = True,
) -> TrainingReport:
    """Train on the public data, evaluate on a held-out split and write the artifact.

    Args:
        data_dir: the ``shared/data`` folder (``cfpb/``, ``banking77/``, ``taxonomy/``,
            ``zh/``).
        out_dir: version folder to write ``model.joblib`` and ``metrics.json`` into (created
            if missing); its name is the artifact version, e.g. ``v20250101-120000``.
        fraction: share of each source to use, 0 < fraction <= 1 (stratified), for quick
            runs; the held-out split is 20 % of what is used.
        seed: seed of sub-sampling and the split.
        extra_examples: further (text, category, product_line) training examples, e.g.
            supervisors' corrections; they are never part of the evaluation.
        config: model hyper-parameters; default :class:`ModelConfig`.
        docs_path: where to regenerate the Markdown report; ``None`` to skip.
        evaluate_icbc: also classify the ICBC app reviews (the same ``fraction`` of them)
            and report the share landing in ``digital_banking``.

    Returns:
        The report, including the metrics written to ``metrics.json``.

    Raises:
        ValueError: fraction out of range or an extra example with an unknown code.
        OSError: data files missing or output not writable.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    for _text, category, product_line in extra_examples:
        if category not in CATEGORIES or product_line not in PRODUCT_LINES:
            raise ValueError(f"extra example with unknown codes: {category!r}, {product_line!r}")
    started = time.perf_counter()
    config = config or ModelConfig()
    version = out_dir.name
    train_parts: dict[str, list[Example]] = {}
    test_parts: dict[str, list[Example]] = {}
    for source in SOURCES:
        examples = data_mod.load_source(data_dir, source)
        examples = data_mod.subsample(examples, fraction, _STRATA[source], seed)
        train_parts[source], test_parts[source] = data_mod.stratified_split(
            examples, _STRATA[source], test_share=TEST_SHARE, seed=seed
        )
    train_all = [e for s in SOURCES for e in train_parts[s]]
    train_all += [Example(t, c, p, "extra") for t, c, p in extra_examples]

    artifact = build_artifact(
        train_all, config=config, version=version, product_name_map=_product_name_map(data_dir)
    )
    classifier = ComplaintClassifier(artifact)
    baselines = {t: _baseline(train_all, t) for t in TARGETS}

    results: dict[str, dict[str, dict[str, Any]]] = {}
    pooled: dict[str, dict[str, list[str]]] = {}
    for source in SOURCES:
        tests = test_parts[source]
        texts = [e.text for e in tests]
        combined = classifier.predict_many(texts)
        model_only = classifier.predict_model_only(texts)
        results[source] = {}
        for target in TARGETS:
            idx = [i for i, e in enumerate(tests) if getattr(e, target) is not None]
            if not idx:
                continue
            y_true = [str(getattr(tests[i], target)) for i in idx]
            base_pred = baselines[target]([texts[i] for i in idx])
            systems = {
                "baseline": [str(base_pred[k]) for k in range(len(idx))],
                "model": [str(model_only[target][i]) for i in idx],
                "combined": [str(getattr(combined[i], target)) for i in idx],
            }
            results[source][target] = {n: _scores(y_true, p) for n, p in systems.items()}
            if source in (CFPB_FULL, CFPB_REDUCED):
                bucket = pooled.setdefault(target, {"true": []})
                bucket["true"] += y_true
                for n, p in systems.items():
                    bucket.setdefault(n, []).extend(p)
    results["cfpb"] = {
        target: {n: _scores(b["true"], p) for n, p in b.items() if n != "true"}
        for target, b in pooled.items()
    }

    icbc: dict[str, Any] = {}
    if evaluate_icbc:
        icbc = _evaluate_icbc(classifier, data_dir, fraction, seed)

    out_dir.mkdir(parents=True, exist_ok=True)
    artifact_path = out_dir / ARTIFACT_FILE
    joblib.dump(artifact, artifact_path, compress=3)
    metrics: dict[str, Any] = {
        "version": version,
        "created_at": artifact["created_at"],
        "seed": seed,
        "fraction": fraction,
        "test_share": TEST_SHARE,
        "config": asdict(config),
        "counts": {s: {"train": len(train_parts[s]), "test": len(test_parts[s])} for s in SOURCES}
        | {"extra": {"train": len(extra_examples), "test": 0}},
        "results": results,
        "icbc_reviews": icbc,
        "artifact_bytes": artifact_path.stat().st_size,
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    if docs_path is not None:
        from services.routing.classifier.report import render_markdown

        docs_path.parent.mkdir(parents=True, exist_ok=True)
        docs_path.write_text(render_markdown(metrics), encoding="utf-8")
    return TrainingReport(
        version=version,
        artifact_path=artifact_path,
        metrics_path=metrics_path,
        artifact_bytes=metrics["artifact_bytes"],
        seconds=metrics["train_seconds"],
        metrics=metrics,
    )


def _evaluate_icbc(
    classifier: ComplaintClassifier, data_dir: Path, fraction: float, seed: int
) -> dict[str, Any]:
    reviews = data_mod.load_icbc_reviews(data_dir)
    if fraction < 1.0:
        rng = np.random.default_rng(seed)
        keep = rng.choice(len(reviews), size=max(1, round(fraction * len(reviews))), replace=False)
        reviews = [reviews[i] for i in sorted(keep)]
    preds = classifier.predict_many(reviews)
    products = Counter(p.product_line for p in preds)
    categories = Counter(p.category for p in preds)
    # Sent from inside the app (channel "mobile_app"), the reviews whose text decides no
    # product line would get digital_banking from the channel (CHANNEL_PRODUCT_LINES).
    undecided = sum(
        p.explanation.get("decided_by", {}).get("product_line") == "fallback"  # type: ignore[union-attr]
        for p in preds
    )
    n = max(1, len(reviews))
    return {
        "n": len(reviews),
        "digital_banking_share": round(products["digital_banking"] / n, 4),
        "digital_banking_share_via_app_channel": round(
            (products["digital_banking"] + undecided) / n, 4
        ),
        "undecided_product_line_share": round(undecided / n, 4),
        "product_line_counts": dict(products.most_common()),
        "category_counts": dict(categories.most_common()),
        "language_zh_share": round(
            sum(p.language == "zh" for p in preds) / max(1, len(reviews)), 4
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run training from the command line; print a one-line summary per source.

    Returns:
        The process exit code (0 on success).
    """
    parser = argparse.ArgumentParser(prog="train-classifier", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="version folder (default: services/routing/artifacts/v<UTC time>)",
    )
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument(
        "--extra",
        type=Path,
        default=None,
        help="CSV of extra examples (text,category,product_line), e.g. exported overrides",
    )
    args = parser.parse_args(argv)
    from services.routing.domain import examples as examples_mod

    out = args.out or default_out_dir()
    report = train(
        args.data,
        out,
        fraction=args.fraction,
        seed=args.seed,
        docs_path=None if args.no_docs else args.docs,
        extra_examples=examples_mod.read_csv(args.extra) if args.extra else (),
    )
    out_lines = [
        f"artifact {report.artifact_path} ({report.artifact_bytes} bytes, {report.seconds:.0f} s)"
    ]
    for source, targets in report.metrics["results"].items():
        for target, systems in targets.items():
            figures = "  ".join(
                f"{n}: acc {m['accuracy']:.3f} macro-F1 {m['macro_f1']:.3f}"
                for n, m in systems.items()
            )
            out_lines.append(f"{source:16} {target:13} {figures}")
    icbc = report.metrics.get("icbc_reviews") or {}
    if icbc:
        out_lines.append(
            f"icbc reviews -> digital_banking: {icbc['digital_banking_share']:.3f} "
            f"(sent via the app channel: {icbc['digital_banking_share_via_app_channel']:.3f})"
        )
    sys.stdout.write("\n".join(out_lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
