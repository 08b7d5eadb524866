"""The plan's reports, computed from the read model.

Sources: plan §7.3 (complaint and suggestion analysis), §2.3 (statistics, cross analysis,
trends), §10.2 (satisfaction).

Each report is a function ``report(*, session, ...)`` that returns a pydantic model; the
HTTP layer (``api/routes.py``) renders it as JSON or, on ``Accept: text/csv``, as the CSV
rows of :meth:`rows`. Complaints count from their receipt: a complaint is in a period when
its ``received_at`` is, and its day, ISO week and month are those of ``received_day`` (the
receipt's local day in the bank's time zone). Rates are 0..1 and None when the denominator
is 0; times are in seconds, hours or working days as their names say; amounts in minor
units.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    Text,
    and_,
    cast,
    func,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.analytics import tables
from shared.errors import AppError

f = tables.complaint_fact
s = tables.suggestion_fact

Granularity = Literal["day", "week", "month"]
Dimension = Literal[
    "channel",
    "category",
    "product_line",
    "department",
    "priority",
    "region",
    "branch",
    "status",
    "remedy",
    "responsibility",
    "day",
    "week",
    "month",
]
SpikeDimension = Literal["category", "branch", "region", "channel", "department"]


class InvalidReportQuery(AppError):
    """The report's parameters contradict each other (e.g. ``from`` after ``to``)."""

    code = "invalid_report_query"
    status = 422
    title = "Invalid report query"


def _unknown(col: ColumnElement[Any]) -> ColumnElement[Any]:
    # A literal, not a bound parameter: GROUP BY must repeat the SELECT expression exactly.
    return func.coalesce(col, literal_column("'unknown'"))


#: Dimension name -> SQL expression on ``complaint_fact`` (NULL shown as ``unknown``; an
#: unrouted complaint's category is ``unclassified``).
DIMENSIONS: dict[str, ColumnElement[Any]] = {
    "channel": _unknown(f.c.channel),
    "category": func.coalesce(f.c.category, literal_column("'unclassified'")),
    "product_line": _unknown(f.c.product_line),
    "department": _unknown(f.c.department),
    "priority": _unknown(f.c.priority),
    "region": _unknown(f.c.region),
    "branch": _unknown(f.c.branch_code),
    "status": _unknown(f.c.status),
    "remedy": _unknown(f.c.remedy),
    "responsibility": _unknown(f.c.responsibility),
    "day": func.to_char(f.c.received_day, literal_column("'YYYY-MM-DD'")),
    "week": func.to_char(f.c.received_day, literal_column("'IYYY-\"W\"IW'")),
    "month": func.to_char(f.c.received_day, literal_column("'YYYY-MM'")),
}

_FACTS_ONLY: ContextVar[bool] = ContextVar("facts_only", default=False)


@contextmanager
def facts_only() -> Iterator[None]:
    """Within the block, trend, types and cross analysis read only ``complaint_fact``.

    The fact pass is the reference the summaries and the split of a range into whole and
    edge days are tested against (a slower, independent path to the same figures).
    """
    token = _FACTS_ONLY.set(True)
    try:
        yield
    finally:
        _FACTS_ONLY.reset(token)


#: Filter name -> column it restricts (values compared verbatim).
FILTER_COLUMNS = {
    "channel": f.c.channel,
    "category": f.c.category,
    "product_line": f.c.product_line,
    "department": f.c.department,
    "priority": f.c.priority,
    "region": f.c.region,
    "branch": f.c.branch_code,
}


def _midnight(local: datetime) -> bool:
    return local.timetz().replace(tzinfo=None) == time(0)


@dataclass(frozen=True)
class EdgeDay:
    """A local receipt day only partly inside a report's range.

    Attributes:
        day: the local receipt day.
        from_: receipts at or after this instant (aware); None = from the day's start.
        to: receipts before this instant (aware); None = to the day's end.
    """

    day: date
    from_: datetime | None
    to: datetime | None

    def where(self) -> ColumnElement[bool]:
        """Return the condition on ``complaint_fact`` (the day's index bound, the instants)."""
        conds: list[ColumnElement[bool]] = [f.c.received_day == self.day]
        if self.from_ is not None:
            conds.append(f.c.received_at >= self.from_)
        if self.to is not None:
            conds.append(f.c.received_at < self.to)
        return and_(*conds)

    def sql(self, i: int) -> tuple[str, dict[str, Any]]:
        """Return the condition on ``complaint_fact`` and its parameters (names end in ``i``)."""
        conds, params = [f"received_day = :e{i}d"], {f"e{i}d": self.day}
        if self.from_ is not None:
            conds.append(f"received_at >= :e{i}f")
            params[f"e{i}f"] = self.from_
        if self.to is not None:
            conds.append(f"received_at < :e{i}t")
            params[f"e{i}t"] = self.to
        return "(" + " AND ".join(conds) + ")", params


@dataclass(frozen=True)
class DayStrip:
    """Whole local receipt days ``first..last`` (inclusive) read from the facts.

    The days of a partial month at an end of a range whose whole months are read from
    month summaries (:func:`_month_split`).
    """

    first: date
    last: date

    def sql(self, i: int) -> tuple[str, dict[str, Any]]:
        """Return the condition on ``complaint_fact`` and its parameters (names end in ``i``)."""
        cond = f"(received_day >= :s{i}a AND received_day <= :s{i}b)"
        return cond, {f"s{i}a": self.first, f"s{i}b": self.last}


def _values_sql(
    slices: Sequence[tuple[str, tuple[str, ...]]],
) -> tuple[list[str], dict[str, Any]]:
    """The conditions on ``complaint_fact`` of value filters ``(dimension, values)``.

    Returns:
        ``(conditions, parameters)``: ``<column> = ANY(:v<i>)`` per filter, values bound.
    """
    conds = [f"{tables.DIM_SUMMARY_COLUMNS[dim]} = ANY(:v{i})" for i, (dim, _) in enumerate(slices)]
    return conds, {f"v{i}": list(accepted) for i, (_, accepted) in enumerate(slices)}


def _edges_sql(edges: Sequence[EdgeDay | DayStrip]) -> tuple[str, dict[str, Any]]:
    """Return ``(cond OR cond ...)`` for the edge days (or day strips) and the parameters."""
    parts, params = [], {}
    for i, e in enumerate(edges):
        cond, p = e.sql(i)
        parts.append(cond)
        params.update(p)
    return "(" + " OR ".join(parts) + ")", params


@dataclass(frozen=True)
class Filters:
    """Which complaints a report covers.

    Attributes:
        from_: receipt instant at or after this (aware); None = no lower bound.
        to: receipt instant before this (aware); None = no upper bound.
        values: filter name (:data:`FILTER_COLUMNS`) -> accepted values (any of them).
        tz: the bank's time zone (IANA), used to bound ``received_day`` for the index.
    """

    from_: datetime | None = None
    to: datetime | None = None
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tz: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        """Check the range and the filter names.

        Raises:
            InvalidReportQuery: ``from`` is not before ``to``, or a filter name is unknown.
        """
        if self.from_ and self.to and self.from_ >= self.to:
            raise InvalidReportQuery("'from' must be before 'to'")
        unknown = set(self.values) - set(FILTER_COLUMNS)
        if unknown:
            raise InvalidReportQuery(f"unknown filter(s): {', '.join(sorted(unknown))}")

    def where(self) -> list[ColumnElement[bool]]:
        """Return the SQL conditions on ``complaint_fact`` (receipt known, range, values)."""
        conds: list[ColumnElement[bool]] = [f.c.received_day.is_not(None)]
        zone = ZoneInfo(self.tz)
        # The day bounds let the planner use the day indexes. At a local midnight the day
        # bound alone is exact (``received_day`` is the receipt's day in this zone), so the
        # instant is not compared and index-only scans stay possible.
        if self.from_ is not None:
            local = self.from_.astimezone(zone)
            conds.append(f.c.received_day >= local.date())
            if not _midnight(local):
                conds.append(f.c.received_at >= self.from_)
        if self.to is not None:
            local = self.to.astimezone(zone)
            if _midnight(local):
                conds.append(f.c.received_day < local.date())
            else:
                conds.append(f.c.received_at < self.to)
                conds.append(f.c.received_day <= local.date())
        for name, accepted in self.values.items():
            if accepted:
                conds.append(FILTER_COLUMNS[name].in_(accepted))
        return conds

    def day_range(self) -> tuple[date | None, date | None] | None:
        """Return the range as local receipt days ``(first, last)`` (inclusive, None = open).

        Returns None when ``from`` or ``to`` is not a local midnight: only whole days can be
        read from the daily summaries (``received_at >= midnight of D`` is exactly
        ``received_day >= D`` because ``received_day`` is the receipt's day in this zone).
        """
        zone = ZoneInfo(self.tz)
        bounds: list[date | None] = []
        for instant, shift in ((self.from_, 0), (self.to, -1)):
            if instant is None:
                bounds.append(None)
                continue
            local = instant.astimezone(zone)
            if not _midnight(local):
                return None
            bounds.append(local.date() + timedelta(days=shift))
        return bounds[0], bounds[1]

    def split_days(self) -> tuple[tuple[date | None, date | None], list[EdgeDay]]:
        """Split the range into whole local days and at most two partial edge days.

        Returns:
            ``((first, last), edges)``: the whole days ``first..last`` (inclusive, None =
            open; empty when ``first > last``) and the partial days, each with its instant
            bounds. ``received_day`` is the receipt's local day, so ``received_day = D``
            with the instant bounds is exactly the part of day D inside the range.
        """
        zone = ZoneInfo(self.tz)
        first: date | None = None
        last: date | None = None
        lo: EdgeDay | None = None
        hi: EdgeDay | None = None
        if self.from_ is not None:
            local = self.from_.astimezone(zone)
            first = local.date()
            if not _midnight(local):
                first += timedelta(days=1)
                lo = EdgeDay(local.date(), self.from_, None)
        if self.to is not None:
            local = self.to.astimezone(zone)
            last = local.date() - timedelta(days=1)
            if not _midnight(local):
                hi = EdgeDay(local.date(), None, self.to)
        if lo is not None and hi is not None and lo.day == hi.day:
            return (first, last), [EdgeDay(lo.day, lo.from_, hi.to)]
        return (first, last), [e for e in (lo, hi) if e is not None]

    def whole_days(self) -> tuple[Filters | None, list[EdgeDay]]:
        """Split the range into its whole local days and the partial days at its ends.

        A report over a range that starts or ends inside a day sums its rows over the whole
        days (from the summaries, or index-only from the facts: the whole days need no
        ``received_at``) and the rows of the edge days, read from the facts through the day
        index (:meth:`split_days`; docs/analytics.md, sixteenth round).

        Returns:
            ``(whole, edges)``: ``whole`` = these filters over the whole days only (local
            midnight bounds, an open bound stays open), None when the range holds no whole
            day; ``edges`` = at most two partial days.
        """
        (first, last), edges = self.split_days()
        if first is not None and last is not None and first > last:
            return None, edges
        zone = ZoneInfo(self.tz)
        whole = replace(
            self,
            from_=None if first is None else datetime.combine(first, time(0), zone),
            to=None if last is None else datetime.combine(last + timedelta(days=1), time(0), zone),
        )
        return whole, edges

    def edge_where(self, edges: Sequence[EdgeDay]) -> list[ColumnElement[bool]]:
        """Return the conditions on ``complaint_fact`` of ``edges`` with these value filters."""
        conds = [or_(*[e.where() for e in edges])]
        conds += [FILTER_COLUMNS[name].in_(v) for name, v in self.values.items() if v]
        return conds

    def summary_where(self, table: Any) -> list[ColumnElement[bool]] | None:
        """Return the conditions on a daily summary ``table``, or None when it cannot serve.

        Args:
            table: a summary table with a ``day`` column and the filter columns it has.

        Returns:
            Conditions equivalent to :meth:`where` on the facts, or None when the range is
            not whole days or a value filter has no column in ``table``.
        """
        days = self.day_range()
        if days is None:
            return None
        conds: list[ColumnElement[bool]] = []
        if days[0] is not None:
            conds.append(table.c.day >= days[0])
        if days[1] is not None:
            conds.append(table.c.day <= days[1])
        for name, accepted in self.values.items():
            if not accepted:
                continue
            column = SUMMARY_FILTER_COLUMNS.get(name)
            if column is None or column not in table.c:
                return None
            conds.append(table.c[column].in_(accepted))
        return conds


#: Filter name -> column of ``complaint_day_dims`` (the other filters need the facts).
SUMMARY_FILTER_COLUMNS = {
    "channel": "channel",
    "category": "category",
    "department": "department",
    "priority": "priority",
}

sd = tables.complaint_day_dims
#: Dimensions ``complaint_day_dims`` can group by (same values as :data:`DIMENSIONS`).
SUMMARY_DIMENSIONS: dict[str, ColumnElement[Any]] = {
    "channel": _unknown(sd.c.channel),
    "category": func.coalesce(sd.c.category, literal_column("'unclassified'")),
    "department": _unknown(sd.c.department),
    "priority": _unknown(sd.c.priority),
    "day": func.to_char(sd.c.day, literal_column("'YYYY-MM-DD'")),
    "week": func.to_char(sd.c.day, literal_column("'IYYY-\"W\"IW'")),
    "month": func.to_char(sd.c.day, literal_column("'YYYY-MM'")),
}


dt = tables.complaint_day_dim_totals

