"""The complaint lifecycle as an explicit state machine (issue 5 §1, ARCHITECTURE.md §1).

States (``shared.events.contracts.cases``): opened, acknowledged, assigned, investigating,
awaiting_customer, responsibility_determined, resolved, result_notified, closed, plus
withdrawn, merged (terminal), escalated (a supervisor handles it) and reopened.

:data:`TRANSITIONS` maps each action to the states it may start from and the state it
leads to (None: the status does not change, e.g. ``identify_staff``). :data:`ROLES` says
who may do it; ``admin`` may do everything (``shared.auth``).
"""

from __future__ import annotations

from typing import Final

OPENED: Final = "opened"
ACKNOWLEDGED: Final = "acknowledged"
ASSIGNED: Final = "assigned"
INVESTIGATING: Final = "investigating"
AWAITING_CUSTOMER: Final = "awaiting_customer"
RESPONSIBILITY_DETERMINED: Final = "responsibility_determined"
RESOLVED: Final = "resolved"
RESULT_NOTIFIED: Final = "result_notified"
CLOSED: Final = "closed"
WITHDRAWN: Final = "withdrawn"
MERGED: Final = "merged"
ESCALATED: Final = "escalated"
REOPENED: Final = "reopened"

STATUSES: Final[tuple[str, ...]] = (
    OPENED,
    ACKNOWLEDGED,
    ASSIGNED,
    INVESTIGATING,
    AWAITING_CUSTOMER,
    RESPONSIBILITY_DETERMINED,
    RESOLVED,
    RESULT_NOTIFIED,
    CLOSED,
    WITHDRAWN,
    MERGED,
    ESCALATED,
    REOPENED,
)
TERMINAL: Final = frozenset({CLOSED, WITHDRAWN, MERGED})
#: States in which the bank still owes the customer a result.
ACTIVE: Final = frozenset(
    {
        OPENED,
        ACKNOWLEDGED,
        ASSIGNED,
        INVESTIGATING,
        AWAITING_CUSTOMER,
        RESPONSIBILITY_DETERMINED,
        RESOLVED,
        ESCALATED,
        REOPENED,
    }
)

#: action -> (states it may start from, resulting state or None for "unchanged").
TRANSITIONS: Final[dict[str, tuple[frozenset[str], str | None]]] = {
    "acknowledge": (frozenset({OPENED, REOPENED}), ACKNOWLEDGED),
    "assign": (
        frozenset({OPENED, ACKNOWLEDGED, REOPENED, ASSIGNED, INVESTIGATING, ESCALATED}),
        ASSIGNED,
    ),
    "start_investigation": (frozenset({ASSIGNED, ESCALATED}), INVESTIGATING),
    "request_info": (frozenset({INVESTIGATING}), AWAITING_CUSTOMER),
    "receive_info": (frozenset({AWAITING_CUSTOMER}), INVESTIGATING),
    "determine_responsibility": (frozenset({INVESTIGATING, ESCALATED}), RESPONSIBILITY_DETERMINED),
    "resolve": (frozenset({RESPONSIBILITY_DETERMINED}), RESOLVED),
    "notify_customer": (frozenset({RESOLVED}), RESULT_NOTIFIED),
    "close": (frozenset({RESULT_NOTIFIED}), CLOSED),
    "withdraw": (ACTIVE, WITHDRAWN),
    "escalate": (ACTIVE - {ESCALATED}, ESCALATED),
    "merge": (ACTIVE, MERGED),
    "reopen": (frozenset({RESULT_NOTIFIED, CLOSED}), REOPENED),
    "identify_staff": (ACTIVE, None),
    "request_extension": (ACTIVE - {RESOLVED}, None),
    "approve_extension": (ACTIVE - {RESOLVED}, None),
    "reject_extension": (ACTIVE, None),
}

_STAFF = frozenset({"agent", "supervisor"})
_SUPERVISOR = frozenset({"supervisor"})

#: action -> roles admitted (admin always is). Investigation steps by an ``agent`` also
#: require that the agent is the case's assigned handler (see actions.py).
ROLES: Final[dict[str, frozenset[str]]] = {
    "acknowledge": _STAFF,
    "assign": _SUPERVISOR,
    "start_investigation": _STAFF,
    "request_info": _STAFF,
    "receive_info": _STAFF,
    "determine_responsibility": _STAFF,
    "resolve": _STAFF,
    "notify_customer": _STAFF,
    "close": _STAFF,
    "withdraw": _STAFF,
    "escalate": _STAFF,
    "merge": _SUPERVISOR,
    "reopen": _SUPERVISOR,
    "identify_staff": _STAFF,
    "request_extension": _STAFF,
    "approve_extension": _SUPERVISOR,
    "reject_extension": _SUPERVISOR,
}

#: Actions an agent may do only on a case assigned to them (a supervisor may always).
HANDLER_ONLY: Final = frozenset(
    {
        "start_investigation",
        "request_info",
        "receive_info",
        "determine_responsibility",
        "resolve",
        "notify_customer",
        "request_extension",
    }
)


def allowed_actions(status: str) -> list[str]:
    """Return the actions allowed from ``status``, in the order of :data:`TRANSITIONS`."""
    return [action for action, (sources, _) in TRANSITIONS.items() if status in sources]


def target(action: str, status: str) -> str | None:
    """Return the state ``action`` leads to from ``status`` (``status`` when unchanged).

    Returns:
        None when the action is not allowed from ``status``.
    """
    sources, to = TRANSITIONS[action]
    if status not in sources:
        return None
    return to or status


def bump_priority(priority: str) -> str:
    """Return the next higher priority (``P3`` -> ``P2``; ``P1`` stays), for reopens."""
    if len(priority) == 2 and priority[0] == "P" and priority[1].isdigit():
        return f"P{max(1, int(priority[1]) - 1)}"
    return priority
