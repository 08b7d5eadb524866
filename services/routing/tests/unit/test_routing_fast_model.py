"""The numpy re-implementations of calibrated SVM and gate probabilities match scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from services.routing.classifier import model
from services.routing.classifier.model import (
    FastCalibrated,
    FastGate,
    fit_target,
    gate_features,
)


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_matrix, np.ndarray, list[str]]:
    rng = np.random.default_rng(3)
    x = sp.random(240, 60, density=0.2, format="lil", random_state=4, dtype=np.float32)
    labels = np.array(["a", "b", "c", "d"])[rng.integers(0, 4, size=240)]
    # make the classes learnable
    for i, lab in enumerate(labels):
        x[i, "abcd".index(lab)] = 2.0
    texts = ["x" * int(n) for n in rng.integers(5, 2000, size=240)]
    return x.tocsr(), labels, texts


@pytest.mark.parametrize("classes", [["a", "b", "c", "d"], ["a", "b"]])
def test_fast_calibrated_matches_sklearn(
    data: tuple[sp.csr_matrix, np.ndarray, list[str]], classes: list[str]
) -> None:
    x, labels, _ = data
    keep = np.isin(labels, classes)
    clf = fit_target(
        x[keep], labels[keep].tolist(), np.ones(keep.sum()), c=1.0, class_weight="balanced"
    )
    fast = FastCalibrated(clf)
    assert list(fast.classes_) == classes
    expected = clf.predict_proba(x)
    got = fast.predict_proba(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-9)


def test_fast_gate_matches_sklearn(data: tuple[sp.csr_matrix, np.ndarray, list[str]]) -> None:
    x, _, texts = data
    is_long = np.array([len(t) > 800 for t in texts])
    gate = LogisticRegression(C=10.0, max_iter=2000).fit(gate_features(x, texts), is_long)
    expected = gate.predict_proba(gate_features(x, texts))[:, 1]
    np.testing.assert_allclose(FastGate(gate).narrative_probability(x, texts), expected, atol=1e-6)


def test_fast_gate_refuses_a_multiclass_model(
    data: tuple[sp.csr_matrix, np.ndarray, list[str]],
) -> None:
    x, labels, texts = data
    multi = LogisticRegression(max_iter=500).fit(gate_features(x, texts), labels)
    with pytest.raises(ValueError, match="binary"):
        FastGate(multi)


def test_fast_tfidf_matches_sklearn() -> None:
    train = ["my card was declined", "the app crashes at login", "fee fee fee charged twice"] * 3
    for vec in model.make_vectorizers(model.ModelConfig()):
        vec.fit(train)
        texts = ["card declined twice at the app", "", "zzz unknown words", train[2]]
        expected = vec.transform(texts).toarray()
        np.testing.assert_allclose(model._tfidf(vec, texts).toarray(), expected, atol=1e-6)
