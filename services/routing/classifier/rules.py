"""Keyword and regex rules per language for the category and the product line.

English rules match whole words or phrases, case-insensitively. Chinese text is first
converted to simplified characters (OpenCC ``t2s``), so simplified and traditional text
match alike, then segmented with a private ``jieba`` tokenizer that knows the bank terms
below; a Chinese keyword fires when it is one of the tokens, a Chinese pattern when it
matches the simplified text.

Every rule has a weight in 0..1: how sure a hit alone makes us. Weights of 0.8 and more are
"strong" and may override a weak model prediction (see the package docs).
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from services.routing.classifier.model import Target

RuleLanguage = Literal["en", "zh"]
STRONG_RULE_WEIGHT = 0.8


@dataclass(frozen=True)
class Rule:
    """One rule.

    Attributes:
        id: stable identifier, ``<language>.<target>.<code>[.<n>]``.
        language: ``"en"`` or ``"zh"``.
        target: ``"category"`` or ``"product_line"``.
        code: the taxonomy code the rule votes for.
        weight: confidence of a hit on its own, 0..1.
        keywords: English words/phrases, or Chinese tokens (simplified).
        patterns: regular expressions (Chinese ones run on the simplified text).
    """

    id: str
    language: RuleLanguage
    target: Target
    code: str
    weight: float
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleHit:
    """A rule that fired on a text.

    Attributes:
        rule_id: :attr:`Rule.id`.
        target: ``"category"`` or ``"product_line"``.
        code: the taxonomy code the rule votes for.
        weight: the rule's weight raised a little per extra matched keyword, 0..0.95.
        matched: the keywords or pattern matches found, in text order, no duplicates.
    """

    rule_id: str
    target: Target
    code: str
    weight: float
    matched: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict of the hit."""
        return {
            "rule_id": self.rule_id,
            "target": self.target,
            "code": self.code,
            "weight": self.weight,
            "matched": list(self.matched),
        }


def _r(
    lang: RuleLanguage,
    target: Target,
    code: str,
    weight: float,
    keywords: Iterable[str] = (),
    patterns: Iterable[str] = (),
    suffix: str = "",
) -> Rule:
    rid = f"{lang}.{target}.{code}" + (f".{suffix}" if suffix else "")
    return Rule(rid, lang, target, code, weight, tuple(keywords), tuple(patterns))


