from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.routing.classifier import (
    ARTIFACTS_DIR,
    ComplaintClassifier,
    Prediction,
    latest_artifact,
)
from services.routing.classifier.taxonomy import CATEGORIES, PRIORITIES, PRODUCT_LINES


@pytest.fixture(scope="module")
def clf() -> ComplaintClassifier:
    return ComplaintClassifier.load()


def _valid(pred: Prediction) -> None:
    assert pred.category in CATEGORIES
    assert pred.product_line in PRODUCT_LINES
    for conf in (pred.category_confidence, pred.product_line_confidence, pred.confidence):
        assert 0.0 <= conf <= 1.0
    assert pred.confidence == min(pred.category_confidence, pred.product_line_confidence)
    assert pred.priority in PRIORITIES
    assert isinstance(pred.language, str)
    assert pred.language
    assert {"rules", "keywords", "model_features", "model_version"} <= set(pred.explanation)


def test_default_load_uses_newest_shipped_artifact(clf: ComplaintClassifier) -> None:
    newest = latest_artifact()
    assert newest.parent.parent == ARTIFACTS_DIR
    assert clf.version == newest.parent.name
    assert newest.stat().st_size < 12_000_000


def test_load_accepts_folder_and_rejects_missing(tmp_path: Path) -> None:
    assert ComplaintClassifier.load(latest_artifact().parent).version
    with pytest.raises(FileNotFoundError):
        ComplaintClassifier.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        latest_artifact(tmp_path)


def test_english_complaints(clf: ComplaintClassifier) -> None:
    pred = clf.predict(
        "There is a debt collector calling me about a debt I do not owe, "
        "they threatened to sue me and keep harassing my family."
    )
    _valid(pred)
    assert pred.language == "en"
    assert pred.product_line == "debt_collection"
    fraud = clf.predict("Someone stole my card and made unauthorized transactions, I lost $900")
    assert fraud.category == "fraud_security"
    assert fraud.priority == "P1"
    assert fraud.product_line == "cards"
    report = clf.predict("There are accounts on my credit report that are not mine, Equifax")
    assert report.product_line == "credit_reporting"
    assert report.confidence > 0.5


def test_banking77_style_query(clf: ComplaintClassifier) -> None:
    pred = clf.predict("I was charged twice for the same transaction with my card")
    _valid(pred)
    assert pred.product_line == "cards"


def test_chinese_app_reviews_are_digital_banking(clf: ComplaintClassifier) -> None:
    for text in ["手机银行登录不了，一直闪退", "更新后转账老是失败", "手機銀行APP閃退", "垃圾APP"]:
        pred = clf.predict(text)
        _valid(pred)
        assert pred.language == "zh"
        assert pred.product_line == "digital_banking", text
        assert pred.explanation["decided_by"]["product_line"] in ("rules", "model+rules")  # type: ignore[index]
    tech = clf.predict("手机银行登录不了，一直闪退")
    assert tech.category == "technical_failure"


def test_simplified_and_traditional_give_same_answer(clf: ComplaintClassifier) -> None:
    a = clf.predict("信用卡被盗刷了，客服态度很差")
    b = clf.predict("信用卡被盜刷了，客服態度很差")
    assert (a.category, a.product_line, a.confidence) == (b.category, b.product_line, b.confidence)
    assert a.category in ("fraud_security", "staff_attitude")
    assert a.product_line == "cards"


def test_explanation_names_rules_keywords_and_model_terms(clf: ComplaintClassifier) -> None:
    pred = clf.predict("My mortgage servicer charged a late fee although I paid on time")
    exp = pred.explanation
    assert exp["model_version"] == clf.version
    rule_ids = [r["rule_id"] for r in exp["rules"]]  # type: ignore[union-attr, index]
    assert "en.product_line.loans" in rule_ids
    assert "mortgage" in exp["keywords"]  # type: ignore[operator]
    feats = exp["model_features"]["product_line"]  # type: ignore[index]
    assert feats
    assert all(f["weight"] > 0 for f in feats)
    assert [f["weight"] for f in feats] == sorted((f["weight"] for f in feats), reverse=True)
    assert {f["kind"] for f in feats} <= {"word", "char"}
    assert pred.product_line == "loans"


