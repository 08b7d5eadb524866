"""Append-only audit log, one table per service schema (ARCHITECTURE.md §1 "privacy and audit").

Every read of personal data in clear and every change a person makes (case actions, rule
changes, calendar overrides, overrides of a classification) is written with
:func:`record` in the same transaction as the change, so an audited change cannot commit
without its audit row. The table refuses UPDATE and DELETE (a trigger created by the
service's migration with :func:`append_only_trigger_sql`). Auditors read it through
``GET /v1/audit`` (:func:`audit_router`), filtered by actor, subject and time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator, BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared import context
from shared.auth import Principal, require_roles


def audit_table(metadata: MetaData) -> Table:
    """Declare ``<schema>.audit_log`` on a service's metadata.

    Columns: ``id`` (order), ``at`` (UTC), ``actor`` (token subject), ``actor_roles``,
    ``action`` (``case.resolve``, ``personal_data.read`` ...), ``subject_type``,
    ``subject_id``, ``details`` (jsonb, never personal data), ``correlation_id``.
    """
    table = Table(
        "audit_log",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor", Text, nullable=False),
        Column("actor_roles", Text, nullable=False),
        Column("action", Text, nullable=False),
        Column("subject_type", Text, nullable=False),
        Column("subject_id", Text, nullable=False),
        Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("correlation_id", Text),
    )
    Index(f"{metadata.schema}_audit_subject_idx", table.c.subject_id, table.c.at)
    Index(f"{metadata.schema}_audit_actor_idx", table.c.actor, table.c.at)
    return table


def append_only_trigger_sql(schema: str) -> tuple[str, str]:
    """Return ``(upgrade_sql, downgrade_sql)`` making ``<schema>.audit_log`` append-only.

    Use in the migration that creates the table: ``op.execute(up)`` / ``op.execute(down)``.
    """
    # One statement each (a DO block): asyncpg prepares statements and refuses several.
    up = f"""
DO $do$
BEGIN
  CREATE OR REPLACE FUNCTION "{schema}".audit_log_append_only() RETURNS trigger
  LANGUAGE plpgsql AS $fn$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $fn$;
  CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "{schema}".audit_log
  FOR EACH ROW EXECUTE FUNCTION "{schema}".audit_log_append_only();
END $do$;
"""
    down = f"""
DO $do$
BEGIN
  DROP TRIGGER IF EXISTS audit_log_append_only ON "{schema}".audit_log;
  DROP FUNCTION IF EXISTS "{schema}".audit_log_append_only();
END $do$;
"""
    return up, down


async def record(
    session: AsyncSession,
    table: Table,
    *,
    actor: Principal,
    action: str,
    subject_type: str,
    subject_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one audit row in the session's transaction (not committed here).

    Args:
        session: the unit of work of the audited change.
        table: the service's audit table (:func:`audit_table`).
        actor: who did it.
        action: dotted verb, e.g. ``case.resolve``, ``personal_data.read``, ``rules.replace``.
        subject_type: kind of thing it was done to (``case``, ``rules``, ...).
        subject_id: its id.
        details: extra facts without personal data (old and new values of a rule, ...).
    """
    await session.execute(
        insert(table).values(
            actor=actor.subject,
            actor_roles=",".join(sorted(actor.roles)),
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            details=details or {},
            correlation_id=context.correlation_id.get(),
        )
    )


class AuditEntry(BaseModel):
    """One audit row."""

    id: int
    at: datetime
    actor: str
    actor_roles: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]
    correlation_id: str | None


class AuditPage(BaseModel):
    """A page of audit rows, newest first, with the total that matched."""

    total: int
    items: list[AuditEntry]


# Bounds that keep odd query values a 422 instead of a database error (found by schemathesis):
# PostgreSQL text refuses NUL, timestamptz and bigint have ranges.
_Filter = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]


def _instant(value: datetime | None) -> datetime | None:
    if value is not None and not 1900 <= value.year <= 9000:
        raise ValueError("must be between the years 1900 and 9000")
    return value


def audit_router(table: Table) -> APIRouter:
    """Return the ``GET /v1/audit`` router of a service's audit table (auditors, admins)."""
    router = APIRouter(prefix="/v1", tags=["audit"])

    @router.get("/audit", response_model=AuditPage, summary="The audit log (append-only)")
    async def get_audit(
        request: Request,
        _: Annotated[Principal, require_roles("auditor")],
        actor: _Filter = None,
        subject_id: _Filter = None,
        action: _Filter = None,
        from_: Annotated[datetime | None, Query(alias="from"), AfterValidator(_instant)] = None,
        to: Annotated[datetime | None, AfterValidator(_instant)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> AuditPage:
        """Return audit rows filtered by actor, subject, action and time range [from, to)."""
        conditions = []
        if actor:
            conditions.append(table.c.actor == actor)
        if subject_id:
            conditions.append(table.c.subject_id == subject_id)
        if action:
            conditions.append(table.c.action == action)
        if from_:
            conditions.append(table.c.at >= from_)
        if to:
            conditions.append(table.c.at < to)
        async with request.app.state.sessionmaker() as session, session.begin():
            total = await session.scalar(select(func.count()).select_from(table).where(*conditions))
            rows = (
                await session.execute(
                    select(table)
                    .where(*conditions)
                    .order_by(table.c.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return AuditPage(
            total=int(total or 0), items=[AuditEntry.model_validate(r._mapping) for r in rows]
        )

    return router