# --- English -------------------------------------------------------------------------------
EN_RULES: tuple[Rule, ...] = (
    # categories
    _r(
        "en",
        "category",
        "fraud_security",
        0.85,
        [
            "fraud",
            "fraudulent",
            "scam",
            "scammed",
            "scammer",
            "identity theft",
            "stolen card",
            "card was stolen",
            "phishing",
            "hacked",
            "unauthorized transaction",
            "unauthorised transaction",
            "unauthorized charges",
            "unauthorized charge",
            "compromised",
            "did not authorize",
            "didn't authorize",
            "not authorized by me",
        ],
    ),
    _r(
        "en",
        "category",
        "fees_charges",
        0.7,
        [
            "fee",
            "fees",
            "overdraft fee",
            "late fee",
            "annual fee",
            "surcharge",
            "service charge",
            "interest rate",
            "apr",
            "exchange rate",
            "commission",
        ],
    ),
    _r(
        "en",
        "category",
        "technical_failure",
        0.7,
        [
            "app crashes",
            "app crashed",
            "keeps crashing",
            "error message",
            "outage",
            "system error",
            "glitch",
            "not working",
            "doesn't work",
            "won't work",
            "declined",
            "failed",
            "pending",
            "stuck",
            "atm ate",
            "swallowed",
        ],
    ),
    _r(
        "en",
        "category",
        "staff_attitude",
        0.8,
        [
            "rude",
            "harass",
            "harassed",
            "harassing",
            "harassment",
            "threatened",
            "threatening",
            "yelled",
            "screamed",
            "unprofessional",
            "disrespectful",
            "abusive",
            "hung up on me",
        ],
    ),
    _r(
        "en",
        "category",
        "privacy",
        0.8,
        [
            "privacy",
            "personal information",
            "data breach",
            "shared my information",
            "without my consent",
            "improper use",
            "permissible purpose",
        ],
    ),
    _r(
        "en",
        "category",
        "incorrect_information",
        0.7,
        [
            "inaccurate",
            "incorrect information",
            "not mine",
            "misleading",
            "false information",
            "wrong information",
            "errors on my report",
            "false advertising",
        ],
    ),
    _r(
        "en",
        "category",
        "service_quality",
        0.6,
        [
            "long wait",
            "waiting for weeks",
            "no response",
            "never responded",
            "poor service",
            "bad service",
            "on hold",
            "slow",
        ],
    ),
    _r(
        "en",
        "category",
        "product_function",
        0.6,
        [
            "feature",
            "limit too low",
            "not supported",
            "doesn't support",
            "does not support",
            "not available",
            "should allow",
        ],
    ),
    # product lines
    _r(
        "en",
        "product_line",
        "credit_reporting",
        0.85,
        [
            "credit report",
            "credit reports",
            "credit score",
            "credit bureau",
            "equifax",
            "experian",
            "transunion",
            "credit file",
            "hard inquiry",
            "hard inquiries",
        ],
    ),
    _r(
        "en",
        "product_line",
        "debt_collection",
        0.85,
        [
            "debt collector",
            "debt collectors",
            "collection agency",
            "collections agency",
            "debt collection",
            "collecting a debt",
            "collect a debt",
        ],
    ),
    _r(
        "en",
        "product_line",
        "loans",
        0.75,
        [
            "mortgage",
            "loan",
            "loans",
            "lender",
            "refinance",
            "student loan",
            "auto loan",
            "car loan",
            "lease",
            "payday",
            "escrow",
            "foreclosure",
            "servicer",
        ],
    ),
    _r(
        "en",
        "product_line",
        "cards",
        0.75,
        [
            "credit card",
            "debit card",
            "prepaid card",
            "card",
            "visa",
            "mastercard",
            "pin",
            "contactless",
            "atm",
        ],
    ),
    _r(
        "en",
        "product_line",
        "deposits",
        0.7,
        [
            "checking account",
            "savings account",
            "bank account",
            "deposit",
            "deposited",
            "cheque",
            "check deposit",
        ],
    ),
    _r(
        "en",
        "product_line",
        "payments",
        0.7,
        [
            "wire transfer",
            "money transfer",
            "transfer",
            "zelle",
            "paypal",
            "venmo",
            "cash app",
            "remittance",
            "western union",
            "moneygram",
            "apple pay",
            "google pay",
        ],
    ),
    _r(
        "en",
        "product_line",
        "digital_banking",
        0.75,
        [
            "mobile app",
            "the app",
            "banking app",
            "online banking",
            "mobile banking",
            "log in",
            "login",
            "website",
            "top up",
            "top-up",
            "passcode",
        ],
    ),
    _r(
        "en",
        "product_line",
        "wealth",
        0.8,
        [
            "investment",
            "investments",
            "brokerage",
            "mutual fund",
            "wealth management",
            "stocks",
            "securities",
        ],
    ),
)

