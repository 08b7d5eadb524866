"""Statistical part of the classifier: TF-IDF features, a source gate and calibrated experts.

Features: word 1-2-grams plus character 2-5-grams within word boundaries, both TF-IDF with
sublinear term frequency; the character part reads only the first
:data:`CHAR_MAX_CHARS` characters (it is the costly part on long letters, and the first
thousand characters carry what it adds).

The labelled sources differ in kind: CFPB narratives are long complaint letters, BANKING77
queries one short sentence. One model over both lets the 8,000 short queries pull the
narratives' product-line and category boundaries towards card and payment questions
(trained on CFPB alone, the same features gain about 0.07 CFPB product-line macro-F1).
So each target has two experts, both calibrated linear SVMs:

- ``narrative``: trained on complaint narratives (CFPB and supervisors' corrections);
- ``query``: trained on everything, BANKING77 at full weight and narratives at
  ``query_narrative_weight``, so that it knows every class;

and a *gate*, a logistic regression on the same features plus the log length, gives the
probability ``g`` that a text is a narrative. The prediction is the mixture
``g * P_narrative + (1 - g) * P_query``: a per-source calibration that needs no source
label at prediction time.

Probabilities come from sigmoid calibration on 3-fold cross-validation
(``CalibratedClassifierCV(ensemble=False)``), so a single linear model per expert remains
and its weights explain a prediction. :class:`FastCalibrated` recomputes those
probabilities in plain numpy for speed.

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
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

Target = Literal["category", "product_line"]
TARGETS: tuple[Target, ...] = ("category", "product_line")
Expert = Literal["narrative", "query"]
EXPERTS: tuple[Expert, ...] = ("narrative", "query")

MAX_MODEL_CHARS = 6000
"""Texts are cut to this many characters before word featurisation (training and prediction)."""
CHAR_MAX_CHARS = 1000
"""The character n-gram part reads only this many leading characters."""
LENGTH_SCALE = 4.0
"""The gate's length feature is ``log(1 + characters) / LENGTH_SCALE``."""

FINE_PREFIX = "fine:"
"""Prefix of a finer source label among a query expert's classes, e.g. ``fine:card_arrival``;
the artifact's ``class_maps[target]`` maps each such class to its taxonomy code."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def prepare_text(text: str) -> str:
    """Normalise a text for the model: drop control characters, cut to MAX_MODEL_CHARS."""
    return _CONTROL.sub(" ", text[: MAX_MODEL_CHARS * 2])[:MAX_MODEL_CHARS]


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the model (chosen on the training part, see docs/classifier.md).

    Attributes:
        word_max_features: vocabulary size of the word n-gram part.
        char_max_features: vocabulary size of the character n-gram part.
        svm_c: inverse regularisation strength of every LinearSVC.
        narrative_category_class_weight: class weighting of the narrative category expert
            (``"balanced"``: inverse to class frequency; CFPB categories are skewed).
        narrative_product_line_class_weight: the same for the narrative product-line expert.
        query_narrative_weight: sample weight of narratives in the query experts, relative
            to BANKING77 queries (they are there so that the experts know every class).
        gate_c: inverse regularisation strength of the gate's logistic regression.
        calibration_folds: folds used to fit the sigmoid calibration.
        query_fine_labels: the query experts learn the sources' finer labels (the 77
            BANKING77 intents) instead of the taxonomy codes, and their probabilities are
            summed per code; chosen on a validation split carved from the training part
            (BANKING77 category macro-F1 0.934 -> 0.945 with C=1, CFPB unchanged or better;
            see docs/classifier.md).
        query_svm_c: inverse regularisation strength of the query experts' LinearSVC.
    """

    word_max_features: int = 40000
    char_max_features: int = 60000
    svm_c: float = 1.0
    narrative_category_class_weight: str | None = "balanced"
    narrative_product_line_class_weight: str | None = None
    query_narrative_weight: float = 0.1
    gate_c: float = 10.0
    calibration_folds: int = 3
    query_fine_labels: bool = True
    query_svm_c: float = 1.0


