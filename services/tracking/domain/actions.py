"""Case actions (``POST /v1/cases/{id}/actions``): the transitions of the lifecycle.

One call = one unit of work: the case row is locked (``SELECT ... FOR UPDATE``), the action
checked (role, recusal, state, handler, ``expected_version``), and then the new status, the
clock changes, a timeline entry, an audit row and the events (``cases.status-changed`` for
every status change, plus ``cases.resolved``, ``cases.result-notified``, ``cases.closed``,
``cases.reopened`` and ``customer.notifications``) are written in the caller's transaction.
Nothing here commits (STYLE.md §3).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.tracking import metrics as tracking_metrics
from services.tracking import tables
from services.tracking.domain import clocks, lifecycle
from services.tracking.domain.exceptions import (
    CaseNotFound,
    ForbiddenAction,
    IllegalTransition,
    InvalidAction,
    RecusalRequired,
    VersionConflict,
)
from services.tracking.domain.service import valid_uuid
from services.tracking.settings import TrackingSettings
from shared import audit
from shared.auth import Principal
from shared.events import outbox, registry
from shared.events.contracts.cases import (
    CASE_CLOSED_V1,
    CASE_REOPENED_V1,
    CASE_RESOLVED_V1,
    CASE_RESULT_NOTIFIED_V1,
    CASE_STATUS_CHANGED_V1,
    CUSTOMER_NOTIFICATION_V1,
    CaseClosed,
    CaseReopened,
    CaseResolved,
    CaseResultNotified,
    CaseStatusChanged,
    CustomerNotification,
    Remedy,
    Responsibility,
)
from shared.events.envelope import Envelope, Payload, new_event
from shared.privacy import redact
from shared.workcalendar import WorkingDayCalendar

Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class _Action(BaseModel):
    """Fields every action accepts.

    Attributes:
        expected_version: the case ``version`` the caller last read; a mismatch is a 409.
        note: free text for the timeline (redacted; never in events).
    """

    model_config = ConfigDict(extra="forbid")

    expected_version: int | None = Field(None, ge=1)
    note: str | None = Field(None, max_length=2000)


class Acknowledge(_Action):
    """First response: stops the acknowledgement clock; tells the customer the deadline."""

    action: Literal["acknowledge"]


class Assign(_Action):
    """Assign a handler (a staff id) and optionally move the case to another department."""

    action: Literal["assign"]
    handler: Code
    department: Code | None = None


class StartInvestigation(_Action):
    """The handler starts investigating."""

    action: Literal["start_investigation"]


class RequestInfo(_Action):
    """Ask the customer for information; pauses the resolution clock if enabled."""

    action: Literal["request_info"]
    reason: Text500


class ReceiveInfo(_Action):
    """The customer answered (or the wait ended); the pause, if any, ends."""

    action: Literal["receive_info"]


class DetermineResponsibility(_Action):
    """Record who is responsible; ``at_fault_unit`` is required when it is the bank."""

    action: Literal["determine_responsibility"]
    responsibility: Responsibility
    at_fault_unit: Code | None = None


class Resolve(_Action):
    """Choose the remedy.

    Attributes:
        amount_minor: compensation or refund in minor units of ``currency`` (> 0 for
            ``compensation`` and ``fee_refund``, 0 otherwise).
        summary: what was decided (kept in the case, redacted; not in events).
    """

    action: Literal["resolve"]
    remedy: Remedy
    amount_minor: int = Field(0, ge=0, le=10**13)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class NotifyCustomer(_Action):
    """The customer was told the result; the resolution clock stops here by default."""

    action: Literal["notify_customer"]
    channel: Literal["phone", "sms", "email", "letter", "branch", "mobile_app", "online_chat"]


class Close(_Action):
    """Close the case after the result was given (without waiting for a follow-up)."""

    action: Literal["close"]


class Withdraw(_Action):
    """The customer withdrew the complaint."""

    action: Literal["withdraw"]
    reason: Text500


class Escalate(_Action):
    """Hand the case to a supervisor."""

    action: Literal["escalate"]
    reason: Text500


class Merge(_Action):
    """Merge this case into another open case (a duplicate complaint)."""

    action: Literal["merge"]
    into_case_id: uuid.UUID


class Reopen(_Action):
    """Reopen a notified or closed case: a new resolution clock from now, higher priority."""

    action: Literal["reopen"]
    reason: Literal["customer_request", "supervisor"]


class IdentifyStaff(_Action):
    """Name the staff members the complaint is about (recusal, issue 5 §1)."""

    action: Literal["identify_staff"]
    staff_ids: list[Code] = Field(min_length=1, max_length=20)


class RequestExtension(_Action):
    """A handler asks for more working days on the resolution clock."""

    action: Literal["request_extension"]
    working_days: int = Field(ge=1, le=30)
    reason: Text500


class ApproveExtension(_Action):
    """A supervisor (not the requester) approves the pending extension."""

    action: Literal["approve_extension"]


class RejectExtension(_Action):
    """A supervisor rejects the pending extension."""

    action: Literal["reject_extension"]
    reason: Text500


CaseAction = Annotated[
    Acknowledge
    | Assign
    | StartInvestigation
    | RequestInfo
    | ReceiveInfo
    | DetermineResponsibility
    | Resolve
    | NotifyCustomer
    | Close
    | Withdraw
    | Escalate
    | Merge
    | Reopen
    | IdentifyStaff
    | RequestExtension
    | ApproveExtension
    | RejectExtension,
    Field(discriminator="action"),
]

SYSTEM = Principal(subject="system:tracking", roles=frozenset({"system"}))


def actor_role(actor: Principal) -> str:
    """Return the one role named in events for ``actor`` (never a name)."""
    for role in ("admin", "supervisor", "agent", "system"):
        if role in actor.roles:
            return role
    return sorted(actor.roles)[0] if actor.roles else "unknown"


@dataclass
class _Work:
    """What an action changes, collected before writing."""

    case_values: dict[str, Any] = field(default_factory=dict)
    clock_values: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    new_clocks: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[Envelope[Any], str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    audits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class _Ctx:
    """The loaded case and clocks plus helpers for one action."""

    def __init__(
        self,
        *,
        case: dict[str, Any],
        clock_rows: list[dict[str, Any]],
        calendar: WorkingDayCalendar,
        settings: TrackingSettings,
        now: datetime,
    ) -> None:
        self.case = case
        self.clocks = {(c["kind"], c["round"]): c for c in clock_rows}
        self.calendar = calendar
        self.settings = settings
        self.now = now
        self.work = _Work()
        self.note: str | None = None

    def clock(self, key: tuple[str, int]) -> dict[str, Any]:
        """Return a clock with the pending changes applied."""
        return {**self.clocks[key], **self.work.clock_values.get(key, {})}

    def set_clock(self, key: tuple[str, int], values: dict[str, Any]) -> None:
        """Stage changes of one clock."""
        self.work.clock_values.setdefault(key, {}).update(values)

    @property
    def resolution_key(self) -> tuple[str, int]:
        """Return the key of the current (latest round) resolution clock."""
        return max((k for k in self.clocks if k[0] == "resolution"), key=lambda k: k[1])

    def running(self, kinds: tuple[str, ...] = clocks.KINDS) -> list[tuple[str, int]]:
        """Return the keys of clocks of ``kinds`` that have not stopped."""
        return [k for k in self.clocks if k[0] in kinds and self.clock(k)["stopped_at"] is None]

    def stop(self, kinds: tuple[str, ...] = clocks.KINDS) -> None:
        """Stop the running clocks of ``kinds`` at ``now`` (closing an open pause first)."""
        for key in self.running(kinds):
            clk = self.clock(key)
            if clk["paused_at"] is not None:
                self.set_clock(key, clocks.end_pause(self.calendar, self.settings, clk, self.now))
            self.set_clock(key, {"stopped_at": self.now, "next_check_at": None})

    def event(self, type_: str, data: Payload, topic: str) -> None:
        """Stage an event about this case."""
        self.work.events.append(
            (new_event(source="tracking", type_=type_, subject=self.case["id"], data=data), topic)
        )

    def notify(self, kind: str, params: dict[str, str | int | float | bool | None]) -> None:
        """Stage a ``customer.notifications`` message (no personal data, ARCHITECTURE §3)."""
        self.event(
            CUSTOMER_NOTIFICATION_V1,
            CustomerNotification(
                notification_id=str(uuid.uuid4()),
                kind=kind,
                subject_id=self.case["id"],
                reference=self.case["reference"],
                customer_key=self.case["customer_key"],
                language=(self.case.get("details") or {}).get("language") or "zh",
                params=params,
            ),
            registry.CUSTOMER_NOTIFICATIONS,
        )


async def _load(
    session: AsyncSession, case_id: str, *, lock: bool = True
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load (and lock) a case and its clocks.

    Raises:
        CaseNotFound: no case with that id.
    """
    if not valid_uuid(case_id):
        raise CaseNotFound(f"no case {case_id}")
    stmt = select(tables.case).where(tables.case.c.id == case_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    k = tables.case_clock
    clock_stmt = select(k).where(k.c.case_id == case_id).order_by(k.c.kind, k.c.round)
    rows = (await session.execute(clock_stmt.with_for_update() if lock else clock_stmt)).all()
    return dict(row._mapping), [dict(r._mapping) for r in rows]


def _illegal(case: dict[str, Any], action: str, detail: str | None = None) -> IllegalTransition:
    allowed = lifecycle.allowed_actions(case["status"])
    return IllegalTransition(
        detail
        or (
            f"cannot {action} a case in state {case['status']}; "
            f"allowed actions: {', '.join(allowed) or 'none'}"
        ),
        current_state=case["status"],
        allowed_actions=allowed,
    )


async def apply_action(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: TrackingSettings,
    case_id: str,
    action: BaseModel,
    actor: Principal,
    now: datetime,
    system_reason: str | None = None,
) -> str:
    """Apply one action to a case in the caller's transaction.

    Args:
        session: the unit of work (not committed here).
        calendar: the bank's current calendar.
        settings: clock periods and options.
        case_id: the case (= complaint id).
        action: one of the :data:`CaseAction` models.
        actor: the caller; :data:`SYSTEM`-like principals (role ``system``) skip the role
            and handler checks (used by the follow-up consumer).
        now: the instant of the action (UTC); clocks stop and start here.
        system_reason: for consumers: the close outcome or reopen reason to record
            (``satisfied``, ``unreachable``, ``followup_unsatisfied``).

    Returns:
        The case's status after the action.

    Raises:
        CaseNotFound: no such case.
        VersionConflict: ``expected_version`` is stale.
        ForbiddenAction: role not admitted, or an agent acting on a case not assigned to them.
        RecusalRequired: the actor (or the handler being assigned) is named in the complaint.
        IllegalTransition: not allowed in the current state (409 naming state and actions).
        InvalidAction: inconsistent fields (compensation without amount, ...).
    """
    name: str = action.action  # type: ignore[attr-defined]
    case, clock_rows = await _load(session, case_id)
    expected = getattr(action, "expected_version", None)
    if expected is not None and expected != case["version"]:
        raise VersionConflict(
            f"case is at version {case['version']}, not {expected}",
            current_version=case["version"],
        )
    system = "system" in actor.roles
    if not system and not actor.has_any(*lifecycle.ROLES[name]):
        raise ForbiddenAction(
            f"{name} requires one of the roles: {', '.join(sorted(lifecycle.ROLES[name]))}"
        )
    if not system and actor.subject in (case["involved_staff"] or []):
        raise RecusalRequired(
            "the complaint is about you: another staff member must handle this case"
        )
    to_status = lifecycle.target(name, case["status"])
    if to_status is None:
        raise _illegal(case, name)
    if (
        not system
        and name in lifecycle.HANDLER_ONLY
        and not actor.has_any("supervisor")
        and case["handler"] != actor.subject
    ):
        raise ForbiddenAction(f"{name} is for the case's handler or a supervisor")
    ctx = _Ctx(case=case, clock_rows=clock_rows, calendar=calendar, settings=settings, now=now)
    note = getattr(action, "note", None)
    ctx.note = redact(note) if note else None
    if case["status"] == lifecycle.AWAITING_CUSTOMER and to_status != lifecycle.AWAITING_CUSTOMER:
        _end_pauses(ctx, actor)
    handler = _HANDLERS[name]
    await handler(ctx, action, session=session, actor=actor, system_reason=system_reason)
    await _write(
        session, ctx, name=name, from_status=case["status"], to_status=to_status, actor=actor
    )
    tracking_metrics.CASE_TRANSITIONS.labels(name).inc()
    return to_status


def _end_pauses(ctx: _Ctx, actor: Principal) -> None:
    """Close an open pause of the current resolution clock (leaving awaiting_customer)."""
    key = ctx.resolution_key
    clk = ctx.clock(key)
    if clk["paused_at"] is None or clk["stopped_at"] is not None:
        return
    values = clocks.end_pause(ctx.calendar, ctx.settings, clk, ctx.now)
    ctx.set_clock(key, values)
    ctx.work.details["pause_ended"] = True
    ctx.work.details["paused_working_days"] = values["paused_working_days"]
    ctx.work.details["due_date"] = values["due_date"].isoformat()
    ctx.work.audits.append(
        (
            "case.pause_end",
            {
                "paused_from": clk["paused_at"].isoformat(),
                "paused_to": ctx.now.isoformat(),
                "paused_working_days": values["paused_working_days"],
                "due_date": values["due_date"].isoformat(),
            },
        )
    )


# -- the actions ------------------------------------------------------------------------


async def _acknowledge(ctx: _Ctx, action: Any, **_: Any) -> None:
    ctx.stop(("acknowledgement",))
    res = ctx.clock(ctx.resolution_key)
    ctx.notify(
        "acknowledgement",
        {
            "due_date": res["due_date"].isoformat(),
            "due_at": res["due_at"].isoformat(),
            "provisional": bool(res["provisional"]),
            "round": res["round"],
        },
    )


async def _assign(ctx: _Ctx, action: Assign, **_: Any) -> None:
    if action.handler in (ctx.case["involved_staff"] or []):
        raise RecusalRequired(f"{action.handler} is named in the complaint and may not handle it")
    ctx.work.case_values["handler"] = action.handler
    ctx.work.details["handler"] = action.handler
    if action.department and action.department != ctx.case["department"]:
        ctx.work.case_values["department"] = action.department
        ctx.work.details["department"] = {"from": ctx.case["department"], "to": action.department}


async def _start_investigation(ctx: _Ctx, action: Any, **_: Any) -> None:
    if not ctx.case["handler"]:
        raise InvalidAction("assign a handler before starting the investigation")


async def _request_info(ctx: _Ctx, action: RequestInfo, *, actor: Principal, **_: Any) -> None:
    ctx.work.details["reason"] = redact(action.reason)
    if not ctx.settings.pause_while_awaiting_customer:
        return
    key = ctx.resolution_key
    clk = ctx.clock(key)
    if clk["stopped_at"] is not None or clk["breached_at"] is not None or clk["paused_at"]:
        ctx.work.details["paused"] = False
        return
    ctx.set_clock(key, {"paused_at": ctx.now, "next_check_at": None})
    ctx.work.details["paused"] = True
    ctx.work.audits.append(("case.pause_start", {"paused_from": ctx.now.isoformat()}))


async def _receive_info(ctx: _Ctx, action: Any, **_: Any) -> None:
    return None


async def _determine(ctx: _Ctx, action: DetermineResponsibility, **_: Any) -> None:
    if action.responsibility == "bank" and not action.at_fault_unit:
        raise InvalidAction("at_fault_unit is required when the bank is responsible")
    ctx.work.case_values.update(
        responsibility=action.responsibility, at_fault_unit=action.at_fault_unit
    )
    ctx.work.details.update(
        responsibility=action.responsibility, at_fault_unit=action.at_fault_unit
    )


async def _resolve(ctx: _Ctx, action: Resolve, **_: Any) -> None:
    monetary = action.remedy in ("compensation", "fee_refund")
    if monetary and (action.amount_minor <= 0 or not action.currency):
        raise InvalidAction(f"{action.remedy} needs amount_minor > 0 and a currency")
    if not monetary and (action.amount_minor or action.currency):
        raise InvalidAction(f"{action.remedy} takes no amount")
    key = ctx.resolution_key
    if ctx.settings.resolution_clock_stops_at == "resolved":
        ctx.stop(("resolution",))
    res = ctx.clock(key)
    ctx.work.case_values.update(
        remedy=action.remedy,
        compensation_minor=action.amount_minor,
        currency=action.currency,
        resolution_summary=redact(action.summary),
    )
    ctx.work.details.update(
        remedy=action.remedy, amount_minor=action.amount_minor, currency=action.currency
    )
    ctx.event(
        CASE_RESOLVED_V1,
        CaseResolved(
            case_id=ctx.case["id"],
            round=key[1],
            resolved_at=ctx.now,
            responsibility=ctx.case["responsibility"] or "not_established",
            remedy=action.remedy,
            compensation_minor=action.amount_minor,
            currency=action.currency,
            department=ctx.case["department"],
            category=ctx.case["category"],
            priority=ctx.case["priority"],
            on_time=clocks.on_time(res, ctx.now),
            working_days_taken=round(ctx.calendar.working_days_left(res["started_at"], ctx.now), 3),
        ),
        registry.CASES_RESOLVED,
    )


async def _notify_customer(ctx: _Ctx, action: NotifyCustomer, **_: Any) -> None:
    key = ctx.resolution_key
    ctx.stop()
    res = ctx.clock(key)
    ctx.work.case_values["notified_channel"] = action.channel
    ctx.work.details["channel"] = action.channel
    ctx.event(
        CASE_RESULT_NOTIFIED_V1,
        CaseResultNotified(
            case_id=ctx.case["id"],
            round=key[1],
            notified_at=ctx.now,
            channel=action.channel,
            customer_key=ctx.case["customer_key"],
            department=ctx.case["department"],
            category=ctx.case["category"],
            on_time=clocks.on_time(res, ctx.now),
        ),
        registry.CASES_RESULT_NOTIFIED,
    )
    ctx.notify(
        "result",
        {
            "responsibility": ctx.case["responsibility"],
            "remedy": ctx.case["remedy"],
            "amount_minor": ctx.case["compensation_minor"],
            "currency": ctx.case["currency"],
            "channel": action.channel,
            "recourse": ctx.settings.recourse,
        },
    )


def _closed(ctx: _Ctx, outcome: str) -> None:
    ctx.stop()
    ctx.work.case_values["closed_outcome"] = outcome
    ctx.work.details["outcome"] = outcome
    ctx.event(
        CASE_CLOSED_V1,
        CaseClosed(
            case_id=ctx.case["id"],
            closed_at=ctx.now,
            outcome=outcome,
            round=ctx.resolution_key[1],
            reopen_count=ctx.case["reopen_count"],
            department=ctx.case["department"],
            category=ctx.case["category"],
        ),
        registry.CASES_CLOSED,
    )


async def _close(ctx: _Ctx, action: Any, *, system_reason: str | None = None, **_: Any) -> None:
    _closed(ctx, system_reason or "closed_without_followup")


async def _withdraw(ctx: _Ctx, action: Withdraw, **_: Any) -> None:
    ctx.work.details["reason"] = redact(action.reason)
    _closed(ctx, "withdrawn")


async def _escalate(ctx: _Ctx, action: Escalate, **_: Any) -> None:
    ctx.work.case_values["status_before_escalation"] = ctx.case["status"]
    ctx.work.details["reason"] = redact(action.reason)


async def _merge(ctx: _Ctx, action: Merge, *, session: AsyncSession, **_: Any) -> None:
    into = str(action.into_case_id)
    if into == ctx.case["id"]:
        raise InvalidAction("a case cannot be merged into itself")
    target = (
        await session.execute(
            select(tables.case.c.id, tables.case.c.status).where(tables.case.c.id == into)
        )
    ).first()
    if target is None:
        raise InvalidAction(f"no case {into} to merge into")
    if target.status in lifecycle.TERMINAL:
        raise InvalidAction(f"case {into} is {target.status}; merge into an open case")
    ctx.work.case_values["merged_into"] = into
    ctx.work.details["into_case_id"] = into
    await session.execute(
        insert(tables.case_event).values(
            case_id=into,
            at=ctx.now,
            action="merged_in",
            from_status=target.status,
            to_status=target.status,
            actor="system:tracking",
            details={"from_case_id": ctx.case["id"]},
        )
    )
    _closed(ctx, "merged")


async def _reopen(ctx: _Ctx, action: Any, *, system_reason: str | None = None, **_: Any) -> None:
    reason = system_reason or action.reason
    ctx.stop()
    new_round = ctx.resolution_key[1] + 1
    clock = clocks.new_clock(
        ctx.calendar,
        ctx.settings,
        case_id=ctx.case["id"],
        kind="resolution",
        round_=new_round,
        started_at=ctx.now,
    )
    ctx.work.new_clocks.append(clock)
    priority = lifecycle.bump_priority(ctx.case["priority"])
    ctx.work.case_values.update(
        reopen_count=ctx.case["reopen_count"] + 1,
        priority=priority,
        closed_outcome=None,
        remedy=None,
        compensation_minor=None,
        currency=None,
        notified_channel=None,
    )
    ctx.work.details.update(
        reason=reason,
        round=new_round,
        priority={"from": ctx.case["priority"], "to": priority},
        due_date=clock["due_date"].isoformat(),
    )
    ctx.event(
        CASE_REOPENED_V1,
        CaseReopened(
            case_id=ctx.case["id"],
            round=new_round,
            reopened_at=ctx.now,
            reason=reason,
            priority=priority,
            due_at=clock["due_at"],
            due_date=clock["due_date"],
            department=ctx.case["department"],
            category=ctx.case["category"],
        ),
        registry.CASES_REOPENED,
    )


async def _identify_staff(ctx: _Ctx, action: IdentifyStaff, **_: Any) -> None:
    if ctx.case["handler"] in action.staff_ids:
        raise RecusalRequired(
            f"the current handler {ctx.case['handler']} is named: assign another handler first"
        )
    staff = sorted(set(ctx.case["involved_staff"] or []) | set(action.staff_ids))
    ctx.work.case_values["involved_staff"] = staff
    ctx.work.details["staff_count"] = len(staff)


async def _pending_extension(session: AsyncSession, case_id: str) -> Any:
    x = tables.case_extension
    return (
        await session.execute(
            select(x)
            .where(and_(x.c.case_id == case_id, x.c.status == "requested"))
            .order_by(x.c.id.desc())
            .limit(1)
        )
    ).first()


async def _request_extension(
    ctx: _Ctx, action: RequestExtension, *, session: AsyncSession, actor: Principal, **_: Any
) -> None:
    if action.working_days > ctx.settings.max_extension_working_days:
        raise InvalidAction(
            f"at most {ctx.settings.max_extension_working_days} working days per extension"
        )
    key = ctx.resolution_key
    clk = ctx.clock(key)
    if clk["stopped_at"] is not None or clk["breached_at"] is not None:
        raise _illegal(
            ctx.case,
            "request_extension",
            "the resolution clock has stopped or is already breached: no extension",
        )
    if await _pending_extension(session, ctx.case["id"]) is not None:
        raise _illegal(ctx.case, "request_extension", "an extension request is already pending")
    await session.execute(
        insert(tables.case_extension).values(
            case_id=ctx.case["id"],
            round=key[1],
            working_days=action.working_days,
            reason=redact(action.reason),
            status="requested",
            requested_by=actor.subject,
            requested_at=ctx.now,
        )
    )
    ctx.work.details.update(working_days=action.working_days, reason=redact(action.reason))


async def _approve_extension(
    ctx: _Ctx, action: ApproveExtension, *, session: AsyncSession, actor: Principal, **_: Any
) -> None:
    pending = await _pending_extension(session, ctx.case["id"])
    if pending is None:
        raise _illegal(ctx.case, "approve_extension", "no extension request is pending")
    if pending.requested_by == actor.subject:
        raise ForbiddenAction("the requester cannot approve their own extension (four eyes)")
    key = ("resolution", pending.round)
    if key != ctx.resolution_key:
        raise _illegal(ctx.case, "approve_extension", "the request was for an earlier round")
    clk = ctx.clock(key)
    if clk["stopped_at"] is not None or clk["breached_at"] is not None:
        raise _illegal(
            ctx.case,
            "approve_extension",
            "the resolution clock has stopped or breached meanwhile: reject the request",
        )
    previous_due = clk["due_date"]
    updated = {
        **clk,
        "extension_working_days": clk["extension_working_days"] + pending.working_days,
    }
    values = {"extension_working_days": updated["extension_working_days"]}
    values.update(clocks.recomputed(ctx.calendar, ctx.settings, updated))
    ctx.set_clock(key, values)
    x = tables.case_extension
    await session.execute(
        update(x)
        .where(x.c.id == pending.id)
        .values(
            status="approved",
            decided_by=actor.subject,
            decided_at=ctx.now,
            new_due_at=values["due_at"],
            new_due_date=values["due_date"],
        )
    )
    ctx.work.details.update(
        working_days=pending.working_days,
        previous_due_date=previous_due.isoformat(),
        due_date=values["due_date"].isoformat(),
    )
    ctx.notify(
        "extension",
        {
            "previous_due_date": previous_due.isoformat(),
            "due_date": values["due_date"].isoformat(),
            "due_at": values["due_at"].isoformat(),
            "working_days": pending.working_days,
        },
    )


async def _reject_extension(
    ctx: _Ctx, action: RejectExtension, *, session: AsyncSession, actor: Principal, **_: Any
) -> None:
    pending = await _pending_extension(session, ctx.case["id"])
    if pending is None:
        raise _illegal(ctx.case, "reject_extension", "no extension request is pending")
    x = tables.case_extension
    await session.execute(
        update(x)
        .where(x.c.id == pending.id)
        .values(
            status="rejected",
            decided_by=actor.subject,
            decided_at=ctx.now,
            decision_reason=redact(action.reason),
        )
    )
    ctx.work.details["working_days"] = pending.working_days


_HANDLERS: dict[str, Any] = {
    "acknowledge": _acknowledge,
    "assign": _assign,
    "start_investigation": _start_investigation,
    "request_info": _request_info,
    "receive_info": _receive_info,
    "determine_responsibility": _determine,
    "resolve": _resolve,
    "notify_customer": _notify_customer,
    "close": _close,
    "withdraw": _withdraw,
    "escalate": _escalate,
    "merge": _merge,
    "reopen": _reopen,
    "identify_staff": _identify_staff,
    "request_extension": _request_extension,
    "approve_extension": _approve_extension,
    "reject_extension": _reject_extension,
}


async def _write(
    session: AsyncSession,
    ctx: _Ctx,
    *,
    name: str,
    from_status: str,
    to_status: str,
    actor: Principal,
) -> None:
    """Write the case, clocks, timeline, audit rows and events of one action."""
    case = ctx.case
    values = {
        **ctx.work.case_values,
        "status": to_status,
        "updated_at": ctx.now,
        "version": case["version"] + 1,
    }
    await session.execute(update(tables.case).where(tables.case.c.id == case["id"]).values(values))
    k = tables.case_clock
    for (kind, round_), clock_values in ctx.work.clock_values.items():
        await session.execute(
            update(k)
            .where(and_(k.c.case_id == case["id"], k.c.kind == kind, k.c.round == round_))
            .values(clock_values)
        )
    if ctx.work.new_clocks:
        await session.execute(insert(k), ctx.work.new_clocks)
    details = dict(ctx.work.details)
    if ctx.note:
        details["note"] = ctx.note
    await session.execute(
        insert(tables.case_event).values(
            case_id=case["id"],
            at=ctx.now,
            action=name,
            from_status=from_status,
            to_status=to_status,
            actor=actor.subject,
            details=details,
        )
    )
    await audit.record(
        session,
        tables.audit_log,
        actor=actor,
        action=f"case.{name}",
        subject_type="case",
        subject_id=case["id"],
        details={"from_status": from_status, "to_status": to_status, **details},
    )
    for audit_action, audit_details in ctx.work.audits:
        await audit.record(
            session,
            tables.audit_log,
            actor=actor,
            action=audit_action,
            subject_type="case",
            subject_id=case["id"],
            details=audit_details,
        )
    events: list[tuple[Envelope[Any], str]] = []
    if to_status != from_status:
        events.append(
            (
                new_event(
                    source="tracking",
                    type_=CASE_STATUS_CHANGED_V1,
                    subject=case["id"],
                    data=CaseStatusChanged(
                        case_id=case["id"],
                        action=name,
                        from_status=from_status,
                        to_status=to_status,
                        actor_role=actor_role(actor),
                        at=ctx.now,
                        department=values.get("department", case["department"]),
                        category=case["category"],
                        priority=values.get("priority", case["priority"]),
                        handler=values.get("handler", case["handler"]),
                    ),
                ),
                registry.CASES_STATUS_CHANGED,
            )
        )
    events.extend(ctx.work.events)
    await outbox.add_many(session, tables.outbox, events)