#: PostgreSQL settings of analytics' connections (``ServiceSpec.db_server_settings``, and the
#: report benchmark's). asyncpg prepares each report statement once per connection and runs
#: it with the values as parameters; from the sixth run PostgreSQL may switch to a generic
#: plan made without the values, which misjudges skewed keys (a pair's or a dimension's share
#: of the summary rows) and reads far more rows: the monthly trend by branch from the pair
#: cells took 64 ms with the generic plan against 14 ms with the value in the plan, on the
#: bench's 1,000,000 complaints. Planning every run costs well under a millisecond.
DB_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def _dim_totals_source(
    filters: Filters, by: str | None
) -> tuple[str, list[ColumnElement[bool]]] | None:
    """Which rows of ``complaint_day_dim_totals`` (0006/0007) answer a count by ``by``.

    The per-dimension totals hold, per local receipt day, dimension and value, the complaints
    and resolution clocks of that value: a count with a value filter on one of the seven
    dimensions (:data:`tables.DIM_SUMMARY_DIMENSIONS`), or grouped by one of them without a
    filter, or both on the same dimension, is a sum of its rows (exact: the rows are kept by
    the trigger in the writing transaction).

    Args:
        filters: the report's filters (whole local days only).
        by: the dimension the counts are grouped by besides the day (None = none).

    Returns:
        ``(dim, conditions)`` on ``complaint_day_dim_totals``, or None when these rows cannot
        serve (a range inside a day, filters on two dimensions, a filter on one dimension
        with a grouping by another, a dimension outside the seven).
    """
    days = filters.day_range()
    if days is None:
        return None
    active = {name: accepted for name, accepted in filters.values.items() if accepted}
    if len(active) > 1:
        return None
    dim = next(iter(active), by)
    if dim is None or dim not in tables.DIM_SUMMARY_DIMENSIONS or by not in (None, dim):
        return None
    conds: list[ColumnElement[bool]] = [dt.c.dim == dim]
    if active:
        conds.append(dt.c.value.in_(active[dim]))
    if days[0] is not None:
        conds.append(dt.c.day >= days[0])
    if days[1] is not None:
        conds.append(dt.c.day <= days[1])
    return dim, conds


def _dim_totals_value(dim: str) -> ColumnElement[Any]:
    """The label of ``complaint_day_dim_totals.value`` for ``dim`` (as in :data:`DIMENSIONS`)."""
    missing = "'unclassified'" if dim == "category" else "'unknown'"
    return func.coalesce(dt.c.value, literal_column(missing))


def _int_sum(col: ColumnElement[Any]) -> ColumnElement[Any]:
    return cast(func.coalesce(func.sum(col), 0), BigInteger)


def aware(value: datetime | date | None, tz: str) -> datetime | None:
    """Return ``value`` as an aware instant: naive times and bare dates are local to ``tz``."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value


def _rate(num: int | float | None, den: int | float | None) -> float | None:
    if not den:
        return None
    return round(float(num or 0) / float(den), 4)


def _r(value: Any, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def _mean(total: float | None, n: int, scale: int = 1) -> float | None:
    """``total / n / scale`` rounded like :func:`_r`, or None when ``n`` is 0.

    The paths of a report sum the same values in different orders and types (``float8``
    over the facts, ``numeric`` in the summary tables), so their sums may differ in the last
    bits; a mean on a rounding tie (109.515 hours, common with whole seconds) would then
    round up on one path and down on the other. The quotient is first rounded to 9 decimals,
    which removes that noise (1e-13 relative), and then to 2; a mean within 5e-10 below a
    half (0.0049999999996) therefore shows rounded up (0.01).
    """
    if not n:
        return None
    return _r(round(float(total or 0) / n / scale, 9))


# --- trend and types -----------------------------------------------------------------------


class TrendPoint(BaseModel):
    """Complaints received in one period (and one value of ``by`` when asked)."""

    period: str
    period_start: date
    by: str | None = None
    count: int


class TrendReport(BaseModel):
    """``GET /v1/reports/complaints/trend``."""

    granularity: Granularity
    by: Dimension | None
    total: int
    items: list[TrendPoint]

    def rows(self) -> list[dict[str, Any]]:
        """CSV rows."""
        return [i.model_dump() for i in self.items]


async def trend(
    *,
    session: AsyncSession,
    filters: Filters,
    granularity: Granularity = "day",
    by: Dimension | None = None,
) -> TrendReport:
    """Count complaints per day, ISO week (Monday start, ``2026-W05``) or month, local time.

    Args:
        session: a session.
        filters: which complaints.
        granularity: ``day``, ``week`` or ``month``.
        by: optional second dimension (one series per value).

    Returns:
        Periods in ascending order; periods without complaints are omitted.

    Sources: :func:`_trend_rows` (summaries, month cells or the facts; edge days of a
    range starting or ending inside a day from the facts).
    """
    # Count per day first (in index order, an index-only scan of complaint_fact_dims_idx
    # when ``by`` is one of its columns), then roll days up into weeks or months.
    per_day = _trend_rows(filters, granularity, by)
    day = per_day.c.day
    # The label is a function of the period's start (the Monday's ISO week is the week's),
    # so it is computed once per period, not per day; the day is truncated as a timestamp
    # without time zone (no time-zone conversion per row; same dates).
    if granularity == "day":
        start: ColumnElement[Any] = day
        label: ColumnElement[Any] = func.to_char(start, literal_column("'YYYY-MM-DD'"))
    elif granularity == "week":
        start = cast(func.date_trunc(literal_column("'week'"), cast(day, DateTime())), Date)
        label = func.to_char(start, literal_column("'IYYY-\"W\"IW'"))
    else:
        start = cast(func.date_trunc(literal_column("'month'"), cast(day, DateTime())), Date)
        label = func.to_char(start, literal_column("'YYYY-MM'"))
    cols = [start.label("start"), label.label("period")]
    group: list[Any] = [start]
    if by is not None:
        cols.append(per_day.c.by)
        group.append(per_day.c.by)
    query = select(*cols, func.sum(per_day.c.n).label("n")).group_by(*group).order_by(*group)
    rows = (await session.execute(query)).all()
    items = [
        TrendPoint(
            period=r.period,
            period_start=r.start,
            by=r.by if by is not None else None,
            count=int(r.n),
        )
        for r in rows
    ]
    return TrendReport(
        granularity=granularity, by=by, total=sum(i.count for i in items), items=items
    )


def _trend_rows(filters: Filters, granularity: Granularity, by: Dimension | None) -> Any:
    """The trend's counts as a subquery of rows ``(day, by, n)`` (``by`` only when asked).

    ``day`` is a local receipt day, or a month's first day for rows from month cells; the
    caller sums the rows per period. A range that starts or ends inside a day is its whole
    days (this function again) plus the edge days' rows from the facts
    (:meth:`Filters.whole_days`).
    """
    if _FACTS_ONLY.get():
        return _trend_facts(filters.where(), by)
    if filters.day_range() is None:
        whole, edges = filters.whole_days()
        parts: list[Any] = [select(*_trend_facts(filters.edge_where(edges), by).c)]
        if whole is not None:
            inner = _trend_rows(whole, granularity, by)
            parts.append(select(*inner.c))
        return union_all(*parts).subquery()
    summary = filters.summary_where(sd)
    dim_source = _dim_totals_source(filters, by)
    month_cells = _trend_month_cells(filters, granularity, by)
    active = any(accepted for accepted in filters.values.values())
    if summary is not None and (by is None or by in SUMMARY_DIMENSIONS):
        # Whole days and summary dimensions only: read complaint_day_dims.
        inner_cols: list[Any] = [sd.c.day.label("day")]
        if by is not None:
            inner_cols.append(SUMMARY_DIMENSIONS[by].label("by"))
        per_day = (
            select(*inner_cols, func.sum(sd.c.n).label("n"))
            .where(*summary)
            .group_by(*inner_cols)
            .subquery()
        )
    elif month_cells is not None and (dim_source is None or not active):
        # Months by product line, region or branch: whole months from the pair cells (0012),
        # the partial edge months' days from the per-dimension totals; with value filters on
        # the six cell dimensions, whole months from the cell months (0015), edge months'
        # days from the facts. One filter alone, ungrouped or grouped by its own dimension,
        # keeps the per-dimension totals (fewer rows).
        per_day = month_cells
    elif dim_source is not None:
        # Whole days, one filter or grouping dimension (product line, region, branch ...):
        # the per-dimension totals (0006/0007), index-only through 0009's covering index.
        # One row per (day, dim, value) (unique key): no grouping per day needed.
        dim, conds = dim_source
        inner_cols = [dt.c.day.label("day")]
        if by is not None:
            inner_cols.append(_dim_totals_value(dim).label("by"))
        per_day = select(*inner_cols, dt.c.n.label("n")).where(*conds).subquery()
    else:
        per_day = _trend_facts(filters.where(), by)
    return per_day


def _trend_facts(where: Sequence[ColumnElement[bool]], by: str | None) -> Any:
    """Rows ``(day, by, n)`` counted from the facts meeting ``where``, as a subquery."""
    cols: list[Any] = [f.c.received_day.label("day")]
    if by is not None:
        cols.append(DIMENSIONS[by].label("by"))
    return select(*cols, func.count().label("n")).where(*where).group_by(*cols).subquery()


class TypeShare(BaseModel):
    """Count and share (0..1) of one value (``unclassified`` until routed)."""

    category: str
    count: int
    share: float


class TypesReport(BaseModel):
    """``GET /v1/reports/complaints/types``: the type share of complaints received."""

    model_config = ConfigDict(populate_by_name=True)

    total: int
    dimension: str = "category"
    from_: datetime | None = Field(None, alias="from")
    to: datetime | None = None
    items: list[TypeShare]

    def rows(self) -> list[dict[str, Any]]:
        """CSV rows; the first column is named after the dimension (category, channel ...)."""
        return [
            {self.dimension: i.category, "count": i.count, "share": i.share} for i in self.items
        ]

    def csv_header(self) -> list[str]:
        """CSV columns, also for an empty report."""
        return [self.dimension, "count", "share"]


async def types(
    *, session: AsyncSession, filters: Filters, dimension: Dimension = "category"
) -> TypesReport:
    """Count complaints by category (or another dimension) with shares, largest first."""
    if filters.day_range() is None and not _FACTS_ONLY.get():
        # A range starting or ending inside a day: its whole days plus the edge days' rows.
        whole, edges = filters.whole_days()
        dim = DIMENSIONS[dimension]
        parts = [
            select(dim.label("value"), func.count().label("n"))
            .where(*filters.edge_where(edges))
            .group_by(dim)
        ]
        if whole is not None:
            parts.append(_types_query(whole, dimension).order_by(None))
        src = union_all(*parts).subquery()
        n = _int_sum(src.c.n)
        query = select(src.c.value, n.label("n")).group_by(src.c.value)
        query = query.order_by(n.desc(), src.c.value)
    else:
        query = _types_query(filters, dimension)
    rows = (await session.execute(query)).all()
    total = sum(r.n for r in rows)
    items = [
        TypeShare(category=r.value, count=r.n, share=round(r.n / total, 4) if total else 0.0)
        for r in rows
    ]
    return TypesReport(
        total=total, dimension=dimension, from_=filters.from_, to=filters.to, items=items
    )


def _types_query(filters: Filters, dimension: Dimension) -> Any:
    """The query of rows ``(value, n)`` of :func:`types` over whole days or from the facts."""
    summary = None if _FACTS_ONLY.get() else filters.summary_where(sd)
    dim_source = None if _FACTS_ONLY.get() else _dim_totals_source(filters, dimension)
    if summary is not None and dimension in SUMMARY_DIMENSIONS:
        dim = SUMMARY_DIMENSIONS[dimension]
        n: ColumnElement[Any] = _int_sum(sd.c.n)
        where = summary
    elif dim_source is not None:
        # By product line, region or branch (no other filter): the per-dimension totals.
        dim, n, where = _dim_totals_value(dimension), _int_sum(dt.c.n), dim_source[1]
    else:
        dim, n, where = DIMENSIONS[dimension], func.count(), filters.where()
    query = select(dim.label("value"), n.label("n")).where(*where).group_by(dim)
    return query.order_by(n.desc(), dim)


# --- handling effect -------------------------------------------------------------------------


class ClockFigures(BaseModel):
    """One clock: completed clocks, those completed on time, breaches."""

    completed: int
    on_time: int
    on_time_rate: float | None
    breaches: int


class Distribution(BaseModel):
    """Summary of a duration: how many, mean, median and 90th percentile."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None


class RemedyFigures(BaseModel):
    """Final remedies of one kind and the compensation paid with them (minor units)."""

    remedy: str
    count: int
    compensation_minor: int


class Satisfaction(BaseModel):
    """Follow-up visits: answers, mean score (1-5), distribution, unsatisfied share."""

    visits: int
    unreachable: int
    answers: int
    mean_score: float | None
    distribution: dict[str, int]
    unsatisfied: int
    unsatisfied_share: float | None


class HandlingReport(BaseModel):
    """``GET /v1/reports/complaints/handling``: the handling effect of the period's complaints.

    Attributes:
        clocks: per clock (``resolution`` counts every round, ``acknowledgement`` the
            first response); ``regulatory`` has breaches only.
        resolution_working_days / resolution_hours: receipt to resolution of round 1.
        acknowledgement_hours: receipt to the first acknowledgement.
        reopen_rate: reopened complaints / resolved complaints.
    """

    complaints: int
    open: int
    resolved: int
    closed: int
    clocks: dict[str, ClockFigures]
    resolution_working_days: Distribution
    resolution_hours: Distribution
    acknowledgement_hours: Distribution
    reopened: int
    reopen_rate: float | None
    escalations: int
    escalated_complaints: int
    extensions: int
    remedies: list[RemedyFigures]
    compensation_total_minor: int
    satisfaction: Satisfaction

    def rows(self) -> list[dict[str, Any]]:
        """CSV rows: one ``metric,value`` pair per figure."""
        out: list[dict[str, Any]] = []

        def put(metric: str, value: Any) -> None:
            out.append({"metric": metric, "value": value})

        for name in ("complaints", "open", "resolved", "closed"):
            put(name, getattr(self, name))
        for clock, c in self.clocks.items():
            for k, v in c.model_dump().items():
                put(f"clock.{clock}.{k}", v)
        for name in ("resolution_working_days", "resolution_hours", "acknowledgement_hours"):
            for k, v in getattr(self, name).model_dump().items():
                put(f"{name}.{k}", v)
        for name in ("reopened", "reopen_rate", "escalations", "escalated_complaints"):
            put(name, getattr(self, name))
        put("extensions", self.extensions)
        for r in self.remedies:
            put(f"remedy.{r.remedy}.count", r.count)
            put(f"remedy.{r.remedy}.compensation_minor", r.compensation_minor)
        put("compensation_total_minor", self.compensation_total_minor)
        sat = self.satisfaction
        for k, v in sat.model_dump(exclude={"distribution"}).items():
            put(f"satisfaction.{k}", v)
        for score, n in sat.distribution.items():
            put(f"satisfaction.score_{score}", n)
        return out


