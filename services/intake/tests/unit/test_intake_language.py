"""Language detection from the script of the text (``service.detect_language``)."""

from __future__ import annotations

import pytest

from services.intake.domain.submission.service import LANGUAGE_SAMPLE, detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("转账失败但是扣款了，请尽快处理。", "zh"),
        ("My card was charged twice for one purchase.", "en"),
        ("手机银行APP转账一直显示processing，请处理", "zh"),
        ("カードが使えません。確認してください。", "ja"),
        ("카드 결제가 두 번 되었습니다", "ko"),
        ("تم خصم المبلغ مرتين من حسابي", "ar"),
        ("החיוב בכרטיס בוצע פעמיים", "he"),
        ("Деньги списали дважды", "ru"),
        ("12345 !!! ###", "en"),
        ("", "en"),
    ],
)
def test_the_script_decides_the_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_only_the_first_characters_are_looked_at() -> None:
    head = "转账失败" * (LANGUAGE_SAMPLE // 4)
    assert detect_language(head + "This tail is English." * 200) == "zh"
    assert detect_language("This head is English. " * 40 + "转账失败" * 1000) == "en"