def test_product_hint_fixes_product_line(clf: ComplaintClassifier) -> None:
    pred = clf.predict("They never answered my letters", product_hint="Mortgage")
    assert pred.product_line == "loans"
    assert pred.explanation["decided_by"]["product_line"] == "product_hint"  # type: ignore[index]
    assert clf.predict("x", product_hint="wealth").product_line == "wealth"
    unknown = clf.predict("They never answered my letters", product_hint="no such product")
    assert unknown.explanation["decided_by"]["product_line"] != "product_hint"  # type: ignore[index]


def test_explicit_language_is_respected(clf: ComplaintClassifier) -> None:
    assert clf.predict("登录失败", language="zh-Hant").language == "zh"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\x00\x01\x02",
        "🙂🙂🙂",
        "12345",
        "????",
        "a" * 200_000,
        "手机" * 50_000,
        "\ud800",
        "\u202e\u200b",
        "<script>alert(1)</script>",
    ],
)
def test_degenerate_input_never_raises(clf: ComplaintClassifier, text: str) -> None:
    pred = clf.predict(text)
    _valid(pred)


def test_no_usable_text_gives_other_with_no_confidence(clf: ComplaintClassifier) -> None:
    for text in ["", "🙂🙂", "12345", "\x00"]:
        pred = clf.predict(text)
        assert (pred.category, pred.product_line) == ("other", "other")
        assert pred.confidence == 0.0
        assert pred.language == "und"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300))
def test_any_text_gives_valid_prediction(clf: ComplaintClassifier, text: str) -> None:
    _valid(clf.predict(text))


def test_predict_many_matches_predict(clf: ComplaintClassifier) -> None:
    texts = ["My card was declined at the ATM", "网银转账失败", ""]
    batch = clf.predict_many(texts)
    assert [p.category for p in batch] == [clf.predict(t).category for t in texts]
    assert len(batch) == 3


def test_chinese_app_symptoms_and_the_channel_hint(clf: ComplaintClassifier) -> None:
    for text in [
        "点不进去，都好几天了",
        "上不去了，连不上服务器",
        "打开太慢了",
        "求支持ip5",
        "新版找不到转账",
    ]:
        pred = clf.predict(text)
        assert pred.product_line == "digital_banking", text
    assert clf.predict("点不进去，都好几天了").category == "technical_failure"
    # Bare sentiment names no product: `other` (triage) unless the channel is the app.
    bare = clf.predict("太差了，不满意")
    assert bare.product_line == "other"
    assert bare.confidence < 0.45
    via_app = clf.predict("太差了，不满意", channel="mobile_app")
    assert via_app.product_line == "digital_banking"
    assert via_app.explanation["decided_by"]["product_line"] == "channel"  # type: ignore[index]
    assert clf.predict("太差了，不满意", channel="branch").product_line == "other"
    # A product named without any app word keeps its product line.
    assert clf.predict("信用卡审核通过了却不给领卡").product_line == "cards"
    # The channel never overrides what the text decided.
    assert clf.predict("房贷利率太高", channel="mobile_app").product_line == "loans"


def test_intent_level_query_expert_answers_in_taxonomy_codes(clf: ComplaintClassifier) -> None:
    # The query experts learn BANKING77 intents; predictions and explanations use codes.
    pred = clf.predict("My card still hasn't arrived, when will it come?")
    _valid(pred)
    assert pred.product_line == "cards"
    top = pred.explanation["model_top"]
    for target in ("category", "product_line"):
        codes = [c for c, _p in top[target]]  # type: ignore[index]
        assert all(not str(c).startswith("fine:") for c in codes)
        assert sum(p for _c, p in top[target]) <= 1.0 + 1e-6  # type: ignore[index]
    assert pred.explanation["model_features"]["product_line"]  # type: ignore[index]
