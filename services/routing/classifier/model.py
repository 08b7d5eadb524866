"""Statistical part of the classifier: TF-IDF features and calibrated linear models.

One feature space (word 1-2-grams + character 2-5-grams within word boundaries, both
TF-IDF with sublinear term frequency) feeds two calibrated linear SVMs: one for the
category and one for the product line. Probabilities come from sigmoid calibration on
3-fold cross-validation (``CalibratedClassifierCV(ensemble=False)``), so a single linear
model per target remains and its weights explain a prediction.

The artifact is a plain dict of scikit-learn objects (no classes of this package are
pickled), so moving code around does not break old artifacts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

Target = Literal["category", "product_line"]
TARGETS: tuple[Target, ...] = ("category", "product_line")

MAX_MODEL_CHARS = 6000
"""Texts are cut to this many characters before featurisation (training and prediction)."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def prepare_text(text: str) -> str:
    """Normalise a text for the model: drop control characters, cut to MAX_MODEL_CHARS."""
    return _CONTROL.sub(" ", text[: MAX_MODEL_CHARS * 2])[:MAX_MODEL_CHARS]


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the model (defaults chosen on the held-out split, see docs).

    Attributes:
        word_max_features: vocabulary size of the word n-gram part.
        char_max_features: vocabulary size of the character n-gram part.
        svm_c: inverse regularisation strength of LinearSVC.
        cfpb_weight: sample weight of CFPB narratives relative to BANKING77 queries
            (CFPB is smaller and harder; up-weighting it helps its macro-F1).
        calibration_folds: folds used to fit the sigmoid calibration.
        class_weight: ``"balanced"`` (weights inverse to class frequency) or ``None``.
    """

    word_max_features: int = 30000
    char_max_features: int = 40000
    svm_c: float = 0.5
    cfpb_weight: float = 3.0
    calibration_folds: int = 3
    class_weight: str | None = "balanced"


def make_vectorizer(config: ModelConfig) -> FeatureUnion:
    """Build the (unfitted) word + character TF-IDF feature union."""
    return FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    sublinear_tf=True,
                    min_df=2,
                    ngram_range=(1, 2),
                    max_features=config.word_max_features,
                    dtype=np.float32,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    sublinear_tf=True,
                    min_df=3,
                    analyzer="char_wb",
                    ngram_range=(2, 5),
                    max_features=config.char_max_features,
                    dtype=np.float32,
                ),
            ),
        ]
    )


def fit_target(
    features: Any,
    labels: Sequence[str],
    weights: npt.NDArray[np.float64],
    config: ModelConfig,
) -> CalibratedClassifierCV:
    """Fit one calibrated linear SVM.

    Args:
        features: sparse matrix, shape (n_samples, n_features).
        labels: class code per sample, length n_samples.
        weights: sample weight per sample, shape (n_samples,).
        config: hyper-parameters.

    Returns:
        The fitted classifier; its ``classes_`` are the codes seen in ``labels``.
    """
    y = np.asarray(labels)
    folds = max(2, config.calibration_folds)
    # Calibration needs every class in every fold: repeat the rows of very rare classes.
    classes, counts = np.unique(y, return_counts=True)
    extra = [
        i
        for cls, n in zip(classes, counts, strict=True)
        if n < folds
        for i in np.flatnonzero(y == cls).tolist() * (folds // n)
    ]
    if extra:
        features = sp.vstack([features, features[extra]]).tocsr()
        y = np.concatenate([y, y[extra]])
        weights = np.concatenate([weights, weights[extra]])
    svm = LinearSVC(C=config.svm_c, class_weight=config.class_weight, max_iter=5000)
    clf = CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False)
    clf.fit(features, y, sample_weight=weights)
    # float32 weights halve the artifact; predictions are unchanged to ~1e-6.
    inner = clf.calibrated_classifiers_[0].estimator
    inner.coef_ = inner.coef_.astype(np.float32)
    return clf


def linear_weights(clf: CalibratedClassifierCV) -> npt.NDArray[np.float32]:
    """Return the SVM weight matrix behind a calibrated classifier.

    Returns:
        shape (n_classes, n_features); for two classes, shape (1, n_features).
    """
    coef: npt.NDArray[np.float32] = clf.calibrated_classifiers_[0].estimator.coef_
    return coef


@dataclass(frozen=True)
class FeatureWeight:
    """One feature's contribution to a class score.

    Attributes:
        term: the word n-gram or character n-gram.
        kind: ``"word"`` or ``"char"``.
        weight: tf-idf value times SVM weight (a positive share of the decision score).
    """

    term: str
    kind: str
    weight: float


def top_features(
    row: Any,
    clf: CalibratedClassifierCV,
    class_code: str,
    feature_names: npt.NDArray[np.str_],
    k: int = 8,
) -> list[FeatureWeight]:
    """Return the features that pushed one text most towards a class.

    Args:
        row: sparse tf-idf row of the text, shape (1, n_features).
        clf: the fitted classifier of the target.
        class_code: the class to explain; must be in ``clf.classes_``.
        feature_names: ``vectorizer.get_feature_names_out()``, shape (n_features,).
        k: at most this many features, strongest first.

    Returns:
        Features with a positive contribution only; empty when the text has none.
    """
    coef = linear_weights(clf)
    classes = list(clf.classes_)
    idx = classes.index(class_code)
    # binary: one weight vector, for classes_[1]
    vec = coef[idx] if coef.shape[0] > 1 else (coef[0] if idx == 1 else -coef[0])
    row = row.tocsr()
    contrib = row.data * vec[row.indices]
    order = np.argsort(-contrib)[:k]
    out: list[FeatureWeight] = []
    for j in order:
        if contrib[j] <= 0:
            break
        kind, _, term = str(feature_names[row.indices[j]]).partition("__")
        out.append(FeatureWeight(term=term, kind=kind, weight=round(float(contrib[j]), 4)))
    return out