# --- Chinese (simplified; traditional input is converted first) ----------------------------
ZH_RULES: tuple[Rule, ...] = (
    # categories
    _r(
        "zh",
        "category",
        "fraud_security",
        0.85,
        [
            "盗刷",
            "诈骗",
            "被骗",
            "骗子",
            "冒用",
            "盗用",
            "被盗",
            "资金安全",
            "钓鱼",
            "不是本人",
            "非本人",
            "挂失",
            "丢失",
        ],
    ),
    _r(
        "zh",
        "category",
        "fees_charges",
        0.8,
        [
            "手续费",
            "收费",
            "扣费",
            "年费",
            "管理费",
            "服务费",
            "利息",
            "利率",
            "汇率",
            "乱收费",
            "扣钱",
            "短信费",
            "小额账户管理费",
        ],
    ),
    _r(
        "zh",
        "category",
        "technical_failure",
        0.8,
        [
            "闪退",
            "卡顿",
            "卡死",
            "打不开",
            "死机",
            "黑屏",
            "白屏",
            "报错",
            "bug",
            "崩溃",
            "系统繁忙",
            "系统错误",
            "网络异常",
            "无响应",
            "登不上",
            "进不去",
            "失败",
            "故障",
            "异常",
            "转圈",
        ],
        [
            r"登[录陆]?不[了上进]",
            r"(?:用|打|点|进|上|连|链接|连接)不[了开上进去]",
            r"没法用|不能用|无法(?:使用|登[录陆]|打开|进入)",
            r"一直(?:提示|显示|加载|转)",
            r"[太好很]卡",
            r"卡[死爆住]",
        ],
    ),
    _r(
        "zh",
        "category",
        "staff_attitude",
        0.85,
        ["态度", "态度差", "不耐烦", "骂人", "辱骂", "冷漠", "推诿", "甩脸", "爱理不理"],
    ),
    _r(
        "zh",
        "category",
        "privacy",
        0.85,
        ["隐私", "个人信息", "泄露", "泄漏", "通讯录", "读取", "权限"],
    ),
    _r(
        "zh",
        "category",
        "incorrect_information",
        0.7,
        ["虚假宣传", "误导", "欺骗", "不实", "信息错误", "显示错误"],
    ),
    _r(
        "zh",
        "category",
        "service_quality",
        0.65,
        [
            "排队",
            "效率",
            "太慢",
            "等待",
            "客服",
            "人工",
            "柜台",
            "网点",
            "营业厅",
            "服务差",
            "麻烦",
            "繁琐",
            "复杂",
            "难用",
            "垃圾",
            "不好用",
            "体验",
        ],
    ),
    _r(
        "zh",
        "category",
        "product_function",
        0.65,
        [
            "功能",
            "不支持",
            "限额",
            "额度",
            "建议",
            "希望",
            "增加",
            "能不能",
            "界面",
            "设计",
            "广告",
            "弹窗",
            "更新",
            "升级",
            "版本",
            "强制",
        ],
    ),
    # product lines
    # Explicit online/mobile channel: strongest, beats products done *in* the app.
    _r(
        "zh",
        "product_line",
        "digital_banking",
        0.95,
        [
            "手机银行",
            "网银",
            "网上银行",
            "电子银行",
            "客户端",
            "app",
            "软件",
            "应用",
            "融e联",
            "融e购",
            "工银e",
            "e支付",
            "苹果",
            "安卓",
            "ios",
            "iphone",
            "iphonex",
            "android",
            "ipad",
            "好评",
            "差评",
            "五星",
            "一星",
            "评分",
            "用户体验",
            "程序员",
            "程序猿",
            "开发",
            "掌上银行",
            "掌银",
            "融e行",
            "平台",
            "手机版",
            "新版",
            "新版本",
            "旧版",
            "老版本",
            "信使",
            "工银信使",
        ],
        [
            r"[0-5零一二三四五]颗?星",
            r"iphone\s*\w*",
            r"应用商店|app\s*store",
            r"(?<![a-z])ip(?:hone|ad)?\s*(?:[1-9]\d?|x[rs]?)(?![a-z])",
            r"(?<![a-z])ios\s*\d+",
        ],
        suffix="channel",
    ),
    # Symptoms and actions of an app or website (the issue names 登录 闪退 更新 转账).
    _r(
        "zh",
        "product_line",
        "digital_banking",
        0.85,
        [
            "登录",
            "登陆",
            "闪退",
            "更新",
            "升级",
            "版本",
            "卡顿",
            "界面",
            "下载",
            "安装",
            "注册",
            "验证码",
            "短信验证",
            "指纹",
            "人脸识别",
            "刷脸",
            "人脸",
            "u盾",
            "密码器",
            "手机盾",
            "转账",
            "二维码",
            "扫码",
            "打不开",
            "页面",
            "系统",
            "手机",
            "刷新",
            "适配",
            "黑屏",
            "白屏",
            "角标",
            "图标",
            "按钮",
            "推送",
            "弹窗",
            "广告",
            "文本框",
            "版面",
            "字体",
            "流量",
            "内存",
            "网络",
            "登不上",
            "登不了",
            "找回密码",
            "登录密码",
            "闪",
            "进不去",
            "超时",
            "卸载",
            "横屏",
            "评论",
            "响应",
            "加载",
            "网速",
            "功能",
            "查询",
            "查账",
            "找不到",
            "绑定",
            "设置",
            "菜单",
            "bug",
            "漏洞",
            "打开",
            "连接",
            "链接",
            "登入",
            "账号",
            "用户名",
            "短信",
            "同步",
            "实时",
            "退出",
            "太慢",
            "很慢",
            "反应慢",
            "缓存",
            "截图",
            "设备",
            # app behaviour named in misread ICBC reviews
            "联网",
            "断网",
            "掉线",
            "启动",
            "耗电",
            "后台",
            "cpu",
            "崩溃",
            "死机",
            "闪屏",
            "屏幕",
            "输入法",
            "键盘",
            "权限",
            "兼容",
            "配适",
            "开发者",
            "ui",
            "交互",
            "程序",
            "中毒",
            "病毒",
            "iphne",
        ],
        [
            r"升不了级|用不起来|安装不了|下载不了|功能",
            r"返回键|按键|点击|头像|上传|黑边|断线|一直卡|卡在|产品经理|明细",
            r"错误|转圈|看不清|卡到|卡一次|识别|添加|破东西|什么东西|这玩意|联不?上|点半天",
            r"卡的一[比逼b]|卡成|好卡|太卡",
            r"登[录陆]?不[了上进]",
            r"(?:用|打|点|进|上|连|链接|连接)不[了开上进去]",
            r"没法用|不能用|无法(?:使用|登[录陆]|打开|进入)",
            r"打开(?:太|很|好|特别)?慢",
            r"[查看找存]不[到了]|显示不出|保存不了|秒退",
            r"[太好很]卡",
            r"卡[死爆住]",
            r"转个?账",
        ],
        suffix="app",
    ),
    # Generic usage words: weak, lose to any product rule but beat nothing.
    _r(
        "zh",
        "product_line",
        "digital_banking",
        0.6,
        [
            "操作",
            "方便",
            "便捷",
            "快捷",
            "使用",
            "用起来",
            "好用",
            "难用",
            "不好用",
            "实用",
            "显示",
            "稳定",
            "不稳定",
            "测试",
            "发布",
            "修复",
            "优化",
            "人性化",
            "垃圾",
            "足不出户",
            "密码",
            "提示",
            "设计",
            "体验",
            "一款",
            "推荐",
            "值得",
            "拥有",
            "下载",
            "卸载",
            "流畅",
            # app-store wording: use over time, cheering and asking the developers to improve
            "在用",
            "一直在用",
            "用了",
            "用着",
            "不会用",
            "支持",
            "加油",
            "完善",
            "改进",
            "继续努力",
            "给力",
        ],
        [
            r"好用|难用|(?<![信费应])用[的得]|用过|可以用|谁用谁|试用|方便|快捷|便捷|灵活",
            r"[给打评]你?[0-9零一二三四五]分|[0-9零一二三四五]分(?:都|也)?不想给",
        ],
        suffix="usage",
    ),
    # Bare praise (不错, 赞) names no product. On a complaint platform praise is not a
    # complaint to route to a deadline; the ICBC reviews show it comes from app users, so it
    # goes, weakly, to digital banking. Bare *complaints* (太差了, 烂) do not: a real
    # complaint with no product named must reach a person (triage), not the app team.
    _r(
        "zh",
        "product_line",
        "digital_banking",
        0.5,
        [
            "不错",
            "挺不错",
            "很不错",
            "蛮不错",
            "还不错",
            "点赞",
            "赞",
            "棒",
            "很棒",
            "完美",
            "强大",
            "越来越好",
        ],
        [r"不错|好棒|棒棒"],
        suffix="praise",
    ),
    _r(
        "zh",
        "product_line",
        "cards",
        0.75,
        [
            "信用卡",
            "银行卡",
            "借记卡",
            "储蓄卡",
            "信用卡中心",
            "绑卡",
            "卡片",
            "刷卡",
            "pos",
            "atm",
            "取款机",
            "取款",
        ],
    ),
    _r(
        "zh",
        "product_line",
        "loans",
        0.8,
        ["贷款", "房贷", "车贷", "按揭", "分期", "借款", "融e借", "还贷", "放款"],
    ),
    _r(
        "zh",
        "product_line",
        "payments",
        0.7,
        [
            "汇款",
            "跨行",
            "跨境",
            "结算",
            "支付",
            "付款",
            "收款",
            "微信",
            "支付宝",
            "到账",
            "外汇",
            "云闪付",
        ],
    ),
    _r(
        "zh",
        "product_line",
        "deposits",
        0.7,
        ["存款", "开户", "销户", "余额", "定期", "活期", "存折", "账户", "冻结", "存钱"],
    ),
    _r("zh", "product_line", "credit_reporting", 0.85, ["征信", "信用报告", "信用记录"]),
    _r("zh", "product_line", "debt_collection", 0.85, ["催收", "催债", "讨债"]),
    _r(
        "zh",
        "product_line",
        "wealth",
        0.8,
        ["理财", "基金", "投资", "贵金属", "黄金", "积存金", "保险", "收益", "国债", "股票"],
    ),
)