def _pct(col: ColumnElement[Any], q: float) -> ColumnElement[Any]:
    return func.percentile_cont(q).within_group(col)


async def handling(*, session: AsyncSession, filters: Filters) -> HandlingReport:
    """Compute the handling effect of the complaints received in the filters' range.

    Clock on-time figures count completed clocks only (a clock still running is neither on
    time nor late yet); a clock is on time per tracking's ``on_time`` flag at resolution or
    result notification, and the acknowledgement clock when no breach was reported.
    """
    active = {name: accepted for name, accepted in filters.values.items() if accepted}
    days, edges = filters.split_days()
    pair = tables.pair_summary_key(active) if len(active) == 2 else None
    if not active or (len(active) == 1 and set(active) <= set(tables.DIM_SUMMARY_DIMENSIONS)):
        # Whole days from the summaries (per dimension value with a filter on one of the
        # seven filter dimensions, migrations 0006/0007); partial edge days from the facts.
        m, remedy_rows = await _handling_from_summaries(
            session=session, days=days, edges=edges, slices=list(active.items())
        )
    elif pair is not None and _month_split(*days)[0] is not None:
        # Value filters on two of the six pair dimensions and at least one whole month: the
        # whole months from the pair summaries (0014), the other days from the facts.
        names = pair.split(":")
        m, remedy_rows = await _handling_from_summaries(
            session=session, days=days, edges=edges, slices=[(d, active[d]) for d in names]
        )
    elif (
        len(active) >= 3
        and set(active) <= set(tables.CELL_SUMMARY_DIMENSIONS)
        and _month_split(*days)[0] is not None
    ):
        # Value filters on three or more of the six cell dimensions and at least one whole
        # month: the whole months from the cell summaries (0015), the other days from facts.
        m, remedy_rows = await _handling_from_summaries(
            session=session, days=days, edges=edges, slices=list(active.items())
        )
    else:
        # Value filters on branch and another, or on two or more within one month: the
        # matching fact rows, found in complaint_fact_dims_idx (all seven dimensions, 0007),
        # read once.
        m, remedy_rows = await _handling_from_matches(session=session, filters=filters)
    return _handling_report(m, remedy_rows)


#: Columns of ``complaint_fact`` the handling figures read (:func:`_handling_columns`).
_HANDLING_COLUMNS = (
    "opened_at", "closed_at", "resolved_at", "res_clocks_done", "res_clocks_on_time",
    "ack_clock_done", "ack_clock_on_time", "breaches_resolution", "breaches_acknowledgement",
    "breaches_regulatory", "resolution_working_days", "resolution_seconds", "ack_seconds",
    "reopen_count", "escalation_count", "extension_count", "compensation_minor", "visits_done",
    "visits_unreachable", "visits_unsatisfied", "score_n", "score_sum", "score_1", "score_2",
    "score_3", "score_4", "score_5", "remedy",
)  # fmt: skip


def _handling_columns(src: Any) -> list[ColumnElement[Any]]:
    """The aggregate columns of the handling figures over ``src`` (the facts or a subset).

    Args:
        src: ``complaint_fact`` or a selectable with the columns of :data:`_HANDLING_COLUMNS`.
    """
    c = src.c
    hours = 3600.0
    wd = c.resolution_working_days
    res_h = c.resolution_seconds / hours
    ack_h = c.ack_seconds / hours
    return [
        func.count().label("complaints"),
        func.count().filter(c.opened_at.is_not(None) & c.closed_at.is_(None)).label("open"),
        func.count(c.resolved_at).label("resolved"),
        func.count(c.closed_at).label("closed"),
        func.coalesce(func.sum(c.res_clocks_done), 0).label("res_done"),
        func.coalesce(func.sum(c.res_clocks_on_time), 0).label("res_on_time"),
        func.coalesce(func.sum(c.ack_clock_done), 0).label("ack_done"),
        func.coalesce(func.sum(c.ack_clock_on_time), 0).label("ack_on_time"),
        func.coalesce(func.sum(c.breaches_resolution), 0).label("b_res"),
        func.coalesce(func.sum(c.breaches_acknowledgement), 0).label("b_ack"),
        func.coalesce(func.sum(c.breaches_regulatory), 0).label("b_reg"),
        func.count(wd).label("wd_n"),
        func.sum(wd).label("wd_sum"),
        _pct(wd, 0.5).label("wd_p50"),
        _pct(wd, 0.9).label("wd_p90"),
        func.count(res_h).label("h_n"),
        func.sum(c.resolution_seconds).label("h_sum"),
        _pct(res_h, 0.5).label("h_p50"),
        _pct(res_h, 0.9).label("h_p90"),
        func.count(ack_h).label("a_n"),
        func.sum(c.ack_seconds).label("a_sum"),
        _pct(ack_h, 0.5).label("a_p50"),
        _pct(ack_h, 0.9).label("a_p90"),
        func.count().filter(c.reopen_count > 0).label("reopened"),
        func.coalesce(func.sum(c.escalation_count), 0).label("escalations"),
        func.count().filter(c.escalation_count > 0).label("escalated"),
        func.coalesce(func.sum(c.extension_count), 0).label("extensions"),
        func.coalesce(func.sum(c.compensation_minor), 0).label("compensation"),
        func.coalesce(func.sum(c.visits_done), 0).label("visits"),
        func.coalesce(func.sum(c.visits_unreachable), 0).label("unreachable"),
        func.coalesce(func.sum(c.visits_unsatisfied), 0).label("unsatisfied"),
        func.coalesce(func.sum(c.score_n), 0).label("score_n"),
        func.coalesce(func.sum(c.score_sum), 0).label("score_sum"),
        *[func.coalesce(func.sum(c[f"score_{i}"]), 0).label(f"s{i}") for i in range(1, 6)],
    ]


@asynccontextmanager
async def snapshot(session: AsyncSession) -> AsyncIterator[None]:
    """Run the block in one read-only REPEATABLE READ transaction of ``session``.

    A report may take several statements (the summaries path: totals, histogram, edge days,
    percentile lookups, remedies); under READ COMMITTED a consumer commit between two of
    them could move a value out of a bucket the histogram counted, and a lookup would find
    no row. In one snapshot every statement sees the same model. Read-only: a report never
    writes, and PostgreSQL rejects a write in it.

    Raises:
        sqlalchemy.exc.InvalidRequestError: ``session`` is already in a transaction.
    """
    async with session.begin():
        await session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
        yield


@asynccontextmanager
async def planner_setting(session: AsyncSession, name: str, value: str) -> AsyncIterator[None]:
    """Give the PostgreSQL setting ``name`` the value ``value`` for the block's statements.

    The value it had is put back after the block (``set_config(.., true)``: local to the
    session's transaction, which SQLAlchemy has begun by the first statement), so nothing
    leaks into later statements or other transactions of the connection, also when the
    block raises. When a statement of the block failed in the database (or the task was
    cancelled) nothing is put back: the transaction is aborted, the local value ends with
    it, and a further statement would only raise "current transaction is aborted" in place
    of the real error.

    Args:
        session: the report's session (its transaction holds the setting).
        name: a setting a user may change (``random_page_cost``, ...).
        value: its value in PostgreSQL's text form.

    Raises:
        sqlalchemy.exc.DBAPIError: an unknown setting or an invalid value (nothing changed).
    """
    previous = (
        await session.execute(
            text("SELECT current_setting(:name), set_config(:name, :value, true)"),
            {"name": name, "value": value},
        )
    ).scalar_one()
    try:
        yield
    except (DBAPIError, asyncio.CancelledError):
        raise
    except BaseException:
        await _set_local(session, name, previous)
        raise
    await _set_local(session, name, previous)


async def _set_local(session: AsyncSession, name: str, value: str) -> None:
    await session.execute(
        text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
    )


#: ``random_page_cost`` while the handling figures with value filters on two or more
#: dimensions are planned (:func:`_handling_from_matches`; PostgreSQL's default is 4, the
#: value its documentation suggests for solid-state storage is 1.1). At 4 the planner
#: prices each heap page that the matches found in ``complaint_fact_dims_idx`` (day range
#: and every value checked in the index) need at four sequential reads, and instead reads
#: every complaint of the one value it has an index for (``complaint_fact_category_idx``) and
#: re-checks the day and the other value on each: phone + fees over one year on the
#: benchmark's 1,000,000 complaints visited 42,901 pages for 199,747 rows to keep 34,839
#: (268-287 ms); at 1.1 it takes the 34,839 from the index and visits 24,156 pages (121-150
#: ms; docs/analytics.md, eleventh round). Only this statement: for the summary reads, the
#: other reports, the same value made several of them 10-60 % slower.
MATCHES_RANDOM_PAGE_COST = "1.1"


async def _handling_from_matches(*, session: AsyncSession, filters: Filters) -> tuple[Any, Any]:
    """The handling figures of :func:`_handling_from_facts`, reading the matching rows once.

    The rows matching ``filters`` are read into a MATERIALIZED common table expression (one
    heap visit per row, found through ``complaint_fact_dims_idx`` with every value condition
    checked in the index); the figures and the remedies are aggregated from it in the same
    statement, with the same aggregate expressions as the fact-table computation.

    Returns:
        ``(figures, remedy rows)`` shaped like :func:`_handling_from_facts`'s.
    """
    rows = (
        select(*[f.c[name] for name in _HANDLING_COLUMNS])
        .where(*filters.where())
        .cte("matching")
        .prefix_with("MATERIALIZED")
    )
    by_remedy = (
        select(
            rows.c.remedy,
            func.count().label("n"),
            func.coalesce(func.sum(rows.c.compensation_minor), 0).label("comp"),
        )
        .where(rows.c.remedy.is_not(None))
        .group_by(rows.c.remedy)
        .subquery()
    )
    # Remedies in the fact-table order (most frequent first, then by kind in the database's
    # collation); the amounts travel as text so that JSON keeps every digit.
    remedies = (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_array(
                            by_remedy.c.remedy,
                            cast(by_remedy.c.n, Text),
                            cast(by_remedy.c.comp, Text),
                        ),
                        by_remedy.c.n.desc(),
                        by_remedy.c.remedy,
                    )
                ),
                literal_column("'[]'::json"),
            )
        )
        .scalar_subquery()
        .label("remedies")
    )
    async with planner_setting(session, "random_page_cost", MATCHES_RANDOM_PAGE_COST):
        m = (await session.execute(select(*_handling_columns(rows), remedies))).one()
    remedy_rows = [SimpleNamespace(remedy=r, n=int(n), comp=int(comp)) for r, n, comp in m.remedies]
    return m, remedy_rows


async def _handling_from_facts(*, session: AsyncSession, filters: Filters) -> tuple[Any, Any]:
    """The handling figures read from ``complaint_fact`` (any filter, any instant range)."""
    where = filters.where()
    main = select(*_handling_columns(f)).where(*where)
    m = (await session.execute(main)).one()
    remedy_rows = (
        await session.execute(
            select(
                f.c.remedy,
                func.count().label("n"),
                func.coalesce(func.sum(f.c.compensation_minor), 0).label("comp"),
            )
            .where(*where, f.c.remedy.is_not(None))
            .group_by(f.c.remedy)
            .order_by(func.count().desc(), f.c.remedy)
        )
    ).all()
    return m, remedy_rows


def _handling_report(m: Any, remedy_rows: Any) -> HandlingReport:
    """Build the report from the aggregate row ``m`` and the remedy rows."""
    answered_unsatisfied = m.unsatisfied
    return HandlingReport(
        complaints=m.complaints,
        open=m.open,
        resolved=m.resolved,
        closed=m.closed,
        clocks={
            "resolution": ClockFigures(
                completed=m.res_done,
                on_time=m.res_on_time,
                on_time_rate=_rate(m.res_on_time, m.res_done),
                breaches=m.b_res,
            ),
            "acknowledgement": ClockFigures(
                completed=m.ack_done,
                on_time=m.ack_on_time,
                on_time_rate=_rate(m.ack_on_time, m.ack_done),
                breaches=m.b_ack,
            ),
            "regulatory": ClockFigures(completed=0, on_time=0, on_time_rate=None, breaches=m.b_reg),
        },
        resolution_working_days=Distribution(
            count=m.wd_n, mean=_mean(m.wd_sum, m.wd_n), median=_r(m.wd_p50), p90=_r(m.wd_p90)
        ),
        resolution_hours=Distribution(
            count=m.h_n, mean=_mean(m.h_sum, m.h_n, 3600), median=_r(m.h_p50), p90=_r(m.h_p90)
        ),
        acknowledgement_hours=Distribution(
            count=m.a_n, mean=_mean(m.a_sum, m.a_n, 3600), median=_r(m.a_p50), p90=_r(m.a_p90)
        ),
        reopened=m.reopened,
        reopen_rate=_rate(m.reopened, m.resolved),
        escalations=m.escalations,
        escalated_complaints=m.escalated,
        extensions=m.extensions,
        remedies=[
            RemedyFigures(remedy=r.remedy, count=r.n, compensation_minor=int(r.comp))
            for r in remedy_rows
        ],
        compensation_total_minor=int(m.compensation),
        satisfaction=Satisfaction(
            visits=m.visits,
            unreachable=m.unreachable,
            answers=m.score_n,
            mean_score=_r(m.score_sum / m.score_n if m.score_n else None),
            distribution={str(i): int(getattr(m, f"s{i}")) for i in range(1, 6)},
            unsatisfied=answered_unsatisfied,
            unsatisfied_share=_rate(answered_unsatisfied, m.visits - m.unreachable),
        ),
    )


