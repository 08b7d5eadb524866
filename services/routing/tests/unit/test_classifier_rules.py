from services.routing.classifier import rules
from services.routing.classifier.language import detect_language
from services.routing.classifier.rules import apply_rules, rule_scores, segment_chinese
from services.routing.classifier.taxonomy import CATEGORIES, PRODUCT_LINES


def _best(text: str, target: str, language: str) -> str | None:
    scores = rule_scores(apply_rules(text, language), target)  # type: ignore[arg-type]
    if not scores:
        return None
    return max(scores.items(), key=lambda kv: kv[1])[0]


def test_rule_codes_are_taxonomy_codes() -> None:
    for rule in rules.ALL_RULES:
        allowed = CATEGORIES if rule.target == "category" else PRODUCT_LINES
        assert rule.code in allowed, rule.id
        assert 0 < rule.weight <= 1


def test_rule_ids_are_unique() -> None:
    ids = [r.id for r in rules.ALL_RULES]
    assert len(ids) == len(set(ids))


def test_english_fraud_and_credit_report() -> None:
    text = "Someone committed identity theft and opened accounts; they are on my credit report."
    hits = apply_rules(text, "en")
    by_id = {h.rule_id: h for h in hits}
    assert "en.category.fraud_security" in by_id
    assert "identity theft" in by_id["en.category.fraud_security"].matched
    assert "credit report" in by_id["en.product_line.credit_reporting"].matched
    assert _best(text, "category", "en") == "fraud_security"
    assert _best(text, "product_line", "en") == "credit_reporting"


def test_english_matches_whole_words_only() -> None:
    # "feed" must not fire the "fee" keyword, "capricious" not "apr"
    assert _best("The feed is capricious", "category", "en") is None


def test_english_phrases_tolerate_extra_spaces_and_case() -> None:
    hits = apply_rules("The DEBT   COLLECTOR keeps calling", "en")
    assert [h.code for h in hits if h.target == "product_line"] == ["debt_collection"]
    assert hits[0].matched == ("debt collector",)


def test_chinese_fees_and_staff() -> None:
    assert _best("收了我很多手续费，太不合理", "category", "zh") == "fees_charges"
    assert _best("柜台工作人员态度很差，还骂人", "category", "zh") == "staff_attitude"
    assert _best("信用卡被盗刷了两万块", "category", "zh") == "fraud_security"
    assert _best("信用卡被盗刷了两万块", "product_line", "zh") == "cards"


def test_simplified_and_traditional_match_alike() -> None:
    pairs = [
        ("手机银行登录不了，一直闪退", "手機銀行登錄不了，一直閃退"),
        ("信用卡被盗刷", "信用卡被盜刷"),
        ("转账手续费太高", "轉賬手續費太高"),
    ]
    for simplified, traditional in pairs:
        a = apply_rules(simplified, "zh")
        b = apply_rules(traditional, "zh")
        assert [(h.rule_id, h.matched) for h in a] == [(h.rule_id, h.matched) for h in b]
        assert a, simplified


def test_app_reviews_map_to_digital_banking() -> None:
    reviews = [
        "登录老是失败",
        "更新以后一直闪退",
        "转账太麻烦了",
        "手机银行很难用",
        "APP做得太差",
        "新版本界面很丑",
        "验证码收不到",
        "给个五星",
        "手機銀行轉賬一直失敗",
        "绑定信用卡的时候APP闪退",  # a card mentioned in an app review: still digital banking
    ]
    for review in reviews:
        assert _best(review, "product_line", "zh") == "digital_banking", review


def test_app_behaviour_and_praise_go_to_digital_banking_but_bare_complaint_does_not() -> None:
    for review in [
        "耗电非常严重，后台cpu占用100%",
        "启动速度慢的像蜗牛",
        "返回键全无效",
        "无限转圈",
        "为什么升不了级了",
        "我只能给你三分",
        "加油完善",
        "很不错～",
        "一直在用，挺方便",
    ]:
        assert _best(review, "product_line", "zh") == "digital_banking", review
    # bare complaint names nothing: no product-line rule (triage or the intake channel decides)
    for text in ["太差了，不满意", "烂！", "今天天气很好"]:
        assert not [h for h in apply_rules(text, "zh") if h.target == "product_line"], text


def test_chinese_hit_reports_rule_id_and_keywords() -> None:
    hits = apply_rules("手机银行闪退", "zh")
    channel = next(h for h in hits if h.rule_id == "zh.product_line.digital_banking.channel")
    assert channel.matched == ("手机银行",)
    assert channel.as_dict()["matched"] == ["手机银行"]
    app = next(h for h in hits if h.rule_id == "zh.product_line.digital_banking.app")
    assert "闪退" in app.matched


def test_jieba_knows_bank_terms() -> None:
    tokens = segment_chinese("我的手機銀行閃退了")
    assert "手机银行" in tokens
    assert "闪退" in tokens


def test_rule_scores_combine_independent_hits() -> None:
    scores = rule_scores(apply_rules("手机银行闪退", "zh"), "product_line")
    assert 0.95 < scores["digital_banking"] <= 1.0


def test_no_rules_fire_on_neutral_text() -> None:
    assert apply_rules("hello there", "en") == []
    assert apply_rules("今天天气很好", "zh") == []


def test_detect_language() -> None:
    assert detect_language("My card was charged twice") == "en"
    assert detect_language("APP闪退") == "zh"
    assert detect_language("手機銀行") == "zh"
    assert detect_language("") == "und"
    assert detect_language("12345 🙂") == "und"
    assert detect_language("カードが届きません") == "ja"
    assert detect_language("Моя карта не работает") == "ru"
