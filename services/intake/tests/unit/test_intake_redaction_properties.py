"""Property tests of :func:`shared.privacy.redact` (issue 3 "Tests": hypothesis).

Valid resident ID numbers, Luhn-valid card numbers, mainland mobile numbers and e-mail
addresses are always redacted, whatever text surrounds them; amounts, dates and reference
numbers never are.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared import privacy
from shared.privacy import (
    PLACEHOLDERS,
    contains_personal_data,
    luhn_valid,
    preview,
    redact,
    valid_resident_id,
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

# Text around a finding: Chinese, punctuation, spaces, emoji; never a digit or an ASCII
# letter right next to it (that would make it part of a longer token).
CONTEXT = st.text(
    alphabet=st.sampled_from(list("我的卡号是身份证手机请联系，。：:、！？()【】 \n😀עברית银行")),
    max_size=12,
)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.integers(100000, 999999))
    born = draw(st.dates(date(1900, 1, 1), date(2025, 12, 31)))
    seq = draw(st.integers(0, 999))
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]
    if check == "X" and draw(st.booleans()):
        check = "x"
    return body + check


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    head = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    head = draw(st.sampled_from("3456789")) + head[1:]
    check = next(str(d) for d in range(10) if luhn_valid(head + str(d)))
    number = head + check
    sep = draw(st.sampled_from(["", " ", "-"]))
    if sep:
        number = sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


mobiles = st.builds(
    lambda prefix, second, rest, fmt: (
        fmt.format(f"1{second}{rest[0]}", rest[1:5], rest[5:9])
        if fmt
        else f"{prefix}1{second}{rest}"
    ),
    st.sampled_from(["", "+86", "+86 ", "0086"]),
    st.sampled_from("3456789"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
    st.sampled_from(["", "{}-{}-{}", "{} {} {}"]),
)
emails = st.emails().filter(lambda e: e.isascii() and len(e) < 80)


def _assert_redacted(secret: str, before: str, after: str) -> None:
    text = before + secret + after
    out = redact(text)
    digits = "".join(ch for ch in secret if ch.isalnum())
    assert secret not in out
    assert digits not in "".join(ch for ch in out if ch.isalnum())
    assert any(p in out for p in PLACEHOLDERS)
    assert contains_personal_data(text)


@settings(max_examples=300, deadline=None)
@given(resident_ids(), CONTEXT, CONTEXT)
def test_valid_resident_ids_are_always_redacted(number: str, before: str, after: str) -> None:
    assert valid_resident_id(number)
    _assert_redacted(number, before, after)


@settings(max_examples=300, deadline=None)
@given(card_numbers(), CONTEXT, CONTEXT)
def test_luhn_valid_card_numbers_are_always_redacted(number: str, before: str, after: str) -> None:
    _assert_redacted(number, before, after)


@settings(max_examples=200, deadline=None)
@given(mobiles, CONTEXT, CONTEXT)
def test_mainland_mobiles_are_always_redacted(number: str, before: str, after: str) -> None:
    _assert_redacted(number, before, after)


@settings(max_examples=200, deadline=None)
@given(emails, CONTEXT, CONTEXT)
def test_emails_are_always_redacted(address: str, before: str, after: str) -> None:
    out = redact(before + address + after)
    assert address not in out
    assert "[EMAIL]" in out


@st.composite
def amounts(draw: st.DrawFn) -> str:
    value = draw(st.integers(0, 999_999_999))
    cents = draw(st.one_of(st.none(), st.integers(0, 99)))
    text = f"{value:,}" if draw(st.booleans()) else str(value)
    if cents is not None:
        text += f".{cents:02d}"
    return draw(
        st.sampled_from(["¥{}", "￥{}", "{}元", "CNY {}", "USD {}", "${}", "{} 元"])
    ).format(text)


@st.composite
def dates(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(datetime(1990, 1, 1), datetime(2035, 12, 31)))
    moment -= timedelta(microseconds=moment.microsecond)
    fmt = draw(
        st.sampled_from(
            [
                "%Y-%m-%d",
                "%Y/%m/%d",
                "%Y.%m.%d",
                "%Y%m%d",
                "%Y年%m月%d日",
                "%Y-%m-%d %H:%M",
                "%Y-%m-%dT%H:%M:%S",
                "%d/%m/%Y",
                "%m月%d日 %H:%M",
            ]
        )
    )
    return moment.strftime(fmt)


references = st.builds(
    lambda kind, day, tail: f"{kind}-{day:%y%m%d}-{tail}",
    st.sampled_from("CS"),
    st.dates(date(2020, 1, 1), date(2035, 12, 31)),
    st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=6, max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(amounts(), dates(), references), min_size=1, max_size=4), CONTEXT)
def test_amounts_dates_and_references_are_never_redacted(parts: list[str], glue: str) -> None:
    text = ("，" + glue + " ").join(parts)
    assert redact(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.integers(1, 40))
def test_preview_never_exceeds_and_is_a_prefix(text: str, limit: int) -> None:
    out = preview(text, limit)
    assert len(out) <= max(limit, 1)
    if out != text:
        assert text.startswith(out[:-1].rstrip()) or out == "…"


def test_examples() -> None:
    assert redact("手机13800138000") == "手机[PHONE]"
    assert redact("全角１３８００１３８０００") == "全角[PHONE]"
    assert redact("电话 010-87654321 转 123。") == "电话 [PHONE]。"
    assert redact("ID 11010519491231002X!") == "ID [ID]!"
    assert redact("ID 110105194912310021") != "ID [ID]"  # checksum fails: not an ID
    assert redact("卡 4111 1111 1111 1111") == "卡 [CARD]"
    assert redact("mail a.b@example.com.cn ok") == "mail [EMAIL] ok"
    assert redact("Call +44 20 7946 0958") == "Call [PHONE]"
    kept = "2024年1月15日转账¥1,234.56元，参考号 C-260930-7K3QX9，客服95588"
    assert redact(kept) == kept
    assert preview("👍🏽👍🏽👍🏽", 4) == "👍🏽…"
    assert preview("🇨🇳🇨🇳🇨🇳", 4) == "🇨🇳…"
    assert preview("e\u0301e\u0301", 3) == "e\u0301…"
    assert preview("中文", 5) == "中文"


# --- the region shortcut of redact() gives the whole-text result ---------------------------


def _redact_whole_text(text: str) -> str:
    """Reference: every rule over the whole text, in order (redact() before its shortcut)."""
    if not text:
        return text
    shadow = text.translate(privacy._FULLWIDTH)
    out, shadow = privacy._replace(privacy._EMAIL, privacy._EMAIL_PLACEHOLDER, text, shadow)
    for pattern, decide, _min_digits in privacy._NUMBER_RULES:
        out, shadow = privacy._replace(pattern, decide, out, shadow)
    return out


# Characters that make and break number regions: digits (ASCII, full-width, Arabic-Indic),
# every separator and marker the number rules accept, letters on both sides of the region
# character set, "@" and the ideographic space.
_NUMBERISH = st.text(
    alphabet=st.sampled_from(
        list("0123456789012345678900+-. ()xXetE转abz_@中，１２３＠\u3000٣٤\n/")
        + list(
            "０１２３４５６７８９！＂＃＋，－．：；＜＞（）［＼］＿ａＺ？～＄％＆＇＊／＝＾｀｛｜｝"
        )
    ),
    max_size=40,
)
_FINDINGS = st.one_of(resident_ids(), card_numbers(), mobiles, emails, _NUMBERISH)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(_FINDINGS, CONTEXT, _NUMBERISH), max_size=6))
def test_redact_equals_the_rules_over_the_whole_text(parts: list[str]) -> None:
    text = "".join(parts)
    assert redact(text) == _redact_whole_text(text)


def test_redact_equals_the_whole_text_on_edge_cases() -> None:
    for text in (
        "13800138000",
        "x13800138000x",
        "+1 2 3 45",
        "a+1 2 3 45",
        "电话(010)12345678转123，卡号6222020200112233445",
        "ext. 12345 +44 20 7946 0958",
        "11010519491231002X11010519491231002X",
        "１３８００１３８０００ 与 ａ@ｂ.ｃｏｍ",
        "电话：（０１０）１２３４５６７８，邮箱ｘ＿ｙ＠ｅｘａｍｐｌｅ．ｃｏｍ；"
        "＋８６　１３８００１３８０００！",
        "ａ？ｂ＠ｃ．ｃｏｍ ｘ＝ｙ＠ｚ．ｏｒｇ ｕ｛ｖ＠ｗ．ｎｅｔ ｐ！ｑ＠ｒ．ｃｎ 138－0013－8000",
        "１３９９９９９９９９９ ＋４４ ２０ ７９４６ ０９５８ ９13800138000 ０13800138000",
        "2024-01-15 ¥1,234.56 C-260930-7K3QX9 95588",
        "٣٤٥٦٧٨٩٠١٢٣",
    ):
        assert redact(text) == _redact_whole_text(text), text