def make_vectorizers(config: ModelConfig) -> tuple[TfidfVectorizer, TfidfVectorizer]:
    """Build the (unfitted) word and character TF-IDF vectorizers."""
    word = TfidfVectorizer(
        sublinear_tf=True,
        min_df=2,
        ngram_range=(1, 2),
        max_features=config.word_max_features,
        dtype=np.float32,
    )
    char = TfidfVectorizer(
        sublinear_tf=True,
        min_df=3,
        analyzer="char_wb",
        ngram_range=(2, 5),
        max_features=config.char_max_features,
        dtype=np.float32,
    )
    return word, char


def fit_vectorizers(
    word: TfidfVectorizer, char: TfidfVectorizer, texts: Sequence[str]
) -> sp.csr_matrix:
    """Fit both vectorizers on prepared texts and return their features (as :func:`featurize`).

    The vectorizers' ``stop_words_`` (every pruned term, only for introspection) are
    dropped so that the artifact stays small.
    """
    w = word.fit_transform(texts)
    c = char.fit_transform([t[:CHAR_MAX_CHARS] for t in texts])
    for vec in (word, char):
        if hasattr(vec, "stop_words_"):
            del vec.stop_words_
    return sp.hstack([w, c], format="csr")


def _tfidf(vec: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    """Return ``vec.transform(texts)`` without scikit-learn's per-call validation.

    Counts come from ``CountVectorizer.transform``; sublinear tf, idf weighting and L2
    row normalisation are then applied in numpy, exactly as ``TfidfTransformer`` does (about
    2 ms less per call, which matters when one text is classified at a time).
    """
    counts = CountVectorizer.transform(vec, texts).tocsr().astype(np.float32)
    data = counts.data
    if vec.sublinear_tf:
        np.log(data, out=data)
        data += 1.0
    data *= vec.idf_.astype(np.float32)[counts.indices]
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=counts.shape[0]))
    data /= np.maximum(norms, 1e-12).astype(np.float32)[rows]
    return counts


def featurize(word: TfidfVectorizer, char: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    """Return the features of prepared texts, shape (n_texts, n_word + n_char)."""
    return sp.hstack(
        [_tfidf(word, texts), _tfidf(char, [t[:CHAR_MAX_CHARS] for t in texts])],
        format="csr",
    )


def gate_features(features: sp.csr_matrix, texts: Sequence[str]) -> sp.csr_matrix:
    """Append the length feature to the text features, shape (n, n_features + 1)."""
    lengths = np.log1p(np.array([len(t) for t in texts], dtype=np.float32)) / LENGTH_SCALE
    return sp.hstack([features, sp.csr_matrix(lengths.reshape(-1, 1))], format="csr")


def fit_gate(
    features: sp.csr_matrix, is_narrative: Sequence[bool], config: ModelConfig
) -> LogisticRegression:
    """Fit the gate: P(narrative) from :func:`gate_features`.

    Raises:
        ValueError: only one kind of text in the training data.
    """
    gate = LogisticRegression(C=config.gate_c, max_iter=3000)
    gate.fit(features, np.asarray(is_narrative, dtype=bool))
    return gate


def fit_target(
    features: Any,
    labels: Sequence[str],
    weights: npt.NDArray[np.float64],
    *,
    c: float,
    class_weight: str | None,
    folds: int = 3,
) -> CalibratedClassifierCV:
    """Fit one calibrated linear SVM.

    Args:
        features: sparse matrix, shape (n_samples, n_features).
        labels: class code per sample, length n_samples.
        weights: sample weight per sample, shape (n_samples,).
        c: inverse regularisation strength.
        class_weight: ``"balanced"`` or ``None``.
        folds: calibration folds, >= 2.

    Returns:
        The fitted classifier; its ``classes_`` are the codes seen in ``labels``.
    """
    y = np.asarray(labels)
    folds = max(2, folds)
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
    svm = LinearSVC(C=c, class_weight=class_weight, max_iter=5000)
    clf = CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False)
    clf.fit(features, y, sample_weight=weights)
    # float16 weights quarter the artifact; scores move by about 1e-4 relative, far below
    # what changes a decision (checked on the held-out split: same macro-F1 to 0.001).
    inner = clf.calibrated_classifiers_[0].estimator
    inner.coef_ = inner.coef_.astype(np.float16)
    return clf


