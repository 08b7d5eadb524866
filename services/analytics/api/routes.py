"""HTTP routes of analytics (ARCHITECTURE.md §5): reports as JSON, or CSV on request.

Every report takes the same filters: ``from``/``to`` (receipt instants; a bare date or a
time without offset is local to the bank's time zone), and comma-separated value lists
``channel``, ``category``, ``product_line``, ``department``, ``priority``, ``region``,
``branch``. ``Accept: text/csv`` returns the report's rows as CSV.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response

from services.analytics import reports
from shared.app import SessionDep
from shared.auth import Principal, require_roles
from shared.events.contracts.complaints import CHANNELS

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Analyst = Annotated[Principal, require_roles("analyst", "supervisor", "auditor")]
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


def wants_csv(request: Request) -> bool:
    """Return True when the client asked for ``text/csv``."""
    return "text/csv" in request.headers.get("accept", "")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Neutralise text a spreadsheet would run as a formula (OWASP "CSV injection")."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_response(
    rows: list[dict[str, Any]], filename: str, header: list[str] | None = None
) -> Response:
    """Render rows as a CSV download.

    Args:
        rows: one mapping per line; the header is the first row's keys, or ``header``
            when there are no rows (an empty report still has its header line).
        filename: suggested download name.
        header: column names for an empty report.
    """
    buf = io.StringIO()
    fieldnames = list(rows[0].keys()) if rows else list(header or [])
    if fieldnames:
        writer = csv.DictWriter(buf, fieldnames=fieldnames, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def render(request: Request, report: Any, filename: str) -> Any:
    """Return ``report`` as JSON, or its ``rows()`` as CSV when asked."""
    if wants_csv(request):
        return csv_response(report.rows(), filename, _header_of(report))
    return report


def _header_of(report: Any) -> list[str]:
    """Column names of a report's CSV when it has no rows (its ``csv_header`` or item fields)."""
    if hasattr(report, "csv_header"):
        return list(report.csv_header())
    field = type(report).model_fields.get("items")
    args = getattr(field.annotation, "__args__", ()) if field else ()
    item = args[0] if args else None
    return list(getattr(item, "model_fields", {}).keys())


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def get_filters(
    request: Request,
    from_: Annotated[
        datetime | date | None,
        Query(alias="from", description="receipt at or after (ISO 8601; local if no offset)"),
    ] = None,
    to: Annotated[datetime | date | None, Query(description="receipt before")] = None,
    channel: Annotated[str | None, Query(description="comma-separated channels")] = None,
    category: Annotated[str | None, Query(description="comma-separated categories")] = None,
    product_line: Annotated[str | None, Query(description="comma-separated product lines")] = None,
    department: Annotated[str | None, Query(description="comma-separated departments")] = None,
    priority: Annotated[str | None, Query(description="comma-separated priorities")] = None,
    region: Annotated[str | None, Query(description="comma-separated regions")] = None,
    branch: Annotated[str | None, Query(description="comma-separated branch codes")] = None,
) -> reports.Filters:
    """Build the report filters from the query string.

    Raises:
        reports.InvalidReportQuery: ``from`` is not before ``to`` (422 problem).
    """
    tz = request.app.state.settings.timezone
    for name, given, known in (
        ("channel", _split(channel), CHANNELS),
        ("priority", _split(priority), ("P1", "P2", "P3", "P4")),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise reports.InvalidReportQuery(
                f"unknown {name} value(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
    values = {
        "channel": _split(channel),
        "category": _split(category),
        "product_line": _split(product_line),
        "department": _split(department),
        "priority": _split(priority),
        "region": _split(region),
        "branch": _split(branch),
    }
    return reports.Filters(
        from_=reports.aware(from_, tz),
        to=reports.aware(to, tz),
        values={k: v for k, v in values.items() if v},
        tz=tz,
    )


FiltersDep = Annotated[reports.Filters, Depends(get_filters)]


@router.get(
    "/complaints/trend",
    response_model=reports.TrendReport,
    summary="Complaint counts by day, ISO week or month",
    responses=CSV,
)
async def complaint_trend(
    request: Request,
    session: SessionDep,
    _: Analyst,
    filters: FiltersDep,
    granularity: reports.Granularity = "day",
    by: reports.Dimension | None = None,
) -> Any:
    """Count complaints received per period in the bank's time zone (weeks are ISO weeks)."""
    async with reports.snapshot(session):
        report = await reports.trend(
            session=session, filters=filters, granularity=granularity, by=by
        )
    return render(request, report, f"complaint-trend-{granularity}.csv")


@router.get(
    "/complaints/types",
    response_model=reports.TypesReport,
    summary="Complaint type share",
    responses=CSV,
)
async def complaint_types(
    request: Request,
    session: SessionDep,
    _: Analyst,
    filters: FiltersDep,
    dimension: reports.Dimension = "category",
) -> Any:
    """Return complaints received in [from, to) by category with their shares (0..1)."""
    async with reports.snapshot(session):
        report = await reports.types(session=session, filters=filters, dimension=dimension)
    return render(request, report, "complaint-types.csv")


@router.get(
    "/complaints/handling",
    response_model=reports.HandlingReport,
    summary="Handling effect: on-time rates, resolution time, reopens, remedies, satisfaction",
    responses=CSV,
)
async def complaint_handling(
    request: Request, session: SessionDep, _: Analyst, filters: FiltersDep
) -> Any:
    """Return the handling effect of the complaints received in [from, to)."""
    async with reports.snapshot(session):
        report = await reports.handling(session=session, filters=filters)
    return render(request, report, "complaint-handling.csv")


@router.get(
    "/complaints/spikes",
    response_model=reports.SpikesReport,
    summary="Categories or branches far above their own recent daily baseline",
    responses=CSV,
)
async def complaint_spikes(
    request: Request,
    session: SessionDep,
    _: Analyst,
    filters: FiltersDep,
    dimension: reports.SpikeDimension = "category",
    day: Annotated[date | None, Query(description="local day; default today")] = None,
    window_days: Annotated[int, Query(ge=7, le=365)] = 28,
    min_ratio: Annotated[float, Query(ge=1.0)] = 2.0,
    min_z: Annotated[float, Query(ge=0.0)] = 3.0,
    min_count: Annotated[int, Query(ge=1)] = 5,
) -> Any:
    """Return the values of ``dimension`` whose count on ``day`` is a spike."""
    if day is None:
        day = datetime.now(ZoneInfo(filters.tz)).date()
    async with reports.snapshot(session):
        report = await reports.spikes(
            session=session,
            filters=filters,
            dimension=dimension,
            day=day,
            window_days=window_days,
            min_ratio=min_ratio,
            min_z=min_z,
            min_count=min_count,
        )
    return render(request, report, "complaint-spikes.csv")


@router.get(
    "/complaints/repeats",
    response_model=reports.RepeatsReport,
    summary="Repeat complaints: customers who complained more than once",
    responses=CSV,
)
async def complaint_repeats(
    request: Request,
    session: SessionDep,
    _: Analyst,
    filters: FiltersDep,
    min_complaints: Annotated[int, Query(ge=2, le=100)] = 2,
) -> Any:
    """Return repeat complainants among the complaints received in [from, to)."""
    async with reports.snapshot(session):
        report = await reports.repeats(
            session=session, filters=filters, min_complaints=min_complaints
        )
    return render(request, report, "complaint-repeats.csv")


@router.get(
    "/cross",
    response_model=reports.CrossReport,
    summary="Cross analysis: two dimensions as rows and columns",
    responses=CSV,
)
async def cross_analysis(
    request: Request,
    session: SessionDep,
    _: Analyst,
    filters: FiltersDep,
    rows: reports.Dimension,
    cols: reports.Dimension,
) -> Any:
    """Return complaint counts and on-time rates for every (rows, cols) pair."""
    async with reports.snapshot(session):
        report = await reports.cross(session=session, filters=filters, rows=rows, cols=cols)
    return render(request, report, f"cross-{rows}-{cols}.csv")


@router.get(
    "/suggestions",
    response_model=reports.SuggestionsReport,
    summary="Suggestions: count, participation, screening, adoption, implementation, rewards",
    responses=CSV,
)
async def suggestion_report(
    request: Request,
    session: SessionDep,
    _: Analyst,
    filters: FiltersDep,
) -> Any:
    """Return suggestion figures for suggestions received in [from, to).

    Filters ``channel``, ``category``, ``department`` and ``branch`` apply; the others are
    complaint dimensions and are refused (422).
    """
    unsupported = set(filters.values) - {"channel", "category", "department", "branch"}
    if unsupported:
        raise reports.InvalidReportQuery(
            f"filter(s) not available for suggestions: {', '.join(sorted(unsupported))}"
        )
    async with reports.snapshot(session):
        report = await reports.suggestions(
            session=session, from_=filters.from_, to=filters.to, values=filters.values
        )
    return render(request, report, "suggestions.csv")