def _percentile_cont(first: float, second: float, proportion: float) -> float:
    # PostgreSQL's percentile_cont on float8 (orderedsetaggs.c, float8_lerp), bit for bit.
    return first + (proportion * (second - first))


#: Distinct values :func:`_skip_scan` steps over before it hands over to the ordered read.
SKIP_SCAN_STEPS = 32


def _skip_scan(
    column: str, expr: str, in_bucket: list[str], conds: list[str], *, last: bool
) -> str:
    """SQL of the lowest (``last``: highest) value of bucket ``:b`` among rows meeting ``conds``.

    First a skip scan of the bucket index (``(bucket, value, day)``): from the bucket's
    lowest value upwards (highest downwards), one index probe per distinct value checks
    whether that value has a row in the range (``conds``: day bounds, dimension values),
    one more finds the next distinct value. It pays when a few values hold many rows: with
    one value for the whole bucket (acknowledgements sent automatically, or the benchmark's
    synthetic ones at exactly 3 hours), reading the index in value order and filtering
    walks every earlier day's row before the range's first (about 30 ms on 1,000,000
    complaints for a range starting a year back, against under 1 ms here; docs/analytics.md,
    tenth round). With many distinct values (durations to the microsecond) two probes per
    value would cost far more than the ordered read, so after :data:`SKIP_SCAN_STEPS`
    values without a row in the range the ordered read takes over (PostgreSQL evaluates the
    second argument of ``COALESCE`` only when the first is NULL): never more than 64
    probes worse than the ordered read alone.

    Args:
        column: the measure's column (``tables.HIST_MEASURES``).
        expr: the measure's bucket expression (``tables.HIST_MEASURES``).
        in_bucket: the conditions of the bucket index (value and day not null, bucket = :b).
        conds: ``in_bucket`` plus the range's (day bounds, dimension values).
        last: the highest value instead of the lowest.

    Returns:
        A scalar expression (NULL when no row of the bucket meets ``conds``).
    """
    order, step = (" DESC", "<") if last else ("", ">")
    fact = "analytics.complaint_fact"
    where = " AND ".join(in_bucket)
    hit = " AND ".join(conds)
    skip = (
        f"WITH RECURSIVE s(v, hit, k) AS ("
        f"SELECT x.v, EXISTS (SELECT 1 FROM {fact} WHERE {hit} AND {column} = x.v), 1 "
        f"FROM (SELECT {column} AS v FROM {fact} WHERE {where} "
        f"ORDER BY {expr}{order}, {column}{order} LIMIT 1) AS x "
        f"UNION ALL "
        f"SELECT n.v, EXISTS (SELECT 1 FROM {fact} WHERE {hit} AND {column} = n.v), s.k + 1 "
        f"FROM s CROSS JOIN LATERAL (SELECT {column} AS v FROM {fact} WHERE {where} "
        f"AND {column} {step} s.v ORDER BY {expr}{order}, {column}{order} LIMIT 1) AS n "
        f"WHERE NOT s.hit AND s.k < {SKIP_SCAN_STEPS}) "
        f"SELECT v FROM s WHERE hit"
    )
    ordered = (
        f"SELECT {column} FROM {fact} WHERE {hit} ORDER BY {expr}{order}, {column}{order} LIMIT 1"
    )
    return f"COALESCE(({skip}), ({ordered}))"


class _BucketValues:
    """Exact values of one measure's sorted durations, located through the histogram.

    ``complaint_day_hist`` gives how many values of the range fall in each bucket, so the
    bucket of a rank and the rank's offset inside it are known; the value itself is read
    from the fact table through the expression index ``complaint_fact_<measure>_bucket_idx``
    (bucket, value, day): the first and last value of the bucket, and only when they differ,
    the value at the offset. With ``slices`` (one or more ``(dimension, values)``: the
    per-dimension, pair or cell summaries' filter) every lookup carries the value conditions,
    which the bucket indexes answer index-only (the dimensions are INCLUDE columns). The
    lookups read every whole day of ``days`` from the facts (for the pair summaries that
    includes the days outside their whole months: never pass those as ``edges`` too, they
    would count twice); ``edges`` are only the partial edge days, whose rows join the
    bucket's.
    """

    def __init__(
        self,
        session: AsyncSession,
        measure: str,
        days: tuple[date | None, date | None],
        buckets: list[tuple[int, int]],
        scale: float = 1.0,
        edges: list[EdgeDay] | None = None,
        slices: Sequence[tuple[str, tuple[str, ...]]] = (),
    ) -> None:
        self.session = session
        self.scale = scale
        column, expr = tables.HIST_MEASURES[measure]
        in_bucket = [f"{column} IS NOT NULL", "received_day IS NOT NULL", f"{expr} = :b"]
        # The value columns are INCLUDE columns of the bucket index (0006, 0007): the
        # lookups stay index-only.
        value_conds, self.params = _values_sql(slices)
        conds = [*in_bucket, *value_conds]
        value_cond = "".join(f" AND {c}" for c in value_conds)
        if days[0] is not None:
            conds.append("received_day >= :d1")
            self.params["d1"] = days[0]
        if days[1] is not None:
            conds.append("received_day <= :d2")
            self.params["d2"] = days[1]
        base = f"SELECT {column} FROM analytics.complaint_fact WHERE {' AND '.join(conds)}"
        if days[0] is not None and days[1] is not None and days[0] > days[1]:
            # No whole day (a range inside one day, or two adjacent partial days).
            whole_first = whole_last = "CAST(NULL AS double precision)"
        elif days == (None, None):
            whole_first = f"({base} ORDER BY {expr}, {column} LIMIT 1)"
            whole_last = f"({base} ORDER BY {expr} DESC, {column} DESC LIMIT 1)"
        else:
            whole_first = _skip_scan(column, expr, in_bucket, conds, last=False)
            whole_last = _skip_scan(column, expr, in_bucket, conds, last=True)
        if edges:
            # Within one bucket the value order is the (bucket, value) order. The edge days'
            # few rows (received_day index, instant bounds) merge with the whole days' rows
            # (read in order from the expression index).
            edge_cond, edge_params = _edges_sql(edges)
            self.params.update(edge_params)
            # ``+ 0`` keeps the planner off the bucket index for the edge days: through it, a
            # large bucket is walked in value order until the day's first row turns up
            # (6,000 pages, about 30 ms per lookup on 1,000,000 complaints), where the
            # day's own rows (about 1,400) take a millisecond (docs/analytics.md, 8th round).
            edge = (
                f"SELECT {column} FROM analytics.complaint_fact WHERE {column} IS NOT NULL "
                f"AND ({expr}) + 0 = :b AND {edge_cond}{value_cond}"
            )
            # First and last: each part's own end (index order), never a sort of the bucket.
            self.first_sql = text(
                f"SELECT LEAST({whole_first}, ({edge} ORDER BY {column} LIMIT 1))"
            )
            self.last_sql = text(
                f"SELECT GREATEST({whole_last}, ({edge} ORDER BY {column} DESC LIMIT 1))"
            )
            self.at_sql = text(
                f"SELECT v.{column} FROM ({base} UNION ALL {edge}) AS v "
                f"ORDER BY v.{column} OFFSET :o LIMIT 1"
            )
        else:
            self.first_sql = text(f"SELECT {whole_first}")
            self.last_sql = text(f"SELECT {whole_last}")
            self.at_sql = text(f"{base} ORDER BY {expr}, {column} OFFSET :o LIMIT 1")
        self.buckets = buckets
        self.count = sum(n for _, n in buckets)
        self._ends: dict[int, tuple[float, float]] = {}

    async def _one(self, sql: Any, **params: Any) -> float:
        value = (await self.session.execute(sql, {**self.params, **params})).scalar_one()
        # The facts path sorts ``seconds / 3600.0``: divide before the interpolation.
        return float(value) / self.scale if self.scale != 1.0 else float(value)

    async def at(self, rank: int) -> float:
        """Return the value at 0-based ``rank`` of the range's values in ascending order.

        Args:
            rank: 0 <= rank < :attr:`count`.

        Returns:
            The value divided by the scale (e.g. seconds -> hours).
        """
        below, bucket = 0, self.buckets[-1][0]
        for b, n in self.buckets:
            if rank < below + n:
                bucket = b
                break
            below += n
        if bucket not in self._ends:
            self._ends[bucket] = (
                await self._one(self.first_sql, b=bucket),
                await self._one(self.last_sql, b=bucket),
            )
        lo, hi = self._ends[bucket]
        if lo == hi:
            return lo
        return await self._one(self.at_sql, b=bucket, o=rank - below)

    async def percentile(self, q: float) -> float | None:
        """``percentile_cont(q)`` of the range's values; None when there are none."""
        if not self.count:
            return None
        pos = q * (self.count - 1)
        first_row, second_row = math.floor(pos), math.ceil(pos)
        first = await self.at(first_row)
        if first_row == second_row:
            return first
        return _percentile_cont(first, await self.at(second_row), pos - first_row)


#: complaint_day_totals column -> one complaint's contribution (SQL on ``complaint_fact``);
#: the same expressions as migration 0004's trigger.
_TOTALS_SQL = {
    "n": "1",
    "open": "(opened_at IS NOT NULL AND closed_at IS NULL)::int",
    "resolved": "(resolved_at IS NOT NULL)::int",
    "closed": "(closed_at IS NOT NULL)::int",
    "res_done": "res_clocks_done",
    "res_on_time": "res_clocks_on_time",
    "ack_done": "ack_clock_done",
    "ack_on_time": "ack_clock_on_time",
    "b_res": "breaches_resolution",
    "b_ack": "breaches_acknowledgement",
    "b_reg": "breaches_regulatory",
    "wd_n": "(resolution_working_days IS NOT NULL)::int",
    "wd_sum": "COALESCE(resolution_working_days::numeric, 0)",
    "res_n": "(resolution_seconds IS NOT NULL)::int",
    "res_sum": "COALESCE(resolution_seconds::numeric, 0)",
    "ack_n": "(ack_seconds IS NOT NULL)::int",
    "ack_sum": "COALESCE(ack_seconds::numeric, 0)",
    "reopened": "(reopen_count > 0)::int",
    "escalations": "escalation_count",
    "escalated": "(escalation_count > 0)::int",
    "extensions": "extension_count",
    "compensation": "compensation_minor",
    "visits": "visits_done",
    "unreachable": "visits_unreachable",
    "unsatisfied": "visits_unsatisfied",
    "score_n": "score_n",
    "score_sum": "score_sum",
    "s1": "score_1",
    "s2": "score_2",
    "s3": "score_3",
    "s4": "score_4",
    "s5": "score_5",
}


async def _edge_figures(
    session: AsyncSession,
    edges: Sequence[EdgeDay | DayStrip],
    slices: Sequence[tuple[str, tuple[str, ...]]] = (),
) -> tuple[dict[str, Any], dict[str, dict[int, int]], dict[str, tuple[int, int]]]:
    """Summary-shaped figures of days the summaries do not hold, read from ``complaint_fact``.

    Args:
        session: the database session.
        edges: partial edge days and whole-day strips (their union is read).
        slices: ``(dimension, accepted values)`` of the report's value filters.

    Returns:
        ``(totals, buckets, remedies)``: column -> sum (as :data:`_TOTALS_SQL`), measure ->
        bucket -> count, remedy -> (complaints, compensation in minor units).
    """
    cond, params = _edges_sql(edges)
    value_conds, value_params = _values_sql(slices)
    where = " AND ".join(("received_day IS NOT NULL", cond, *value_conds))
    params.update(value_params)
    # One statement: the rows are found once (a MATERIALIZED common table expression) and the
    # totals, the histogram and the remedies are aggregated from them. Three statements, each
    # finding the rows again, took 122 ms for two filters over two nearly whole months of
    # strip on 1,000,000 complaints (docs/analytics.md, fourteenth round).
    cols = ", ".join(f"COALESCE(sum({e}), 0) AS {c}" for c, e in _TOTALS_SQL.items())
    hist = " UNION ALL ".join(
        f"SELECT '{m}' AS measure, {expr} AS bucket, count(*) AS n FROM e "
        f"WHERE {column} IS NOT NULL GROUP BY 2"
        for m, (column, expr) in tables.HIST_MEASURES.items()
    )
    # Counts and amounts travel as text so that JSON keeps every digit.
    sql = (
        f"WITH e AS MATERIALIZED (SELECT {', '.join(_HANDLING_COLUMNS)} "
        f"FROM analytics.complaint_fact WHERE {where}) "
        f"SELECT {cols}, "
        f"(SELECT COALESCE(json_agg(json_build_array(h.measure, h.bucket, h.n::text)), '[]') "
        f"FROM ({hist}) AS h) AS hist_cells, "
        f"(SELECT COALESCE(json_agg(json_build_array(r.remedy, r.n::text, r.comp::text)), '[]') "
        f"FROM (SELECT remedy, count(*) AS n, COALESCE(sum(compensation_minor), 0) AS comp "
        f"FROM e WHERE remedy IS NOT NULL GROUP BY remedy) AS r) AS remedy_cells "
        f"FROM e"
    )
    row = (await session.execute(text(sql), params)).one()
    totals = dict(row._mapping)
    buckets: dict[str, dict[int, int]] = {m: {} for m in tables.HIST_MEASURES}
    for measure, bucket, n in totals.pop("hist_cells"):
        buckets[measure][bucket] = int(n)
    remedies = {remedy: (int(n), int(comp)) for remedy, n, comp in totals.pop("remedy_cells")}
    return totals, buckets, remedies