ALL_RULES: tuple[Rule, ...] = EN_RULES + ZH_RULES

# Chinese product-line ties go to digital banking: reviews of the mobile app mention
# transfers, cards and payments as things they do *in the app*.
ZH_PRODUCT_TIE_ORDER: tuple[str, ...] = ("digital_banking",)

# Extra words for the jieba dictionary besides the rule keywords.
_EXTRA_JIEBA_WORDS: tuple[str, ...] = (
    "工商银行",
    "工行",
    "建设银行",
    "农业银行",
    "中国银行",
    "招商银行",
    "交通银行",
    "银行卡号",
    "支付密码",
    "动态密码",
    "人脸验证",
)


def _en_regex(rule: Rule) -> re.Pattern[str]:
    parts = [r"\b" + re.escape(k).replace(r"\ ", r"\s+") + r"\b" for k in rule.keywords]
    parts.extend(rule.patterns)
    return re.compile("|".join(parts), re.IGNORECASE)


_EN_COMPILED: tuple[tuple[Rule, re.Pattern[str]], ...] = tuple((r, _en_regex(r)) for r in EN_RULES)
_ZH_COMPILED: tuple[tuple[Rule, frozenset[str], re.Pattern[str] | None], ...] = tuple(
    (
        r,
        frozenset(k.lower() for k in r.keywords),
        re.compile("|".join(r.patterns), re.IGNORECASE) if r.patterns else None,
    )
    for r in ZH_RULES
)


