"""Complaint classifier of the routing service: category, product line, confidence, why.

Usage::

    from services.routing.classifier import ComplaintClassifier

    clf = ComplaintClassifier.load()          # newest artifact in services/routing/artifacts/
    pred = clf.predict("手机银行登录不了，一直闪退")
    pred.category, pred.product_line, pred.confidence, pred.explanation

Rules (keywords and regexes per language, :mod:`.rules`) and a statistical model
(TF-IDF features, a narrative/query gate and calibrated linear SVM experts, :mod:`.model`)
are combined per target:

- English (and other Latin-script text): the model decides; a strong rule (weight >= 0.8)
  overrides a model prediction whose probability is below 0.3, and a rule that agrees
  with the model raises the confidence.
- Chinese: the model has no Chinese training data, so rules decide; without a rule hit the
  model is used only when it is sure (>= 0.6, e.g. mostly English text), otherwise the
  answer is ``other`` with low confidence. Product-line ties go to ``digital_banking``.
- No usable text (empty, emoji, digits): ``other`` with confidence 0.

``predict`` never raises on a ``str``: an internal failure gives the same fallback with
the error type in the explanation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from services.routing.classifier import rules as rules_mod
from services.routing.classifier.language import UNDETERMINED, detect_language
from services.routing.classifier.model import (
    EXPERTS,
    TARGETS,
    FastCalibrated,
    FastGate,
    Target,
    featurize,
    prepare_text,
    top_features,
)
from services.routing.classifier.taxonomy import (
    CATEGORIES,
    OTHER,
    PRODUCT_LINES,
    Priority,
    priority_for,
)

__all__ = [
    "ARTIFACTS_DIR",
    "ARTIFACT_FILE",
    "ComplaintClassifier",
    "Prediction",
    "latest_artifact",
]

log = logging.getLogger(__name__)

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts"
"""Folder of the shipped artifacts, one sub-folder per version."""
ARTIFACT_FILE = "model.joblib"
ARTIFACT_FORMAT = 2

MAX_INPUT_CHARS = 20000
"""Longer input is cut to this many characters before anything else."""
EN_OVERRIDE_BELOW = 0.3
"""A strong rule overrides an English model prediction whose probability is below this."""
MODEL_ALONE_MIN = 0.6
"""For Chinese (and other non-Latin) text without rule hits, trust the model from here on."""
FALLBACK_CONFIDENCE = 0.1
"""Confidence of the ``other`` fallback when the model is unsure and no rule fired."""
CHANNEL_PRODUCT_LINES: dict[str, str] = {"mobile_app": "digital_banking"}
"""Product line implied by the intake channel when the text names none: a complaint sent
from inside the mobile-banking app with no product named ("太差了", "用不了") is about the
app. Used only when neither a rule nor a confident model decided the product line."""
CHANNEL_CONFIDENCE = 0.6
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


@dataclass(frozen=True)
class Prediction:
    """The classification of one text.

    Attributes:
        category: category code from the taxonomy (``other`` when unknown).
        product_line: product-line code from the taxonomy (``other`` when unknown).
        category_confidence: 0..1, probability-like.
        product_line_confidence: 0..1, probability-like.
        confidence: ``min(category_confidence, product_line_confidence)``.
        language: ISO 639-1 code (``"zh"``, ``"en"``, ...) or ``"und"``; detected when the
            caller did not give one.
        priority: suggested priority ``"P1"`` (highest) .. ``"P4"`` from the category.
        explanation: JSON-ready dict with ``rules`` (the rules that fired: rule_id, target,
            code, weight, matched), ``keywords`` (matched rule keywords and the strongest
            model terms), ``model_features`` (per target, the top terms with weights for the
            predicted class), ``model_top`` (per target, the three most probable classes),
            ``decided_by`` (per target: model, rules, model+rules, product_hint, channel,
            fallback), ``narrative_weight`` (the gate's P(narrative), which weighs the
            narrative expert against the query expert)
            and ``model_version``.
    """

    category: str
    product_line: str
    category_confidence: float
    product_line_confidence: float
    confidence: float
    language: str
    priority: str = Priority.P4.value
    explanation: dict[str, object] = field(default_factory=dict)


def latest_artifact(directory: Path = ARTIFACTS_DIR) -> Path:
    """Return the artifact file of the newest version in a folder.

    Versions are sub-folder names that sort by time (``vYYYYMMDD-HHMMSS``).

    Raises:
        FileNotFoundError: no ``<version>/model.joblib`` in the folder.
    """
    candidates = sorted(p for p in directory.glob(f"*/{ARTIFACT_FILE}") if p.is_file())
    if not candidates:
        raise FileNotFoundError(f"no classifier artifact under {directory}")
    return candidates[-1]


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text[:MAX_INPUT_CHARS])


def _argmax(scores: Mapping[str, float], prefer: Sequence[str] = ()) -> tuple[str, float]:
    best = max(scores.values())
    tied = [c for c, s in scores.items() if s == best]
    for code in prefer:
        if code in tied:
            return code, best
    return sorted(tied)[0], best


def _decide(
    probs: Mapping[str, float],
    scores: Mapping[str, float],
    *,
    model_first: bool,
    has_features: bool,
    prefer: Sequence[str] = (),
) -> tuple[str, float, str]:
    """Combine model probabilities and rule scores of one target into (code, conf, how)."""
    if has_features:
        model_code, p_model = _argmax(probs)
    else:
        model_code, p_model = OTHER, 0.0
    if scores:
        rule_code, s_rule = _argmax(scores, prefer)
    if model_first and has_features:
        if not scores:
            return model_code, p_model, "model"
        if rule_code == model_code:
            return model_code, 1.0 - (1.0 - p_model) * (1.0 - 0.5 * s_rule), "model+rules"
        if s_rule >= rules_mod.STRONG_RULE_WEIGHT and p_model < EN_OVERRIDE_BELOW:
            return rule_code, max(probs.get(rule_code, 0.0), s_rule * (1.0 - p_model)), "rules"
        return model_code, p_model, "model"
    if scores:
        if has_features and rule_code == model_code:
            return rule_code, 1.0 - (1.0 - s_rule) * (1.0 - 0.5 * p_model), "model+rules"
        return rule_code, s_rule, "rules"
    if has_features and p_model >= MODEL_ALONE_MIN:
        return model_code, p_model, "model"
    return OTHER, (FALLBACK_CONFIDENCE if has_features else 0.0), "fallback"


class ComplaintClassifier:
    """Rules plus a trained model; thread-safe for prediction once loaded."""

    def __init__(self, artifact: Mapping[str, Any]) -> None:
        """Wrap a loaded artifact dict (see :func:`services.routing.classifier.train.train`).

        Raises:
            ValueError: the dict is not a classifier artifact of format 2.
        """
        if artifact.get("format") != ARTIFACT_FORMAT or "experts" not in artifact:
            raise ValueError(f"not a complaint-classifier artifact of format {ARTIFACT_FORMAT}")
        self._artifact = dict(artifact)
        self.version: str = str(artifact["version"])
        self._word = artifact["word_vectorizer"]
        self._char = artifact["char_vectorizer"]
        self._gate = FastGate(artifact["gate"])
        self._experts: dict[Target, dict[str, Any]] = {
            t: dict(artifact["experts"][t]) for t in TARGETS
        }
        self._fast = {t: {e: FastCalibrated(self._experts[t][e]) for e in EXPERTS} for t in TARGETS}
        # A query expert may have finer classes (BANKING77 intents) that map onto codes;
        # artifacts without ``class_maps`` have codes only.
        maps = artifact.get("class_maps") or {}
        self._class_map: dict[Target, dict[str, str]] = {
            t: {str(k): str(v) for k, v in maps.get(t, {}).items()} for t in TARGETS
        }
        self._classes: dict[Target, list[str]] = {
            t: sorted(
                {
                    self._class_map[t].get(str(c), str(c))
                    for e in EXPERTS
                    for c in self._experts[t][e].classes_
                }
            )
            for t in TARGETS
        }
        # per target and expert: matrix (n_expert_classes, n_codes) summing classes per code
        self._to_codes: dict[Target, dict[str, np.ndarray[Any, Any]]] = {}
        for t in TARGETS:
            self._to_codes[t] = {}
            for e in EXPERTS:
                own = [str(c) for c in self._experts[t][e].classes_]
                m = np.zeros((len(own), len(self._classes[t])))
                for j, c in enumerate(own):
                    m[j, self._classes[t].index(self._class_map[t].get(c, c))] = 1.0
                self._to_codes[t][e] = m
        self._feature_names = np.concatenate(
            [
                np.char.add("word__", self._word.get_feature_names_out().astype(str)),
                np.char.add("char__", self._char.get_feature_names_out().astype(str)),
            ]
        )
        self._product_names: dict[str, str] = {
            k.lower(): v for k, v in artifact.get("product_name_map", {}).items()
        }

    @classmethod
    def load(cls, path: Path | None = None) -> ComplaintClassifier:
        """Load an artifact.

        Args:
            path: a ``model.joblib`` file or a version folder holding one; default: the
                newest version under :data:`ARTIFACTS_DIR`. Only load trusted files
                (joblib unpickles).

        Raises:
            FileNotFoundError: no artifact there.
            ValueError: the file is not a classifier artifact.
        """
        if path is None:
            path = latest_artifact()
        elif path.is_dir():
            path = path / ARTIFACT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no classifier artifact at {path}")
        artifact = joblib.load(path)
        if not isinstance(artifact, Mapping):
            raise ValueError(f"{path} is not a classifier artifact")
        return cls(artifact)

    @property
    def metadata(self) -> dict[str, Any]:
        """Return the artifact's metadata: version, created_at, config, training counts."""
        keys = ("version", "created_at", "config", "training_counts", "sklearn_version")
        return {k: self._artifact.get(k) for k in keys}

    def predict(
        self,
        text: str,
        *,
        language: str | None = None,
        product_hint: str | None = None,
        channel: str | None = None,
    ) -> Prediction:
        """Classify one complaint text.

        Args:
            text: the complaint, any length (only the first 20,000 characters are used).
            language: ISO 639-1 code (``"zh"``, ``"zh-Hant"``, ``"en"``...); detected from
                the scripts when ``None``.
            product_hint: a product-line code or a CFPB product name known from the channel
                (e.g. the form's product field); when recognised it fixes the product line.
            channel: the intake channel (``"mobile_app"``, ...); when the text decides no
                product line, :data:`CHANNEL_PRODUCT_LINES` may (explained as ``channel``).

        Returns:
            The prediction; never raises for a ``str`` input.
        """
        return self.predict_many(
            [text], language=language, product_hints=[product_hint], channels=[channel]
        )[0]

    def predict_many(
        self,
        texts: Sequence[str],
        *,
        language: str | None = None,
        product_hints: Sequence[str | None] | None = None,
        channels: Sequence[str | None] | None = None,
    ) -> list[Prediction]:
        """Classify a batch (faster than one by one: one featurisation for all texts).

        Args:
            texts: the complaint texts.
            language: one language for all texts, or ``None`` to detect per text.
            product_hints: ``None`` or one hint (or ``None``) per text.
            channels: ``None`` or one intake channel (or ``None``) per text; see
                :data:`CHANNEL_PRODUCT_LINES`.

        Returns:
            One prediction per text, in order. Never raises for ``str`` inputs.
        """
        hints: Sequence[str | None] = product_hints or [None] * len(texts)
        via: Sequence[str | None] = channels or [None] * len(texts)
        try:
            cleaned = [_clean(t) if isinstance(t, str) else "" for t in texts]
            matrix, gates, probas = self._model_probabilities(cleaned)
        except Exception as exc:  # never let the model break intake; fall back per text
            log.exception("classifier.batch_failed")
            return [self._fallback(language or UNDETERMINED, exc) for _ in texts]
        out: list[Prediction] = []
        for i, text in enumerate(cleaned):
            try:
                probs = {
                    t: dict(zip(self._classes[t], map(float, probas[t][i]), strict=True))
                    for t in TARGETS
                }
                out.append(
                    self._combine(
                        text, matrix[i], float(gates[i]), probs, language, hints[i], via[i]
                    )
                )
            except Exception as exc:
                log.exception("classifier.predict_failed")
                out.append(self._fallback(language or UNDETERMINED, exc))
        return out

    def _model_probabilities(
        self, cleaned: Sequence[str]
    ) -> tuple[Any, np.ndarray[Any, Any], dict[Target, np.ndarray[Any, Any]]]:
        """Return (features, P(narrative) per text, per target the mixed class probabilities).

        Probabilities have shape (n_texts, n_classes) in the order of ``self._classes``.
        """
        prepared = [prepare_text(t) for t in cleaned]
        matrix = featurize(self._word, self._char, prepared)
        gates = self._gate.narrative_probability(matrix, prepared)
        probas: dict[Target, np.ndarray[Any, Any]] = {}
        for target in TARGETS:
            mixed = np.zeros((len(prepared), len(self._classes[target])))
            for expert, weight in (("narrative", gates), ("query", 1.0 - gates)):
                proba = self._fast[target][expert].predict_proba(matrix)
                mixed += weight[:, np.newaxis] * (proba @ self._to_codes[target][expert])
            probas[target] = mixed
        return matrix, gates, probas

    def _explained_class(self, target: Target, expert: str, code: str, row: Any) -> str | None:
        """Return the expert's own class to explain ``code`` with, or ``None`` if it has none.

        That is ``code`` itself, or, for an expert with finer classes, the most probable of
        the finer classes that map onto ``code`` for this text (``row``: shape (1, n)).
        """
        own = [str(c) for c in self._experts[target][expert].classes_]
        if code in own:
            return code
        mapping = self._class_map[target]
        candidates = [j for j, c in enumerate(own) if mapping.get(c) == code]
        if not candidates:
            return None
        proba = self._fast[target][expert].predict_proba(row)[0]
        return own[max(candidates, key=lambda j: proba[j])]

    def predict_model_only(self, texts: Sequence[str]) -> dict[Target, list[str]]:
        """Return the model's labels without rules (for evaluation and diagnostics).

        Args:
            texts: the texts to classify.

        Returns:
            target -> one class code per text, in order.

        Raises:
            Exception: whatever scikit-learn raises on unusable input (unlike ``predict``).
        """
        _, _, probas = self._model_probabilities([_clean(t) for t in texts])
        return {t: [self._classes[t][int(j)] for j in probas[t].argmax(axis=1)] for t in TARGETS}

    def _fallback(self, language: str, exc: BaseException) -> Prediction:
        return Prediction(
            category=OTHER,
            product_line=OTHER,
            category_confidence=0.0,
            product_line_confidence=0.0,
            confidence=0.0,
            language=language,
            priority=priority_for(OTHER).value,
            explanation={
                "rules": [],
                "keywords": [],
                "model_features": {},
                "model_version": self.version,
                "decided_by": {"category": "fallback", "product_line": "fallback"},
                "error": type(exc).__name__,
            },
        )

    def _hint_product_line(self, hint: str | None) -> str | None:
        if not hint or not isinstance(hint, str):
            return None
        key = hint.strip().lower()
        if key in PRODUCT_LINES:
            return key
        return self._product_names.get(key)

    def _combine(
        self,
        text: str,
        row: Any,
        narrative: float,
        probs: dict[Target, dict[str, float]],
        language: str | None,
        product_hint: str | None,
        channel: str | None = None,
    ) -> Prediction:
        lang = re.split(r"[-_]", language.strip().lower())[0] if language else ""
        lang = lang or detect_language(text)
        has_features = row.nnz > 0 and lang != UNDETERMINED
        hits = rules_mod.apply_rules(text, lang) if lang != UNDETERMINED else []
        model_first = lang not in ("zh", "ja", "ko")
        results: dict[Target, tuple[str, float, str]] = {}
        for target in TARGETS:
            prefer = rules_mod.ZH_PRODUCT_TIE_ORDER if target == "product_line" else ()
            results[target] = _decide(
                probs[target],
                rules_mod.rule_scores(hits, target),
                model_first=model_first,
                has_features=has_features,
                prefer=prefer if lang == "zh" else (),
            )
        hinted = self._hint_product_line(product_hint)
        if hinted is not None:
            results["product_line"] = (hinted, 0.99, "product_hint")
        elif results["product_line"][2] == "fallback" and channel in CHANNEL_PRODUCT_LINES:
            results["product_line"] = (
                CHANNEL_PRODUCT_LINES[channel],
                CHANNEL_CONFIDENCE,
                "channel",
            )
        valid = {"category": CATEGORIES, "product_line": PRODUCT_LINES}
        features: dict[str, list[dict[str, object]]] = {}
        for target in TARGETS:
            code = results[target][0]
            if code not in valid[target]:  # a stale artifact with other codes
                results[target] = (OTHER, 0.0, "fallback")
                code = OTHER
            # explain with the expert that weighs most for this text
            order = ("narrative", "query") if narrative >= 0.5 else ("query", "narrative")
            explained = next(
                (
                    (self._experts[target][e], own)
                    for e in order
                    if (own := self._explained_class(target, e, code, row)) is not None
                ),
                None,
            )
            features[target] = (
                [vars(f) for f in top_features(row, *explained, self._feature_names)]
                if has_features and explained is not None
                else []
            )
        keywords = list(dict.fromkeys(k for h in hits for k in h.matched))
        for target in TARGETS:
            keywords.extend(str(f["term"]) for f in features[target][:3] if f["kind"] == "word")
        top = {
            t: [[c, round(p, 4)] for c, p in sorted(probs[t].items(), key=lambda kv: -kv[1])[:3]]
            for t in TARGETS
        }
        cat, cat_conf, cat_how = results["category"]
        pl, pl_conf, pl_how = results["product_line"]
        cat, pl = str(cat), str(pl)  # model classes are numpy strings
        cat_conf = float(np.clip(round(cat_conf, 4), 0.0, 1.0))
        pl_conf = float(np.clip(round(pl_conf, 4), 0.0, 1.0))
        return Prediction(
            category=cat,
            product_line=pl,
            category_confidence=cat_conf,
            product_line_confidence=pl_conf,
            confidence=min(cat_conf, pl_conf),
            language=lang,
            priority=priority_for(cat).value,
            explanation={
                "rules": [h.as_dict() for h in hits],
                "keywords": list(dict.fromkeys(keywords)),
                "model_features": features,
                "model_top": top if has_features else {},
                "decided_by": {"category": cat_how, "product_line": pl_how},
                "narrative_weight": round(narrative, 4) if has_features else None,
                "model_version": self.version,
            },
        )
