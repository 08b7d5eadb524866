"""HTTP routes of analytics (ARCHITECTURE.md §5): reports as JSON, or CSV on request."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from services.analytics import tables
from shared.app import SessionDep
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Analyst = Annotated[Principal, require_roles("analyst", "supervisor", "auditor")]


class TypeShare(BaseModel):
    """Count and share of one complaint category (``unclassified`` until routed)."""

    category: str
    count: int
    share: float


class TypesReport(BaseModel):
    """``GET /v1/reports/complaints/types``: the type share of complaints received."""

    total: int
    from_: datetime | None = None
    to: datetime | None = None
    items: list[TypeShare]


def wants_csv(request: Request) -> bool:
    """Return True when the client asked for ``text/csv``."""
    return "text/csv" in request.headers.get("accept", "")


def csv_response(rows: list[dict[str, Any]], filename: str) -> Response:
    """Render rows as a CSV download."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/complaints/types",
    response_model=TypesReport,
    summary="Complaint type share",
    responses={200: {"content": {"text/csv": {}}}},
)
async def complaint_types(
    request: Request,
    session: SessionDep,
    _: Analyst,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
) -> Any:
    """Return complaints received in [from, to) by category with their shares (0..1)."""
    f = tables.complaint_fact
    category = func.coalesce(f.c.category, "unclassified")
    query = select(category.label("category"), func.count().label("count")).group_by(category)
    if from_ is not None:
        query = query.where(f.c.received_at >= from_)
    if to is not None:
        query = query.where(f.c.received_at < to)
    async with session.begin():
        rows = (await session.execute(query.order_by(func.count().desc(), category))).all()
    total = sum(r.count for r in rows)
    items = [
        TypeShare(
            category=r.category, count=r.count, share=round(r.count / total, 4) if total else 0
        )
        for r in rows
    ]
    if wants_csv(request):
        return csv_response([i.model_dump() for i in items], "complaint-types.csv")
    return TypesReport(total=total, from_=from_, to=to, items=items)