class _ChineseNLP:
    """Lazily built, thread-safe traditional→simplified converter and jieba tokenizer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._converter: Any = None

    def _ensure(self) -> None:
        if self._tokenizer is not None:
            return
        with self._lock:
            if self._tokenizer is not None:
                return
            with warnings.catch_warnings():  # jieba's old regexes warn on first compile
                warnings.simplefilter("ignore")
                import jieba
            from opencc import OpenCC

            # jieba logs "Building prefix dict..." at DEBUG/INFO on first use; keep quiet.
            jieba.setLogLevel(logging.WARNING)
            logging.getLogger("jieba").setLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            words = {k for r in ZH_RULES for k in r.keywords if not k.isascii()}
            for word in sorted(words.union(_EXTRA_JIEBA_WORDS)):
                tokenizer.add_word(word, freq=20000)
            self._converter = OpenCC("t2s")
            self._tokenizer = tokenizer

    def simplify(self, text: str) -> str:
        """Convert traditional characters to simplified ones."""
        self._ensure()
        return str(self._converter.convert(text))

    def tokens(self, simplified: str) -> list[str]:
        """Segment simplified Chinese text; Latin tokens are lower-cased."""
        self._ensure()
        return [t.lower() for t in self._tokenizer.lcut(simplified) if t.strip()]


_NLP = _ChineseNLP()

MAX_RULE_CHARS = 4000
"""Rules look at the first this many characters only (bounded cost on huge input)."""


def warm_up() -> None:
    """Initialise jieba and OpenCC now instead of on the first Chinese text (about 1 s)."""
    _NLP.tokens(_NLP.simplify("手機銀行"))


def simplify_chinese(text: str) -> str:
    """Return ``text`` with traditional Chinese characters converted to simplified ones."""
    return _NLP.simplify(text)


def segment_chinese(text: str) -> list[str]:
    """Return the jieba tokens of ``text`` (converted to simplified first, Latin lower-cased)."""
    return _NLP.tokens(_NLP.simplify(text))


def _hit(rule: Rule, matched: list[str]) -> RuleHit:
    uniq = tuple(dict.fromkeys(matched))
    weight = min(0.95, rule.weight + 0.05 * (len(uniq) - 1))
    return RuleHit(rule.id, rule.target, rule.code, round(weight, 4), uniq)


def apply_rules(text: str, language: str) -> list[RuleHit]:
    """Run the rules of a language on a text.

    Args:
        text: the complaint text (any length; only the first MAX_RULE_CHARS are read).
        language: ``"zh"`` runs the Chinese rules; any other code the English ones
            (Latin-script words such as "APP" are matched by the Chinese rules too).

    Returns:
        The rules that fired, in rule order.
    """
    text = text[:MAX_RULE_CHARS]
    hits: list[RuleHit] = []
    if language == "zh":
        simplified = _NLP.simplify(text)
        tokens = _NLP.tokens(simplified)
        for rule, keywords, pattern in _ZH_COMPILED:
            matched = [t for t in tokens if t in keywords]
            if pattern is not None:
                matched.extend(m.group(0) for m in pattern.finditer(simplified))
            if matched:
                hits.append(_hit(rule, matched))
        return hits
    for rule, regex in _EN_COMPILED:
        found = [re.sub(r"\s+", " ", m.group(0).lower()) for m in regex.finditer(text)]
        if found:
            hits.append(_hit(rule, found))
    return hits


def rule_scores(hits: Iterable[RuleHit], target: Target) -> dict[str, float]:
    """Combine the hits of one target into a score per code.

    Independent hits for the same code combine as ``1 - prod(1 - weight)``.

    Returns:
        code -> score in 0..1, only for codes with at least one hit.
    """
    miss: dict[str, float] = {}
    for hit in hits:
        if hit.target == target:
            miss[hit.code] = miss.get(hit.code, 1.0) * (1.0 - hit.weight)
    return {code: round(1.0 - m, 4) for code, m in miss.items()}