class FastCalibrated:
    """The probabilities of a fitted ``CalibratedClassifierCV`` in plain numpy.

    For a LinearSVC with sigmoid calibration and ``ensemble=False``. scikit-learn's
    ``predict_proba`` re-validates its input in every nested estimator and calibrator,
    which costs more than the arithmetic for one text (about 4 ms of 5 ms per call here).
    This computes the same numbers: decision scores ``X @ coef.T + intercept``, per-class
    sigmoid ``1 / (1 + exp(a * score + b))``, rows normalised to sum 1 (two classes:
    ``[1 - p, p]``). Agreement with scikit-learn is tested to 1e-6.
    """

    def __init__(self, clf: CalibratedClassifierCV) -> None:
        """Copy the weights and calibration parameters out of ``clf``.

        Raises:
            ValueError: ``clf`` is not a single sigmoid-calibrated linear model.
        """
        if len(clf.calibrated_classifiers_) != 1 or clf.method != "sigmoid":
            raise ValueError("expected CalibratedClassifierCV(method='sigmoid', ensemble=False)")
        inner = clf.calibrated_classifiers_[0]
        est = inner.estimator
        if list(est.classes_) != list(clf.classes_):
            raise ValueError("estimator and calibrated classes differ")
        self.classes_: npt.NDArray[Any] = clf.classes_
        self._coef_t = np.ascontiguousarray(est.coef_.T, dtype=np.float32)
        self._intercept = np.asarray(est.intercept_, dtype=np.float64)
        self._a = np.array([c.a_ for c in inner.calibrators], dtype=np.float64)
        self._b = np.array([c.b_ for c in inner.calibrators], dtype=np.float64)

    def predict_proba(self, features: Any) -> npt.NDArray[np.float64]:
        """Return probabilities, shape (n_samples, n_classes), rows summing to 1."""
        scores = np.asarray(features @ self._coef_t, dtype=np.float64) + self._intercept
        p = 1.0 / (1.0 + np.exp(np.clip(self._a * scores + self._b, -700.0, 700.0)))
        if len(self.classes_) == 2:
            return np.hstack([1.0 - p, p])
        total = p.sum(axis=1, keepdims=True)
        uniform = np.full_like(p, 1.0 / p.shape[1])
        return np.divide(p, total, out=uniform, where=total != 0)


class FastGate:
    """The gate's P(narrative) in plain numpy (same numbers as ``predict_proba[:, 1]``)."""

    def __init__(self, gate: LogisticRegression) -> None:
        """Copy the weights out of a fitted binary logistic regression whose class 1 is True.

        Raises:
            ValueError: not a binary gate with classes (False, True).
        """
        if list(gate.classes_) != [False, True]:
            raise ValueError("the gate must be binary with classes [False, True]")
        coef = np.asarray(gate.coef_[0], dtype=np.float64)
        self._w = np.ascontiguousarray(coef[:-1], dtype=np.float32)
        self._w_len = float(coef[-1])
        self._b = float(gate.intercept_[0])

    def narrative_probability(self, features: Any, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Return P(narrative) per text, shape (n_texts,)."""
        lengths = np.log1p(np.array([len(t) for t in texts], dtype=np.float64)) / LENGTH_SCALE
        z = np.asarray(features @ self._w, dtype=np.float64).ravel() + self._w_len * lengths
        return 1.0 / (1.0 + np.exp(-np.clip(z + self._b, -700.0, 700.0)))


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
