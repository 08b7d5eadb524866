"""Priority rules (P1 highest .. P4): what makes a complaint urgent.

Each rule that fires is listed in the explanation. Levels combine by taking the highest;
a repeat complaint raises the result by one level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNAUTHORISED = re.compile(
    r"unauthori[sz]ed|did not authori[sz]e|didn't authori[sz]e|not authori[sz]ed|stolen|"
    r"盗刷|被盗|未经授权|未授权|冒用|诈骗|骗",
    re.IGNORECASE,
)
_REGULATOR_OR_MEDIA = re.compile(
    r"\bcfpb\b|regulator|ombudsman|attorney general|lawyer|lawsuit|sue you|court|media|"
    r"journalist|newspaper|监管|银保监|金融监管|人民银行|12378|投诉到|媒体|曝光|记者|律师|起诉|法院",
    re.IGNORECASE,
)
_VULNERABLE = re.compile(
    r"elderly|disabled|disability|blind|deaf|wheelchair|dementia|senior citizen|"
    r"老人|老年|残疾|盲人|聋|行动不便",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PriorityResult:
    """The priority and the rules that set it."""

    priority: str
    fired: tuple[str, ...]


def assess(
    *,
    category: str,
    text: str,
    channel: str,
    amount_minor: int | None,
    high_amount_minor: int,
    vulnerable_customer: bool,
    repeat_count: int,
) -> PriorityResult:
    """Return the priority of a complaint and the rules that fired.

    Args:
        category: taxonomy category code.
        text: the (redacted) description.
        channel: intake channel.
        amount_minor: disputed amount in minor units, if known.
        high_amount_minor: threshold in minor units above which money lost raises priority.
        vulnerable_customer: flagged by the channel.
        repeat_count: earlier complaints by the same customer within the repeat window.
    """
    level = 3
    fired: list[str] = []
    if category == "fraud_security":
        level = min(level, 1)
        fired.append("fraud_category")
    if _UNAUTHORISED.search(text):
        level = min(level, 1)
        fired.append("unauthorised_transaction")
    if channel == "regulator_referral":
        level = min(level, 1)
        fired.append("regulator_referral")
    if _REGULATOR_OR_MEDIA.search(text):
        level = min(level, 2)
        fired.append("regulator_or_media_threat")
    if amount_minor is not None and amount_minor > high_amount_minor:
        level = min(level, 2)
        fired.append("high_amount")
    if vulnerable_customer or _VULNERABLE.search(text):
        level = min(level, 2)
        fired.append("vulnerable_customer")
    if category == "other" and not fired:
        level = 4
        fired.append("uncategorised")
    if repeat_count > 0:
        level = max(1, level - 1)
        fired.append("repeat_complaint")
    return PriorityResult(priority=f"P{level}", fired=tuple(fired))