def _cell_conditions(
    slices: Iterable[tuple[str, tuple[str, ...]]],
) -> list[ColumnElement[bool]]:
    """Conditions on ``complaint_cell``: the cells holding an accepted value of every filter.

    Args:
        slices: ``(dimension, accepted values)`` on :data:`tables.CELL_SUMMARY_DIMENSIONS`.

    Raises:
        KeyError: a dimension without cell summaries (branch).
    """
    k = tables.complaint_cell
    return [k.c[tables.CELL_SUMMARY_DIMENSIONS[d]].in_(v) for d, v in slices]


async def _handling_from_summaries(
    *,
    session: AsyncSession,
    days: tuple[date | None, date | None],
    edges: list[EdgeDay] | None = None,
    slices: Sequence[tuple[str, tuple[str, ...]]] = (),
) -> tuple[Any, Any]:
    """The handling figures from the summaries, without a pass over the matching facts.

    Same figures as :func:`_handling_from_facts`: counts and sums from the totals (means
    from exact ``numeric`` sums, rounded by :func:`_mean`), remedies from the remedy rows,
    medians and p90s exact through :class:`_BucketValues`. Which summaries are read depends
    on ``slices``:

    - none: the daily ``complaint_day_*`` (0004);
    - one filter on one of :data:`tables.DIM_SUMMARY_DIMENSIONS`: the daily per-dimension
      ``complaint_day_dim_*`` (0006, 0007);
    - two, ``(a, b)`` in the order of :data:`tables.PAIR_SUMMARY_DIMENSIONS`: the monthly
      ``complaint_month_pair_*`` (0014) for the whole months of ``days``; the days of the
      partial months at its ends are read from the facts (:func:`_month_split`; at least
      one month must be whole);
    - three or more, on :data:`tables.CELL_SUMMARY_DIMENSIONS`, any order: the monthly
      ``complaint_month_cell_*`` (0015) of the cells (``complaint_cell``) holding accepted
      values of every filter, for the whole months of ``days``; the other days as for two.

    A range that starts or ends inside a day adds the partial edge days read from the
    facts (at most two days' rows) to the whole days ``days`` of the summaries.

    Args:
        session: the database session.
        days: whole local days ``(first, last)``, inclusive, None = open (may be empty).
        edges: the partial days (:meth:`Filters.split_days`).
        slices: ``(dimension, accepted values)`` of the value filters, as above.

    Raises:
        ValueError: two or more slices without a whole month in ``days``; two not in pair
            order or with a dimension that has no pair summaries; three or more with one
            that has no cell summaries (branch).
    """
    edges = edges or []
    fact_parts: list[EdgeDay | DayStrip] = list(edges)
    t, rm, h = tables.complaint_day_totals, tables.complaint_day_remedy, tables.complaint_day_hist
    if len(slices) == 1:
        t, rm, h = (
            tables.complaint_day_dim_totals,
            tables.complaint_day_dim_remedy,
            tables.complaint_day_dim_hist,
        )
    month_from: date | None = None
    month_to: date | None = None
    if len(slices) >= 2:
        months, strips = _month_split(*days)
        if months is None:
            raise ValueError("month summaries need a whole month")
        month_from, month_to = months
        names = [dim for dim, _ in slices]
        if len(slices) == 2:
            if tables.pair_summary_key(names) != ":".join(names):
                raise ValueError(f"no pair summaries for {names} in this order")
            t, rm, h = (
                tables.complaint_month_pair_totals,
                tables.complaint_month_pair_remedy,
                tables.complaint_month_pair_hist,
            )
        else:
            if not set(names) <= set(tables.CELL_SUMMARY_DIMENSIONS):
                raise ValueError(f"no cell summaries for {names}")
            t, rm, h = (
                tables.complaint_month_cell_totals,
                tables.complaint_month_cell_remedy,
                tables.complaint_month_cell_hist,
            )
        fact_parts += [DayStrip(lo, hi) for lo, hi in strips if lo is not None and hi is not None]
    pair = ":".join(dim for dim, _ in slices)

    def in_range(table: Any) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if len(slices) == 1:
            dim, accepted = slices[0]
            conds += [table.c.dim == dim, table.c.value.in_(accepted)]
        elif slices:
            if len(slices) == 2:
                conds += [
                    table.c.pair == pair,
                    table.c.value_a.in_(slices[0][1]),
                    table.c.value_b.in_(slices[1][1]),
                ]
            else:
                cells = select(tables.complaint_cell.c.cell_id).where(*_cell_conditions(slices))
                conds.append(table.c.cell_id.in_(cells))
            if month_from is not None:
                conds.append(table.c.month >= month_from)
            if month_to is not None:
                conds.append(table.c.month < month_to)
            return conds
        if days[0] is not None:
            conds.append(table.c.day >= days[0])
        if days[1] is not None:
            conds.append(table.c.day <= days[1])
        return conds

    sums = [
        cast(func.coalesce(func.sum(t.c[c]), 0),
             t.c[c].type if c in tables.NUMERIC_TOTALS else BigInteger).label(c)
        for c in tables.TOTALS_COLUMNS
    ]  # fmt: skip
    row = (await session.execute(select(*sums).where(*in_range(t)))).one()
    edge_totals, edge_buckets, edge_remedies = (
        await _edge_figures(session, fact_parts, slices) if fact_parts else ({}, {}, {})
    )
    if edge_totals:
        row = SimpleNamespace(  # type: ignore[assignment]  # read by attribute only
            **{c: getattr(row, c) + edge_totals[c] for c in row._fields}
        )
    hist_rows = (
        await session.execute(
            select(h.c.measure, h.c.bucket, _int_sum(h.c.n).label("n"))
            .where(*in_range(h))
            .group_by(h.c.measure, h.c.bucket)
            .order_by(h.c.measure, h.c.bucket)
        )
    ).all()
    buckets: dict[str, list[tuple[int, int]]] = {m: [] for m in tables.HIST_MEASURES}
    for r in hist_rows:
        buckets[r.measure].append((r.bucket, int(r.n)))
    for measure, extra in edge_buckets.items():
        merged = dict(buckets[measure])
        for b, n in extra.items():
            merged[b] = merged.get(b, 0) + n
        buckets[measure] = sorted(merged.items())
    pct: dict[str, tuple[float | None, float | None]] = {}
    for measure, scale in (("wd", 1.0), ("res", 3600.0), ("ack", 3600.0)):
        values = _BucketValues(session, measure, days, buckets[measure], scale, edges, slices)
        pct[measure] = (await values.percentile(0.5), await values.percentile(0.9))

    m = SimpleNamespace(
        complaints=row.n, open=row.open, resolved=row.resolved, closed=row.closed,
        res_done=row.res_done, res_on_time=row.res_on_time, ack_done=row.ack_done,
        ack_on_time=row.ack_on_time, b_res=row.b_res, b_ack=row.b_ack, b_reg=row.b_reg,
        wd_n=row.wd_n, wd_sum=row.wd_sum, wd_p50=pct["wd"][0],
        wd_p90=pct["wd"][1],
        h_n=row.res_n, h_sum=row.res_sum, h_p50=pct["res"][0],
        h_p90=pct["res"][1],
        a_n=row.ack_n, a_sum=row.ack_sum, a_p50=pct["ack"][0],
        a_p90=pct["ack"][1],
        reopened=row.reopened, escalations=row.escalations, escalated=row.escalated,
        extensions=row.extensions, compensation=row.compensation, visits=row.visits,
        unreachable=row.unreachable, unsatisfied=row.unsatisfied, score_n=row.score_n,
        score_sum=row.score_sum, s1=row.s1, s2=row.s2, s3=row.s3, s4=row.s4, s5=row.s5,
    )  # fmt: skip
    remedy_rows = (
        await session.execute(
            select(
                rm.c.remedy,
                _int_sum(rm.c.n).label("n"),
                _int_sum(rm.c.compensation).label("comp"),
            )
            .where(*in_range(rm))
            .group_by(rm.c.remedy)
            .having(func.sum(rm.c.n) > 0)
            .order_by(func.sum(rm.c.n).desc(), rm.c.remedy)
        )
    ).all()
    if not edge_remedies:
        return m, remedy_rows
    by_remedy = {r.remedy: (int(r.n), int(r.comp)) for r in remedy_rows}
    for remedy, (n, comp) in edge_remedies.items():
        n0, comp0 = by_remedy.get(remedy, (0, 0))
        by_remedy[remedy] = (n0 + n, comp0 + comp)
    # Remedy kinds are ASCII identifiers: Python's order is the database's.
    ranked = sorted(by_remedy.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return m, [SimpleNamespace(remedy=k, n=n, comp=comp) for k, (n, comp) in ranked]


# --- cross analysis ---------------------------------------------------------------------------


class CrossCell(BaseModel):
    """One (row, column) pair: complaints and the resolution clock's on-time rate."""

    row: str
    col: str
    count: int
    resolved_clocks: int
    on_time_rate: float | None


class CrossReport(BaseModel):
    """``GET /v1/reports/cross``: any two dimensions as rows and columns."""

    rows_dimension: Dimension
    cols_dimension: Dimension
    total: int
    cells: list[CrossCell]

    def rows(self) -> list[dict[str, Any]]:
        """CSV rows."""
        return [c.model_dump() for c in self.cells]


async def cross(
    *, session: AsyncSession, filters: Filters, rows: Dimension, cols: Dimension
) -> CrossReport:
    """Cross-tabulate complaints by two dimensions, with counts and on-time rates.

    Sources, all exact (the summaries are kept by triggers in the writing transaction):
    ``complaint_day_dims`` for whole local days and two of its four dimensions; the month
    cells per pair of 0012 plus the facts of the partial months at the range's edges for the
    15 other pairs of the seven dimensions (product line, region or branch with any other)
    over whole local days without value filters, and with value filters the monthly cell
    summaries of 0015 likewise (:func:`_cross_cells`); otherwise the facts (index-only
    through the covering index led by a filter's dimension, 0009/0017). A range starting
    or ending inside a day: its whole days from these sources, the edge days' parts from
    the facts (:meth:`Filters.whole_days`).

    Raises:
        InvalidReportQuery: ``rows`` equals ``cols``.
    """
    if rows == cols:
        raise InvalidReportQuery("'rows' and 'cols' must be different dimensions")
    if _FACTS_ONLY.get():
        query = _cross_facts_query(filters.where(), rows, cols)
    elif filters.day_range() is None:
        # A range starting or ending inside a day: its whole days plus the edge days' rows.
        whole, edges = filters.whole_days()
        parts = [_cross_facts_query(filters.edge_where(edges), rows, cols).order_by(None)]
        if whole is not None:
            parts.append(_cross_query(whole, rows, cols).order_by(None))
        src = union_all(*parts).subquery()
        query = (
            select(
                src.c.r,
                src.c.c,
                _int_sum(src.c.n).label("n"),
                _int_sum(src.c.done).label("done"),
                _int_sum(src.c.on_time).label("on_time"),
            )
            .group_by(src.c.r, src.c.c)
            .order_by(src.c.r, src.c.c)
        )
    else:
        query = _cross_query(filters, rows, cols)
    return _cross_report(rows, cols, (await session.execute(query)).all())


def _cross_query(filters: Filters, rows: Dimension, cols: Dimension) -> Any:
    """The query of rows ``(r, c, n, done, on_time)`` of :func:`cross`, in row, column order."""
    summary = filters.summary_where(sd)
    if summary is not None and rows in SUMMARY_DIMENSIONS and cols in SUMMARY_DIMENSIONS:
        rd, cd = SUMMARY_DIMENSIONS[rows], SUMMARY_DIMENSIONS[cols]
        measures = [
            _int_sum(sd.c.n).label("n"),
            _int_sum(sd.c.res_done).label("done"),
            _int_sum(sd.c.res_on_time).label("on_time"),
        ]
        return (
            select(rd.label("r"), cd.label("c"), *measures)
            .where(*summary)
            .group_by(rd, cd)
            .order_by(rd, cd)
        )
    cells_query = _cross_cells(filters, rows, cols)
    if cells_query is not None:
        return cells_query
    return _cross_facts_query(filters.where(), rows, cols)


def _cross_report(rows: Dimension, cols: Dimension, result: Any) -> CrossReport:
    """Build the report from rows ``(r, c, n, done, on_time)`` in row, column order."""
    cells = [
        CrossCell(
            row=r.r,
            col=r.c,
            count=r.n,
            resolved_clocks=r.done,
            on_time_rate=_rate(r.on_time, r.done),
        )
        for r in result
    ]
    return CrossReport(
        rows_dimension=rows, cols_dimension=cols, total=sum(c.count for c in cells), cells=cells
    )


async def _cross_from_facts(
    *, session: AsyncSession, filters: Filters, rows: Dimension, cols: Dimension
) -> CrossReport:
    """Cross analysis as one pass over the facts of the range (any dimensions, any filters).

    For whole days this is an index-only scan of ``complaint_fact_dims_idx`` when both
    dimensions are among its columns (0011 added the resolution clocks to it).
    """
    query = _cross_facts_query(filters.where(), rows, cols)
    return _cross_report(rows, cols, (await session.execute(query)).all())


def _cross_facts_query(where: Sequence[ColumnElement[bool]], rows: str, cols: str) -> Any:
    """Rows ``(r, c, n, done, on_time)`` of the facts meeting ``where``, in row, column order."""
    rd, cd = DIMENSIONS[rows], DIMENSIONS[cols]
    return (
        select(
            rd.label("r"),
            cd.label("c"),
            func.count().label("n"),
            func.coalesce(func.sum(f.c.res_clocks_done), 0).label("done"),
            func.coalesce(func.sum(f.c.res_clocks_on_time), 0).label("on_time"),
        )
        .where(*where)
        .group_by(rd, cd)
        .order_by(rd, cd)
    )


mp = tables.complaint_month_pair


def _month_split(
    first: date | None, last: date | None
) -> tuple[tuple[date | None, date | None] | None, list[tuple[date | None, date | None]]]:
    """Split the local days ``first..last`` (inclusive, None = open) into whole months and edges.

    Returns:
        ``(months, strips)``: ``months`` = ``(from_month, to_month)``, the first days of the
        whole months ``from_month <= month < to_month`` (None = open; None for the pair when
        no month is whole), and ``strips`` = the day ranges ``(first, last)`` (inclusive) of
        the partial months at the edges, at most two. An open bound is a whole month.
    """
    if first is not None and last is not None and first > last:
        return None, []
    lo = first if first is None or first.day == 1 else _next_month(first)
    after = None if last is None else last + timedelta(days=1)
    hi = after if after is None or after.day == 1 else _month_start(after)
    if lo is not None and hi is not None and lo >= hi:
        return None, [(first, last)]
    strips: list[tuple[date | None, date | None]] = []
    if first is not None and lo is not None and first < lo:
        strips.append((first, lo - timedelta(days=1)))
    if last is not None and hi is not None and hi <= last:
        strips.append((hi, last))
    return (lo, hi), strips


#: For a trend by month by one of these dimensions, the pair of :data:`tables.CROSS_PAIRS`
#: whose cells are read (the one with the fewest cells per month on the bench's data: a
#: branch lies in one region) and which side holds the dimension's value.
_TREND_MONTH_PAIRS = {
    "branch": (("region", "branch"), "value_b"),
    "region": (("product_line", "region"), "value_b"),
    "product_line": (("product_line", "region"), "value_a"),
}


def _trend_month_cells(filters: Filters, granularity: str, by: str | None) -> Any | None:
    """Rows ``(day, by, n)`` of a monthly trend by product line, region or branch, or None.

    Serves ``granularity`` month grouped by one of those dimensions over whole local days
    (an open bound included) without value filters: the whole months of the range from the
    month cells of 0012 (``complaint_month_pair``, summed over the pair's other value; ``day``
    is the month's first day), the days of the partial months at its edges from
    ``complaint_day_dim_totals`` (at most two months of day rows). Exact for the same
    reason as :func:`_cross_cells`: every complaint with a receipt day is in one cell of
    every pair, in the month of its local receipt day. Over two years by branch this reads
    about 7,000 cells instead of about 200,000 day rows (docs/analytics.md, eighth round).
    With value filters it hands over to :func:`_trend_month_filtered_cells` (the cell
    months of 0015).

    Returns:
        A subquery with columns ``day``, ``by``, ``n``, or None when the cells cannot serve.
    """
    if granularity != "month":
        return None
    active = {name: accepted for name, accepted in filters.values.items() if accepted}
    if active:
        return _trend_month_filtered_cells(filters, active, by)
    if by not in _TREND_MONTH_PAIRS:
        return None
    days = filters.day_range()
    if days is None:
        return None
    months, strips = _month_split(*days)
    (a, b), side = _TREND_MONTH_PAIRS[by]
    blank: ColumnElement[Any] = literal_column("'unknown'")
    parts: list[Any] = []
    if months is not None:
        value = mp.c[side]
        conds: list[ColumnElement[bool]] = [mp.c.pair == f"{a}:{b}"]
        if months[0] is not None:
            conds.append(mp.c.month >= months[0])
        if months[1] is not None:
            conds.append(mp.c.month < months[1])
        parts.append(
            select(
                mp.c.month.label("day"),
                func.coalesce(value, blank).label("by"),
                func.sum(mp.c.n).label("n"),
            )
            .where(*conds)
            .group_by(mp.c.month, value)
        )
    for lo, hi in strips:
        conds = [dt.c.dim == by]
        if lo is not None:
            conds.append(dt.c.day >= lo)
        if hi is not None:
            conds.append(dt.c.day <= hi)
        parts.append(
            select(dt.c.day.label("day"), _dim_totals_value(by).label("by"), dt.c.n).where(*conds)
        )
    if not parts:
        return None
    # Annotated: mypy 2.4 crashes inferring this conditional (a TypeVarTuple bug).
    query: Any = parts[0] if len(parts) == 1 else union_all(*parts)
    return query.subquery()


def _trend_month_filtered_cells(
    filters: Filters, active: dict[str, tuple[str, ...]], by: str | None
) -> Any | None:
    """Rows ``(day, by, n)`` of a monthly trend with value filters from the cell months.

    Serves value filters and ``by`` (or none) among the six dimensions of the cell summaries
    (0015) over whole local days holding a whole month: the whole months from
    ``complaint_month_cell_totals`` of the cells holding an accepted value of every filter
    (``day`` = the month's first day), the days of the partial months at the edges from the
    facts with the same value conditions. Exact for the same reason as :func:`_cross_cells`.
    Phone or web by region over two years took 259-363 ms from the facts on 1,000,000
    complaints (docs/analytics.md, sixteenth round).

    Returns:
        A subquery with columns ``day``, ``by`` (when asked), ``n``, or None.
    """
    cell_dims = tables.CELL_SUMMARY_DIMENSIONS
    if not set(active) <= set(cell_dims) or (by is not None and by not in cell_dims):
        return None
    days = filters.day_range()
    if days is None:
        return None
    months, strips = _month_split(*days)
    if months is None:
        return None
    k, ct = tables.complaint_cell, tables.complaint_month_cell_totals
    cols: list[Any] = [ct.c.month.label("day")]
    if by is not None:
        blank = "'unclassified'" if by == "category" else "'unknown'"
        cols.append(func.coalesce(k.c[cell_dims[by]], literal_column(blank)).label("by"))
    conds = _cell_conditions(active.items())
    if months[0] is not None:
        conds.append(ct.c.month >= months[0])
    if months[1] is not None:
        conds.append(ct.c.month < months[1])
    parts: list[Any] = [
        select(*cols, _int_sum(ct.c.n).label("n"))
        .select_from(ct.join(k, ct.c.cell_id == k.c.cell_id))
        .where(*conds)
        .group_by(*cols)
    ]
    for lo, hi in strips:
        where: list[ColumnElement[bool]] = [
            FILTER_COLUMNS[name].in_(v) for name, v in active.items()
        ]
        if lo is not None:
            where.append(f.c.received_day >= lo)
        if hi is not None:
            where.append(f.c.received_day <= hi)
        parts.append(select(*_trend_facts(where, by).c))
    return union_all(*parts).subquery()


def _cross_cells(filters: Filters, rows: str, cols: str) -> Any | None:
    """The query of cross analysis from the month cells of 0012, or None when they cannot serve.

    Serves any pair of :data:`tables.CROSS_PAIRS` (product line, region or branch with any
    other of the seven dimensions), either way round, over whole local days (an open bound
    included), without value filters: the whole months of the range are summed from
    ``complaint_month_pair``, the days of the partial months at its edges from
    ``complaint_fact`` (index-only through ``complaint_fact_dims_idx``; at most two months of
    days). Exact: the cells are kept by the trigger in the writing transaction, and the month
    of a complaint is the month of its local receipt day.

    With value filters (since the fourteenth round), when the filters, the rows and the
    columns are all among the six dimensions of the cell summaries (0015) and the range
    holds a whole month: the whole months from ``complaint_month_cell_totals`` of the cells
    holding an accepted value of every filter, grouped by the cells' values, the edge days
    from the facts with the same value conditions.

    Returns:
        A query of rows ``(r, c, n, done, on_time)`` in row, column order (labels as
        :data:`DIMENSIONS`), or None.
    """
    active = {name: accepted for name, accepted in filters.values.items() if accepted}
    cell_dims = tables.CELL_SUMMARY_DIMENSIONS
    if active:
        if not set(active) | {rows, cols} <= set(cell_dims):
            return None
        a, b = rows, cols
    elif (rows, cols) in tables.CROSS_PAIRS:
        a, b = rows, cols
    elif (cols, rows) in tables.CROSS_PAIRS:
        a, b = cols, rows
    else:
        return None
    days = filters.day_range()
    if days is None:
        return None
    months, strips = _month_split(*days)
    if active and months is None:
        return None
    col_a = f.c[tables.CROSS_PAIR_DIMENSIONS[a]]
    col_b = f.c[tables.CROSS_PAIR_DIMENSIONS[b]]
    parts: list[Any] = []
    if months is not None and active:
        k, ct = tables.complaint_cell, tables.complaint_month_cell_totals
        conds: list[ColumnElement[bool]] = _cell_conditions(active.items())
        if months[0] is not None:
            conds.append(ct.c.month >= months[0])
        if months[1] is not None:
            conds.append(ct.c.month < months[1])
        parts.append(
            select(
                k.c[cell_dims[a]].label("va"),
                k.c[cell_dims[b]].label("vb"),
                ct.c.n.label("n"),
                ct.c.res_done.label("done"),
                ct.c.res_on_time.label("on_time"),
            )
            .select_from(ct.join(k, ct.c.cell_id == k.c.cell_id))
            .where(*conds)
        )
    elif months is not None:
        conds = [mp.c.pair == f"{a}:{b}"]
        if months[0] is not None:
            conds.append(mp.c.month >= months[0])
        if months[1] is not None:
            conds.append(mp.c.month < months[1])
        parts.append(
            select(
                mp.c.value_a.label("va"),
                mp.c.value_b.label("vb"),
                mp.c.n.label("n"),
                mp.c.res_done.label("done"),
                mp.c.res_on_time.label("on_time"),
            ).where(*conds)
        )
    for lo, hi in strips:
        conds = [f.c.received_day.is_not(None)]
        conds += [FILTER_COLUMNS[name].in_(v) for name, v in active.items()]
        if lo is not None:
            conds.append(f.c.received_day >= lo)
        if hi is not None:
            conds.append(f.c.received_day <= hi)
        parts.append(
            select(
                col_a.label("va"),
                col_b.label("vb"),
                func.count().label("n"),
                func.sum(f.c.res_clocks_done).label("done"),
                func.sum(f.c.res_clocks_on_time).label("on_time"),
            )
            .where(*conds)
            .group_by(col_a, col_b)
        )
    if not parts:
        return None
    # Annotated: mypy 2.4 crashes inferring this conditional (a TypeVarTuple bug).
    union: Any = parts[0] if len(parts) == 1 else union_all(*parts)
    src = union.subquery()

    def shown(dim: str, value: Any) -> ColumnElement[Any]:
        blank = "'unclassified'" if dim == "category" else "'unknown'"
        return func.coalesce(value, literal_column(blank))

    va, vb = shown(a, src.c.va), shown(b, src.c.vb)
    rd, cd = (va, vb) if rows == a else (vb, va)
    return (
        select(
            rd.label("r"),
            cd.label("c"),
            _int_sum(src.c.n).label("n"),
            _int_sum(src.c.done).label("done"),
            _int_sum(src.c.on_time).label("on_time"),
        )
        .group_by(rd, cd)
        .order_by(rd, cd)
    )


# --- spikes and repeat complaints -----------------------------------------------------------


class Spike(BaseModel):
    """One value whose count on ``day`` is far above its own recent daily baseline.

    Attributes:
        baseline_mean / baseline_stddev: daily counts over the ``window_days`` before
            ``day`` (days without complaints count as 0).
        ratio: count / baseline mean (None when the baseline is 0).
        z: (count - mean) / stddev (None when the stddev is 0).
    """

    value: str
    day: date
    count: int
    baseline_mean: float
    baseline_stddev: float
    ratio: float | None
    z: float | None


class SpikesReport(BaseModel):
    """``GET /v1/reports/complaints/spikes``."""

    dimension: SpikeDimension
    day: date
    window_days: int
    min_ratio: float
    min_z: float
    min_count: int
    items: list[Spike]

    def rows(self) -> list[dict[str, Any]]:
        """CSV rows."""
        return [i.model_dump() for i in self.items]


async def spikes(
    *,
    session: AsyncSession,
    filters: Filters,
    dimension: SpikeDimension = "category",
    day: date,
    window_days: int = 28,
    min_ratio: float = 2.0,
    min_z: float = 3.0,
    min_count: int = 5,
) -> SpikesReport:
    """Find values of ``dimension`` whose complaints on ``day`` exceed their baseline.

    A value spikes when its count on ``day`` is at least ``min_count``, at least
    ``min_ratio`` times its mean daily count over the ``window_days`` days before, and at
    least ``min_z`` standard deviations above that mean (a zero deviation counts as
    passing). The time range of ``filters`` is ignored; its value filters apply.

    Returns:
        Spiking values, largest ratio first.
    """
    dim = DIMENSIONS[dimension]
    first = day - timedelta(days=window_days)
    value_filters = Filters(values=filters.values, tz=filters.tz)
    query = (
        select(
            dim.label("v"),
            func.count().filter(f.c.received_day == day).label("today"),
            func.count().filter(f.c.received_day < day).label("before"),
            func.array_agg(f.c.received_day).filter(f.c.received_day < day).label("days"),
        )
        .where(*value_filters.where(), f.c.received_day >= first, f.c.received_day <= day)
        .group_by(dim)
    )
    items: list[Spike] = []
    for r in (await session.execute(query)).all():
        if r.today < min_count:
            continue
        per_day: dict[date, int] = {}
        for d in r.days or ():
            per_day[d] = per_day.get(d, 0) + 1
        counts = [per_day.get(first + timedelta(days=i), 0) for i in range(window_days)]
        mean = sum(counts) / window_days
        std = (sum((c - mean) ** 2 for c in counts) / window_days) ** 0.5
        ratio = r.today / mean if mean else None
        z = (r.today - mean) / std if std else None
        if (ratio is None or ratio >= min_ratio) and (z is None or z >= min_z):
            items.append(
                Spike(
                    value=r.v,
                    day=day,
                    count=r.today,
                    baseline_mean=round(mean, 3),
                    baseline_stddev=round(std, 3),
                    ratio=_r(ratio, 3),
                    z=_r(z, 3),
                )
            )
    items.sort(key=lambda i: (-(i.ratio or float("inf")), i.value))
    return SpikesReport(
        dimension=dimension,
        day=day,
        window_days=window_days,
        min_ratio=min_ratio,
        min_z=min_z,
        min_count=min_count,
        items=items,
    )


class RepeatsReport(BaseModel):
    """``GET /v1/reports/complaints/repeats``: customers who complained more than once.

    Attributes:
        customers: distinct customers (pseudonymous keys) with a complaint in the range.
        repeat_customers: those with at least ``min_complaints``.
        repeat_complaints: complaints of repeat customers.
        by_category: repeat complaints per category, largest first.
    """

    complaints: int
    customers: int
    min_complaints: int
    repeat_customers: int
    repeat_complaints: int
    repeat_share: float | None
    by_category: dict[str, int]

    def rows(self) -> list[dict[str, Any]]:
        """CSV rows."""
        base = self.model_dump(exclude={"by_category"})
        return [{**base, "category": k, "category_repeat_complaints": v} for k, v in
                self.by_category.items()] or [base]  # fmt: skip


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _repeat_point_sql(
    filters: Filters, value: tuple[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """SQL counting the points inside the range per category and kind (migration 0008).

    A point (first, last) is inside [from, to) when its first receipt is at or after
    ``from`` and its last before ``to``. Split: cells of ``complaint_repeat_month`` with the
    first in a month starting at or after ``from`` and the last in a month that ends before
    ``to``; the points whose first receipt falls in the partial month at the start (strip 1)
    or, otherwise, whose last falls in the partial month at the end (strip 2), read from
    ``complaint_repeat_link`` through its day indexes (at most about a month of rows each).

    With ``value`` = ``(dimension, value)`` the same from the per-value links and cells of
    migration 0010 (``complaint_repeat_dim_link`` / ``complaint_repeat_dim_month``, rows
    ``dim = dimension AND value = value``): the pairs among the customer's complaints with
    that value.

    Args:
        filters: the range (its value filters are not read here).
        value: a filter dimension (:data:`FILTER_COLUMNS` name) and one value, or None.

    Returns:
        SQL with columns ``category, k0, k1, k2, k3`` (one row per part and category) and
        its parameters.
    """
    zone = ZoneInfo(filters.tz)
    params: dict[str, Any] = {}
    # a1: first day of the first whole month at or after ``from``; b1: first day of the month
    # of ``to`` (cells end before it). None = open.
    a1: date | None = None
    b1: date | None = None
    if filters.from_ is not None:
        local = filters.from_.astimezone(zone)
        a1 = local.date()
        if not (_midnight(local) and a1.day == 1):
            a1 = _next_month(a1)
        params.update(a1=a1, f_at=filters.from_, f_day=local.date())
    if filters.to is not None:
        local = filters.to.astimezone(zone)
        b1 = _month_start(local.date())
        params.update(b1=b1, t_at=filters.to, t_day=local.date())
    link, cells, key = "analytics.complaint_repeat_link", "analytics.complaint_repeat_month", ""
    cell_conds = ["true"]
    if value is not None:
        link, cells = "analytics.complaint_repeat_dim_link", "analytics.complaint_repeat_dim_month"
        key = "dim = :v_dim AND value = :v_value AND "
        cell_conds = ["dim = :v_dim", "value = :v_value"]
        params.update(v_dim=value[0], v_value=value[1])
    if a1 is not None:
        cell_conds.append("s_month >= :a1")
    if b1 is not None:
        cell_conds.append("e_month < :b1")
    parts = [
        f"SELECT category, sum(n) FILTER (WHERE kind = 0) AS k0, "
        f"sum(n) FILTER (WHERE kind = 1) AS k1, sum(n) FILTER (WHERE kind = 2) AS k2, "
        f"sum(n) FILTER (WHERE kind = 3) AS k3 FROM {cells} "
        f"WHERE {' AND '.join(cell_conds)} GROUP BY category"
    ]

    def before_to(col: str) -> str:
        return f"{col} < :t_at" if b1 is not None else f"{col} IS NOT NULL"

    if a1 is not None:
        # Strip 1: first receipt in [from, a1). Kinds 0, 2 start at the complaint itself,
        # kinds 1, 3 at the previous complaint.
        parts.append(
            f"SELECT category, count(*) FILTER (WHERE {before_to('received_at')}), 0, "
            f"count(*) FILTER (WHERE {before_to('next_at')}), 0 FROM {link} "
            f"WHERE {key}received_day >= :f_day AND received_day < :a1 AND received_at >= :f_at "
            "GROUP BY category"
        )
        parts.append(
            f"SELECT category, 0, count(*) FILTER (WHERE {before_to('received_at')}), 0, "
            f"count(*) FILTER (WHERE {before_to('next_at')}) FROM {link} "
            f"WHERE {key}prev_day >= :f_day AND prev_day < :a1 AND prev_at >= :f_at "
            "GROUP BY category"
        )
    if b1 is not None:
        # Strip 2: first receipt in a whole month (>= a1), last in [b1, to). Kinds 0, 1 end
        # at the complaint itself, kinds 2, 3 at the next complaint.
        def from_a1(col: str) -> str:
            return f"{col} >= :a1" if a1 is not None else f"{col} IS NOT NULL"

        parts.append(
            f"SELECT category, count(*) FILTER (WHERE {from_a1('received_day')}), "
            f"count(*) FILTER (WHERE {from_a1('prev_day')}), 0, 0 FROM {link} "
            f"WHERE {key}received_day >= :b1 AND received_day <= :t_day AND received_at < :t_at "
            "GROUP BY category"
        )
        parts.append(
            f"SELECT category, 0, 0, count(*) FILTER (WHERE {from_a1('received_day')}), "
            f"count(*) FILTER (WHERE {from_a1('prev_day')}) FROM {link} "
            f"WHERE {key}next_day >= :b1 AND next_day <= :t_day AND next_at < :t_at "
            "GROUP BY category"
        )
    return " UNION ALL ".join(parts), params


async def _repeats_from_links(
    *, session: AsyncSession, filters: Filters, value: tuple[str, str] | None = None
) -> tuple[int, int, int, int, dict[str, int]]:
    """Repeat figures for ``min_complaints`` 2 from the links and month cells.

    Without ``value`` (no value filter) from migration 0008's links over all of a customer's
    complaints; with ``value`` = ``(dimension, value)`` (a filter of one value on one
    dimension) from migration 0010's links among the customer's complaints with that value.

    With N complaints, P consecutive pairs and T consecutive triples of a customer inside
    the range (a customer's complaints in a range are consecutive in receipt order):
    customers N - P, repeat customers P - T, their complaints 2P - T; per category, the
    complaints with a neighbour in the range: pairs ending there + pairs starting there -
    triples around them.

    Returns:
        ``(complaints, customers, repeat customers, repeat complaints, by category)``, the
        categories ordered by repeat complaints (descending), then name.
    """
    points, params = _repeat_point_sql(filters, value)
    sql = (
        "SELECT category, COALESCE(sum(k0), 0) AS k0, COALESCE(sum(k1), 0) AS k1, "
        "COALESCE(sum(k2), 0) AS k2, COALESCE(sum(k3), 0) AS k3 "
        f"FROM ({points}) AS p(category, k0, k1, k2, k3) GROUP BY category "
        "ORDER BY COALESCE(sum(k1), 0) + COALESCE(sum(k2), 0) - COALESCE(sum(k3), 0) DESC, "
        "category"
    )
    rows = (await session.execute(text(sql), params)).all()
    n = sum(int(r.k0) for r in rows)
    pairs = sum(int(r.k1) for r in rows)
    triples = sum(int(r.k3) for r in rows)
    by_category = {r.category: int(r.k1 + r.k2 - r.k3) for r in rows}
    return (
        n,
        n - pairs,
        pairs - triples,
        2 * pairs - triples,
        {c: v for c, v in by_category.items() if v},
    )


async def repeats(
    *, session: AsyncSession, filters: Filters, min_complaints: int = 2
) -> RepeatsReport:
    """Count repeat complainants (same ``customer_key``) among the range's complaints.

    Three sources, all exact (kept by triggers in the writing transaction):

    - ``min_complaints`` 2 without value filters (the default report): the customer links
      and month cells of migration 0008 (:func:`_repeats_from_links`); with a filter of one
      value on one dimension, the per-value links and cells of migration 0010;
    - otherwise, when every value filter is on one of the six cell dimensions (not branch):
      the narrow customer-ordered rows of migration 0016, grouped per customer in parallel
      (:func:`_repeats_from_customer_cells`);
    - with a branch filter (several values, or with other filters): one pass over the
      facts in customer order (:func:`_repeats_from_facts`; a branch has few complaints).

    Raises:
        InvalidReportQuery: ``min_complaints`` below 2.
    """
    if min_complaints < 2:
        raise InvalidReportQuery("'min_complaints' must be at least 2")
    given = [(name, accepted) for name, accepted in filters.values.items() if accepted]
    single = None
    if len(given) == 1 and len(set(given[0][1])) == 1:
        single = (given[0][0], given[0][1][0])
    if min_complaints == 2 and (not given or single is not None):
        n, customers, rc, rn, by_category = await _repeats_from_links(
            session=session, filters=filters, value=single
        )
        return RepeatsReport(
            complaints=n,
            customers=customers,
            min_complaints=min_complaints,
            repeat_customers=rc,
            repeat_complaints=rn,
            repeat_share=_rate(rn, n),
            by_category=by_category,
        )
    if all(name in tables.CELL_SUMMARY_DIMENSIONS for name, _ in given):
        return await _repeats_from_customer_cells(
            session=session, filters=filters, min_complaints=min_complaints
        )
    return await _repeats_from_facts(
        session=session, filters=filters, min_complaints=min_complaints
    )


async def _repeats_from_customer_cells(
    *, session: AsyncSession, filters: Filters, min_complaints: int = 2
) -> RepeatsReport:
    """The repeat report from ``complaint_customer_cell`` (migration 0016).

    Value filters on the six dimensions of ``complaint_cell`` select a set of cells (none
    when a value is unknown: the report is all zeros). One statement counts, per customer,
    the complaints in those cells with a receipt instant in [from, to) and sums over the
    customers. The table is partitioned by hash of the customer (all of a customer's rows
    in one partition), so with ``enable_partitionwise_aggregate`` each partition is grouped
    on its own, in parallel, index-only in customer order (``enable_seqscan`` off keeps the
    planner from a hash aggregate of every customer, which spills to disk). The receipt
    instant alone bounds the range: ``received_day`` is its day in the report's zone (the
    bank's, ``settings.timezone``), so it is the range of :meth:`Filters.where`.

    The repeat complaints per category come one of two ways:

    - ``min_complaints`` 2 or 3 and the complaints per category of the range known from the
      summaries (:func:`_keyed_counts_by_category`): per customer only the count and the
      smallest and largest category id; a customer below the threshold has at most two
      complaints, so those are its categories, and the repeat complaints of a category are
      its complaints less those of customers below the threshold (about 1.6 times faster:
      docs/analytics.md, fifteenth round);
    - otherwise per customer one count per category of the selected cells.

    Args:
        session: the report's session.
        filters: the range and value filters (only the six cell dimensions).
        min_complaints: the threshold of a repeat customer (2 or more).

    Raises:
        KeyError: a filter on a dimension without cells (branch).
    """
    active = [(name, accepted) for name, accepted in filters.values.items() if accepted]
    params: dict[str, Any] = {"m": min_complaints}
    conds: list[str] = []
    g = tables.complaint_category
    labels_query = select(g.c.category_id, g.c.category)
    if active:
        k = tables.complaint_cell
        query = select(k.c.cell_id, k.c.category).where(*_cell_conditions(active))
        cells = (await session.execute(query)).all()
        if not cells:
            return RepeatsReport(
                complaints=0,
                customers=0,
                min_complaints=min_complaints,
                repeat_customers=0,
                repeat_complaints=0,
                repeat_share=None,
                by_category={},
            )
        conds.append("cell_id = ANY(:cells)")
        params["cells"] = [cell_id for cell_id, _ in cells]
        shown = {"unclassified" if c is None else c for _, c in cells}
        labels_query = labels_query.where(g.c.category.in_(shown))
    labels: dict[int, str] = {
        r.category_id: r.category for r in await session.execute(labels_query)
    }
    if filters.from_ is not None:
        conds.append("received_at >= :from_")
        params["from_"] = filters.from_
    if filters.to is not None:
        conds.append("received_at < :to")
        params["to"] = filters.to
    rows_sql = "FROM analytics.complaint_customer_cell" + (
        f" WHERE {' AND '.join(conds)}" if conds else ""
    )
    totals = None
    if min_complaints <= 3:
        totals = await _keyed_counts_by_category(session=session, filters=filters)
    if totals is not None:
        # One row for the customers at or above the threshold, one per (count, smallest,
        # largest category id) below it.
        sql = (
            "SELECT CASE WHEN n < :m THEN n END AS small, CASE WHEN n < :m THEN lo END AS lo, "
            "CASE WHEN n < :m THEN hi END AS hi, count(*) AS customers, sum(n) AS complaints "
            "FROM (SELECT count(*) AS n, min(category_id) AS lo, "
            # Below a threshold of 2 a customer has one complaint: no largest id needed.
            f"{'max(category_id)' if min_complaints == 3 else 'NULL::smallint'} AS hi "
            f"{rows_sql} GROUP BY customer_id) AS c GROUP BY 1, 2, 3"
        )
    else:
        sql = (
            "SELECT NULL AS small, NULL AS lo, NULL AS hi, count(*) AS customers, "
            "COALESCE(sum(n), 0) AS complaints, count(*) FILTER (WHERE n >= :m) AS rc, "
            "COALESCE(sum(n) FILTER (WHERE n >= :m), 0) AS rn"
            + "".join(
                f", COALESCE(sum(c{int(cid)}) FILTER (WHERE n >= :m), 0) AS r{int(cid)}"
                for cid in labels
            )
            + " FROM (SELECT count(*) AS n"
            + "".join(
                f", count(*) FILTER (WHERE category_id = {int(cid)}) AS c{int(cid)}"
                for cid in labels
            )
            + f" {rows_sql} GROUP BY customer_id) AS c"
        )
    async with (
        planner_setting(session, "enable_partitionwise_aggregate", "on"),
        planner_setting(session, "enable_seqscan", "off"),
        # asyncpg prepares the statement; after five runs PostgreSQL may switch to a generic
        # plan, which cannot see how many rows the cells select (2 s instead of 0.15).
        planner_setting(session, "plan_cache_mode", "force_custom_plan"),
    ):
        result = (await session.execute(text(sql), params)).all()
    customers = sum(int(r.customers) for r in result)
    complaints = sum(int(r.complaints) for r in result)
    if totals is not None:
        counts = dict(totals)
        rc = rn = 0
        for r in result:
            if r.small is None:
                rc, rn = int(r.customers), int(r.complaints)
                continue
            for cid in (r.lo,) if r.small == 1 else (r.lo, r.hi):
                counts[labels[cid]] = counts.get(labels[cid], 0) - int(r.customers)
    else:
        (r,) = result
        rc, rn = int(r.rc), int(r.rn)
        counts = {label: int(r._mapping[f"r{int(cid)}"]) for cid, label in labels.items()}
    ranked = sorted(((c, v) for c, v in counts.items() if v), key=lambda i: (-i[1], i[0]))
    return RepeatsReport(
        complaints=complaints,
        customers=customers,
        min_complaints=min_complaints,
        repeat_customers=rc,
        repeat_complaints=rn,
        repeat_share=_rate(rn, complaints),
        by_category=dict(ranked),
    )


async def _keyed_counts_by_category(
    *, session: AsyncSession, filters: Filters
) -> dict[str, int] | None:
    """Complaints with a customer key per category label in the range, from the summaries.

    All complaints per category from the daily per-dimension totals (no value filter) or
    from the month cells of 0015 (value filters; :func:`_cross_cells`, category x channel
    summed over the channels), less those without a customer key, read from the facts
    through the partial index ``complaint_fact_unkeyed_idx`` (0016; few: intake records a
    customer for nearly every complaint).

    A range that starts or ends inside a day adds the parts of those edge days, counted
    from the facts (:meth:`Filters.split_days`; a day's rows through the day indexes).

    Returns:
        ``{category label: complaints}`` (``unclassified`` for none), or None when the
        summaries cannot serve the range (value filters and no whole month).
    """
    active = any(accepted for accepted in filters.values.values())
    label = func.coalesce(f.c.category, literal_column("'unclassified'"))
    counts: dict[str, int] = {}
    days_only, edges = filters.whole_days()
    if days_only is not None:
        if active:
            query = _cross_cells(days_only, "category", "channel")
            if query is None:
                return None
            for r in (await session.execute(query)).all():
                counts[r.r] = counts.get(r.r, 0) + int(r.n)
        else:
            source = _dim_totals_source(days_only, "category")
            if source is None:  # not expected: whole days, no value filter
                return None
            value = _dim_totals_value("category")
            query = select(value.label("c"), _int_sum(dt.c.n).label("n")).where(*source[1])
            for r in (await session.execute(query.group_by(value))).all():
                counts[r.c] = int(r.n)
    elif active:
        return None
    if edges:
        conds = [*filters.edge_where(edges), f.c.customer_key.is_not(None)]
        query = select(label.label("c"), func.count().label("n")).where(*conds).group_by(label)
        for r in (await session.execute(query)).all():
            counts[r.c] = counts.get(r.c, 0) + int(r.n)
    if days_only is not None:
        # The whole days' summaries count complaints without a customer key too.
        first, last = filters.split_days()[0]
        unkeyed_filters = Filters(values=filters.values, tz=filters.tz)
        conds = [*unkeyed_filters.where(), f.c.customer_key.is_(None)]
        if first is not None:
            conds.append(f.c.received_day >= first)
        if last is not None:
            conds.append(f.c.received_day <= last)
        unkeyed = select(label.label("c"), func.count().label("n")).where(*conds).group_by(label)
        for r in (await session.execute(unkeyed)).all():
            counts[r.c] = counts.get(r.c, 0) - int(r.n)
    return counts


async def _repeats_from_facts(
    *, session: AsyncSession, filters: Filters, min_complaints: int = 2
) -> RepeatsReport:
    """The repeat report from ``complaint_fact`` (any filter; the reference of the links)."""
    per_complaint = (
        select(
            func.coalesce(f.c.category, literal_column("'unclassified'")).label("c"),
            func.count().over(partition_by=f.c.customer_key).label("n"),
            func.row_number().over(partition_by=f.c.customer_key).label("i"),
        )
        .where(*filters.where(), f.c.customer_key.is_not(None))
        .subquery()
    )
    pc = per_complaint.c
    repeat = pc.n >= min_complaints
    rows = (
        await session.execute(
            select(
                pc.c,
                func.count().label("complaints"),
                func.count().filter(pc.i == 1).label("customers"),
                func.count().filter((pc.i == 1) & repeat).label("rc"),
                func.count().filter(repeat).label("rn"),
            )
            .group_by(pc.c)
            .order_by(func.count().filter(repeat).desc(), pc.c)
        )
    ).all()
    complaints = sum(r.complaints for r in rows)
    rn = sum(r.rn for r in rows)
    return RepeatsReport(
        complaints=complaints,
        customers=sum(r.customers for r in rows),
        min_complaints=min_complaints,
        repeat_customers=sum(r.rc for r in rows),
        repeat_complaints=rn,
        repeat_share=_rate(rn, complaints),
        by_category={r.c: r.rn for r in rows if r.rn},
    )


# --- suggestions -----------------------------------------------------------------------------


class SuggestionsReport(BaseModel):
    """``GET /v1/reports/suggestions`` (plan §7.3, suggestion analysis).

    Attributes:
        participants: distinct suggesters (pseudonymous keys).
        screened: suggestions with a decision (rejected at screening, adopted, declined).
        screened_in_rate: (adopted + declined) / screened: share that passed screening.
        adoption_rate: adopted / (adopted + declined).
        implementation_rate: implemented / adopted.
        implementation_days: decision to implementation, calendar days.
        implemented_on_time_rate: on-time implementations / implementations with a plan.
        rewards / reward_amount_minor: rewards granted and their value (minor units).
        participation_by_channel: suggestions per channel.
    """

    suggestions: int
    participants: int
    screened: int
    screened_in: int
    screened_in_rate: float | None
    evaluated: int
    adopted: int
    declined: int
    adoption_rate: float | None
    implemented: int
    implementation_rate: float | None
    implementation_days: Distribution
    implemented_on_time_rate: float | None
    rewards: int
    rewarded_suggestions: int
    reward_amount_minor: int
    participation_by_channel: dict[str, int]

    def rows(self) -> list[dict[str, Any]]:
        """CSV rows: one ``metric,value`` pair per figure."""
        out = [
            {"metric": k, "value": v}
            for k, v in self.model_dump(
                exclude={"implementation_days", "participation_by_channel"}
            ).items()
        ]
        for k, v in self.implementation_days.model_dump().items():
            out.append({"metric": f"implementation_days.{k}", "value": v})
        for k, v in self.participation_by_channel.items():
            out.append({"metric": f"channel.{k}", "value": v})
        return out


def _participants(
    *,
    from_: datetime | None,
    to: datetime | None,
    values: dict[str, tuple[str, ...]] | None,
    key: ColumnElement[Any],
) -> ColumnElement[Any]:
    """Return the distinct suggesters of the suggestions received in [from, to).

    Without a value filter, from the links of migration 0013 (``suggestion_link``): a
    customer's suggestions inside the range are consecutive in the order (receipt instant,
    suggestion id), so exactly one of them has its previous suggestion outside the range
    (none, or received before ``from``; never at or after ``to``). The count of those rows
    is an index-only range scan instead of sorting every key (docs/analytics.md, ninth
    round). With a value filter the previous suggestion of the same customer may not match
    it, so ``count(DISTINCT customer_key)`` over the matching (fewer) rows.

    Args:
        from_: receipt instant at or after this (aware); None = open.
        to: receipt instant before this (aware); None = open.
        values: the report's value filters (an empty tuple filters nothing).
        key: the customer key column of the statement's matching rows (value filters).

    Returns:
        An aggregate (for the statement over ``suggestion_fact``) or a scalar subquery: the
        number of distinct known customer keys.
    """
    if any(values.values() if values else ()):
        return func.count(func.distinct(key))
    lk = tables.suggestion_link
    conds: list[ColumnElement[bool]] = [lk.c.prev_at.is_(None)]
    if from_ is not None:
        conds = [lk.c.received_at >= from_, or_(lk.c.prev_at.is_(None), lk.c.prev_at < from_)]
    if to is not None:
        conds.append(lk.c.received_at < to)
    return select(func.count()).select_from(lk).where(*conds).scalar_subquery()


async def suggestions(
    *,
    session: AsyncSession,
    from_: datetime | None = None,
    to: datetime | None = None,
    values: dict[str, tuple[str, ...]] | None = None,
) -> SuggestionsReport:
    """Compute suggestion figures for suggestions received in [from, to).

    Args:
        session: a session.
        from_: receipt instant at or after this (aware); None = open.
        to: receipt instant before this (aware); None = open.
        values: filters ``channel``, ``category``, ``department``, ``branch`` -> accepted
            values.

    Raises:
        InvalidReportQuery: ``from`` is not before ``to``, or an unknown filter.
    """
    if from_ and to and from_ >= to:
        raise InvalidReportQuery("'from' must be before 'to'")
    columns = {
        "channel": s.c.channel,
        "category": s.c.category,
        "department": s.c.department,
        "branch": s.c.branch_code,
        "product_line": s.c.product_line,
    }
    conds: list[ColumnElement[bool]] = [s.c.received_at.is_not(None)]
    if from_ is not None:
        conds.append(s.c.received_at >= from_)
    if to is not None:
        conds.append(s.c.received_at < to)
    for name, accepted in (values or {}).items():
        if name not in columns:
            raise InvalidReportQuery(f"unknown suggestion filter: {name}")
        if accepted:
            conds.append(columns[name].in_(accepted))
    days = (func.extract("epoch", s.c.implemented_at - s.c.decided_at) / 86400.0).cast(Float)
    # The rows' inputs in a subquery with OFFSET 0: PostgreSQL does not inline such a
    # subquery, so the implementation days (a numeric extract and division) are computed
    # once per row, not once per aggregate that reads them (count, mean, two percentiles):
    # 54-59 -> 33 ms on 100,000 suggestions (docs/analytics.md, ninth round).
    rows = (
        select(
            s.c.customer_key,
            s.c.decision,
            s.c.implemented_at,
            s.c.implemented_on_time,
            days.label("days"),
        )
        .where(*conds)
        .offset(0)
        .subquery("r")
    )
    x = rows.c
    m = (
        await session.execute(
            select(
                func.count().label("n"),
                _participants(from_=from_, to=to, values=values, key=x.customer_key).label(
                    "participants"
                ),
                func.count(x.decision).label("screened"),
                func.count().filter(x.decision == "adopted").label("adopted"),
                func.count().filter(x.decision == "declined").label("declined"),
                func.count(x.implemented_at).label("implemented"),
                func.count(x.days).label("d_n"),
                func.avg(x.days).label("d_mean"),
                _pct(x.days, 0.5).label("d_p50"),
                _pct(x.days, 0.9).label("d_p90"),
                func.count(x.implemented_on_time).label("planned"),
                func.count().filter(x.implemented_on_time.is_(True)).label("impl_on_time"),
            ).select_from(rows)
        )
    ).one()
    rw = tables.suggestion_reward_fact
    # Rewards from the reward rows of the matching suggestions (a join driven by the few
    # reward rows, not an outer join probed by every suggestion: about 30 ms less on 100,000
    # suggestions, docs/analytics.md eighth round).
    rewarded = (
        await session.execute(
            select(
                func.count().label("rewards"),
                func.count(func.distinct(rw.c.suggestion_id)).label("rewarded"),
                func.coalesce(func.sum(rw.c.amount_minor), 0).label("amount"),
            )
            .select_from(rw.join(s, s.c.suggestion_id == rw.c.suggestion_id))
            .where(*conds)
        )
    ).one()
    by_channel = (
        await session.execute(
            select(_unknown(s.c.channel).label("c"), func.count().label("n"))
            .where(*conds)
            .group_by(_unknown(s.c.channel))
            .order_by(func.count().desc())
        )
    ).all()
    # Evaluated = adopted + declined (the only two decisions after an evaluation).
    screened_in = m.adopted + m.declined
    return SuggestionsReport(
        suggestions=m.n,
        participants=m.participants,
        screened=m.screened,
        screened_in=screened_in,
        screened_in_rate=_rate(screened_in, m.screened),
        evaluated=screened_in,
        adopted=m.adopted,
        declined=m.declined,
        adoption_rate=_rate(m.adopted, screened_in),
        implemented=m.implemented,
        implementation_rate=_rate(m.implemented, m.adopted),
        implementation_days=Distribution(
            count=m.d_n, mean=_r(m.d_mean), median=_r(m.d_p50), p90=_r(m.d_p90)
        ),
        implemented_on_time_rate=_rate(m.impl_on_time, m.planned),
        rewards=int(rewarded.rewards),
        rewarded_suggestions=rewarded.rewarded,
        reward_amount_minor=int(rewarded.amount),
        participation_by_channel={r.c: r.n for r in by_channel},
    )
