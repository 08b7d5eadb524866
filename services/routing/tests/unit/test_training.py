import json
from pathlib import Path

import pytest

from services.routing.classifier import ComplaintClassifier
from services.routing.classifier.data import BANKING77, SOURCES, load_source, stratified_split
from services.routing.classifier.train import train

REPO_ROOT = Path(__file__).resolve().parents[4]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def test_split_is_stratified_deterministic_and_keeps_duplicates_together() -> None:
    examples = load_source(DATA_DIR, BANKING77)
    train_a, test_a = stratified_split(examples, lambda e: str(e.category), seed=5)
    _train_b, test_b = stratified_split(examples, lambda e: str(e.category), seed=5)
    assert [e.text for e in test_a] == [e.text for e in test_b]
    assert len(train_a) + len(test_a) == len(examples)
    assert 0.18 < len(test_a) / len(examples) < 0.22
    train_texts = {e.text.lower().strip() for e in train_a}
    assert not any(e.text.lower().strip() in train_texts for e in test_a)
    assert {e.category for e in test_a} == {e.category for e in examples}


def test_train_on_a_slice(tmp_path: Path) -> None:
    out = tmp_path / "v-test"
    docs = tmp_path / "classifier.md"
    report = train(
        DATA_DIR,
        out,
        fraction=0.15,
        seed=13,
        docs_path=docs,
        extra_examples=[("网点排队两个小时", "service_quality", "other")] * 3,
    )
    assert report.version == "v-test"
    # On this 15 % slice the shipped configuration scores about 0.89 (BANKING77 category),
    # 0.60 (CFPB product line) and 0.92 (ICBC share), the reference system 0.86 on BANKING77.
    assert report.score(BANKING77, "category") >= 0.85
    assert report.score(BANKING77, "category", "baseline") > 0.5
    assert report.score(BANKING77, "category") > report.score(BANKING77, "category", "baseline")
    assert report.score("cfpb", "product_line") >= 0.5
    assert report.metrics["icbc_reviews"]["digital_banking_share"] >= 0.85

    metrics = json.loads(report.metrics_path.read_text())
    for source in SOURCES:
        assert metrics["counts"][source]["test"] > 0
    cat = metrics["results"][BANKING77]["category"]["combined"]
    assert set(cat) == {"n", "accuracy", "macro_f1", "per_class"}
    assert all(
        set(m) == {"precision", "recall", "f1", "support"} for m in cat["per_class"].values()
    )
    assert metrics["counts"]["extra"]["train"] == 3

    text = docs.read_text()
    assert "Casanueva" in text
    assert "CC BY 4.0" in text
    assert "public domain" in text
    assert "digital_banking" in text

    loaded = ComplaintClassifier.load(out)
    assert loaded.version == "v-test"
    again = loaded.predict("I lost my card and someone used it")
    assert again.explanation["model_version"] == "v-test"
    assert report.artifact_bytes == report.artifact_path.stat().st_size


def test_train_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fraction"):
        train(DATA_DIR, tmp_path / "x", fraction=0.0)
    with pytest.raises(ValueError, match="unknown codes"):
        train(DATA_DIR, tmp_path / "x", extra_examples=[("t", "nope", "cards")])
