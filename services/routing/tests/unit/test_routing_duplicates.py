"""Near-duplicate detection: normalisation, shingles, MinHash band keys."""

from __future__ import annotations

import numpy as np
import pytest

from services.routing.domain import duplicates as d


def test_normalise_ignores_case_punctuation_width_and_script() -> None:
    assert d.normalise("Add  Fingerprint-Login, please!") == "addfingerprintloginplease"
    assert d.normalise("希望手機銀行增加指紋登錄") == d.normalise("希望手机银行增加指纹登录。")
    assert d.normalise("ＡＰＰ１２") == "app12"


def test_shingles_bigrams_for_chinese_trigrams_otherwise() -> None:
    assert d.shingles("abcd") == {"abc", "bcd"}
    assert d.shingles("手机银行") == {"手机", "机银", "银行"}
    assert d.shingles("ab") == {"ab"}
    assert d.shingles("!!! 🙂") == frozenset()


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        (
            "Please add fingerprint login to the app",
            "please add fingerprint log-in to the app!",
            0.9,
            1.0,
        ),
        ("Please add fingerprint login to the app", "Open branches on Saturday mornings", 0.0, 0.1),
        ("希望增加指纹登录功能", "希望增加指紋登錄功能！", 1.0, 1.0),
    ],
)
def test_jaccard_separates_near_duplicates(a: str, b: str, low: float, high: float) -> None:
    assert low <= d.jaccard(d.shingles(a), d.shingles(b)) <= high


def test_signature_is_deterministic_and_estimates_similarity() -> None:
    a = d.shingles("the mobile banking app should show pending card transactions " * 2)
    b = d.shingles("the mobile banking app should show pending card payments " * 2)
    sa, sb = d.signature(a), d.signature(b)
    assert sa.shape == (d.NUM_PERM,)
    assert np.array_equal(sa, d.signature(set(a)))
    estimate = float(np.mean(sa == sb))
    assert abs(estimate - d.jaccard(a, b)) < 0.15
    keys = d.band_keys(sa)
    assert [band for band, _ in keys] == list(range(d.BANDS))
    assert all(-(2**63) <= bucket < 2**63 for _, bucket in keys)
    assert keys == d.band_keys(d.signature(a))  # stored keys stay comparable across runs
    shared = sum(x == y for x, y in zip(keys, d.band_keys(sb), strict=True))
    assert shared >= 1  # similar texts meet in some band


def test_signature_refuses_an_empty_set() -> None:
    with pytest.raises(ValueError, match="no shingles"):
        d.signature([])
