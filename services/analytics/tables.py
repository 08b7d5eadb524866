"""Tables of the analytics schema: a read model built only from events.

Two kinds of tables (docs/analytics.md "Read model"):

- detail tables, one row per natural key of an event (a round of a case, a clock of a
  round, a transition, a follow-up visit, a suggestion, a reward). Handlers write them with
  upserts that merge (first/last instant wins, ``COALESCE`` fills gaps), so any order of
  arrival and any redelivery give the same rows;
- ``complaint_fact``: one row per complaint. Its receipt and routing columns come straight
  from the events; its case columns (status, clocks, resolution, remedy, follow-up figures)
  are *derived*: recomputed from the detail tables after every event of the complaint
  (:func:`services.analytics.model.refresh_complaint`). The reports read this table.

Instants are UTC ``timestamptz``; ``received_day`` is the receipt's calendar day in the bank's
time zone (``CFP_TIMEZONE``), so trends by day, ISO week and month need no time-zone math at
query time. Amounts are minor currency units.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from shared.db import make_metadata
from shared.events.processed import processed_events_table

SCHEMA = "analytics"
metadata = make_metadata(SCHEMA)

#: Statuses after which a case no longer counts as open (shared/events/contracts/cases.py).
TERMINAL_STATUSES = ("closed", "withdrawn", "merged")

complaint_fact = Table(
    "complaint_fact",
    metadata,
    Column("complaint_id", UUID(as_uuid=False), primary_key=True),
    # complaints.received
    Column("reference", Text),
    Column("channel", Text),
    Column("customer_key", Text),
    Column("received_at", DateTime(timezone=True)),
    Column("received_day", Date),
    Column("branch_code", Text),
    Column("region", Text),
    Column("language", Text),
    Column("amount_minor", BigInteger),
    Column("currency", Text),
    Column("product", Text),
    Column("vulnerable_customer", Boolean),
    # complaints.routed / complaints.rerouted (the latest decision wins: routed_at)
    Column("category", Text),
    Column("product_line", Text),
    Column("priority", Text),
    Column("department", Text),
    Column("needs_triage", Boolean),
    Column("routed_at", DateTime(timezone=True)),
    # cases.opened
    Column("opened_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("due_date", Date),
    Column("provisional", Boolean),
    # derived from the detail tables (refresh_complaint)
    Column("status", Text),
    Column("status_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("ack_seconds", Float),
    Column("escalation_count", Integer, nullable=False, server_default="0"),
    Column("extension_count", Integer, nullable=False, server_default="0"),
    Column("reopen_count", Integer, nullable=False, server_default="0"),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution_working_days", Float),
    Column("resolution_seconds", Float),
    Column("result_notified_at", DateTime(timezone=True)),
    Column("res_clocks_done", Integer, nullable=False, server_default="0"),
    Column("res_clocks_on_time", Integer, nullable=False, server_default="0"),
    Column("ack_clock_done", Integer, nullable=False, server_default="0"),
    Column("ack_clock_on_time", Integer, nullable=False, server_default="0"),
    Column("breaches_resolution", Integer, nullable=False, server_default="0"),
    Column("breaches_acknowledgement", Integer, nullable=False, server_default="0"),
    Column("breaches_regulatory", Integer, nullable=False, server_default="0"),
    Column("responsibility", Text),
    Column("remedy", Text),
    Column("compensation_minor", BigInteger, nullable=False, server_default="0"),
    Column("closed_at", DateTime(timezone=True)),
    Column("close_outcome", Text),
    Column("visits_done", Integer, nullable=False, server_default="0"),
    Column("visits_unreachable", Integer, nullable=False, server_default="0"),
    Column("visits_unsatisfied", Integer, nullable=False, server_default="0"),
    Column("score_n", Integer, nullable=False, server_default="0"),
    Column("score_sum", Integer, nullable=False, server_default="0"),
    Column("score_1", Integer, nullable=False, server_default="0"),
    Column("score_2", Integer, nullable=False, server_default="0"),
    Column("score_3", Integer, nullable=False, server_default="0"),
    Column("score_4", Integer, nullable=False, server_default="0"),
    Column("score_5", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("complaint_fact_received_idx", complaint_fact.c.received_at)
Index("complaint_fact_category_idx", complaint_fact.c.category, complaint_fact.c.received_at)
Index("complaint_fact_day_idx", complaint_fact.c.received_day)
#: Covering index of the report dimensions: trend, types and cross analysis on the first
#: four run as index-only scans (bench/bench_analytics.py); since 0007 it carries all seven
#: filter dimensions, so value filters on several dimensions are checked in the index.
Index(
    "complaint_fact_dims_idx",
    complaint_fact.c.received_day,
    complaint_fact.c.channel,
    complaint_fact.c.category,
    complaint_fact.c.department,
    complaint_fact.c.priority,
    complaint_fact.c.product_line,
    complaint_fact.c.region,
    complaint_fact.c.branch_code,
    # Migration 0011: the resolution clocks too, so cross analysis reads the facts of whole
    # days (the edge days of its month cells) index-only.
    postgresql_include=["res_clocks_done", "res_clocks_on_time"],
)
Index("complaint_fact_branch_idx", complaint_fact.c.branch_code, complaint_fact.c.received_day)
#: Migrations 0009 (product line, region) and 0017 (channel, priority, department,
#: category): types and cross analysis with a value filter on one of the six report
#: dimensions read only the matching complaints, index-only (the other report dimensions,
#: the branch and the resolution clocks are INCLUDE columns).
_LED_DIMS = ("channel", "category", "department", "priority", "product_line", "region")
for _lead in ("region", "product_line", "channel", "priority", "department", "category"):
    Index(
        "complaint_fact_category_dims_idx"
        if _lead == "category"
        else f"complaint_fact_{_lead}_idx",
        complaint_fact.c[_lead],
        complaint_fact.c.received_day,
        postgresql_include=[
            *[d for d in _LED_DIMS if d != _lead],
            "branch_code",
            "res_clocks_done",
            "res_clocks_on_time",
        ],
        postgresql_where=text("received_day IS NOT NULL"),
    )
Index("complaint_fact_customer_idx", complaint_fact.c.customer_key, complaint_fact.c.received_day)
#: Migrations 0004/0005: repeat complaints in customer order, open cases and the last days by
#: category index-only (metrics). 0004 also creates one expression index per duration
#: measure (``complaint_fact_<measure>_bucket_idx``, :data:`HIST_MEASURES`; since 0006 with
#: channel, category, department, priority as INCLUDE columns, since 0007 also product_line,
#: region, branch_code): keep them when autogenerating.
Index(
    "complaint_fact_customer_cat_idx",
    complaint_fact.c.customer_key,
    complaint_fact.c.received_day,
    complaint_fact.c.category,
    postgresql_where=text("customer_key IS NOT NULL"),
)
Index(
    "complaint_fact_open_dims_idx",
    complaint_fact.c.status,
    complaint_fact.c.department,
    complaint_fact.c.priority,
    postgresql_where=text("closed_at IS NULL AND opened_at IS NOT NULL"),
)
Index(
    "complaint_fact_received_cat_idx",
    complaint_fact.c.received_at,
    postgresql_include=["category"],
)
Index(
    "complaint_fact_open_idx",
    complaint_fact.c.status,
    postgresql_where=text("closed_at IS NULL"),
)

case_round_fact = Table(
    "case_round_fact",
    metadata,
    Column("case_id", UUID(as_uuid=False), primary_key=True),
    Column("round", SmallInteger, primary_key=True),
    Column("started_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("reopen_reason", Text),
    Column("resolved_at", DateTime(timezone=True)),
    Column("responsibility", Text),
    Column("remedy", Text),
    Column("compensation_minor", BigInteger),
    Column("currency", Text),
    Column("resolved_on_time", Boolean),
    Column("working_days_taken", Float),
    Column("notified_at", DateTime(timezone=True)),
    Column("notified_on_time", Boolean),
)

#: One row per alert tracking raised on a clock (a ``warning`` or a ``breach`` against one
#: due time); ``withdrawn`` when tracking took it back (``cases.sla-withdrawn.v1``: a calendar
#: change moved the due time). A withdrawal may arrive before its alert: the row then waits
#: with ``at`` NULL.
clock_alert_fact = Table(
    "clock_alert_fact",
    metadata,
    Column("case_id", UUID(as_uuid=False), primary_key=True),
    Column("clock", Text, primary_key=True),
    Column("round", SmallInteger, primary_key=True),
    Column("alert", Text, primary_key=True),
    Column("due_at", DateTime(timezone=True), primary_key=True),
    Column("at", DateTime(timezone=True)),
    Column("withdrawn", Boolean, nullable=False, server_default="false"),
)

#: Every status-bearing event of a case, one row per event id (the status of a case is the
#: ``to_status`` of its latest row; escalations and extensions are counted here).
case_transition_fact = Table(
    "case_transition_fact",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("case_id", UUID(as_uuid=False), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("action", Text),
    Column("to_status", Text),
)
Index("case_transition_fact_case_idx", case_transition_fact.c.case_id)

followup_fact = Table(
    "followup_fact",
    metadata,
    Column("visit_id", Text, primary_key=True),
    Column("subject_id", Text),
    Column("subject_kind", Text),
    Column("round", SmallInteger),
    Column("channel", Text),
    Column("scheduled_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("outcome", Text),
    Column("score", SmallInteger),
    Column("reason_code", Text),
    Column("attempts", Integer),
    Column("completed_at", DateTime(timezone=True)),
    Column("department", Text),
)
Index("followup_fact_subject_idx", followup_fact.c.subject_id)

suggestion_fact = Table(
    "suggestion_fact",
    metadata,
    Column("suggestion_id", UUID(as_uuid=False), primary_key=True),
    Column("reference", Text),
    Column("channel", Text),
    Column("customer_key", Text),
    Column("received_at", DateTime(timezone=True)),
    Column("received_day", Date),
    Column("branch_code", Text),
    Column("product", Text),
    Column("category", Text),
    Column("product_line", Text),
    Column("department", Text),
    Column("screened_at", DateTime(timezone=True)),
    Column("near_duplicate_of", Text),
    Column("decision", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("evaluation_score", Float),
    Column("implemented_at", DateTime(timezone=True)),
    Column("planned_due_date", Text),
    Column("implemented_on_time", Boolean),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("suggestion_fact_day_idx", suggestion_fact.c.received_day)

suggestion_reward_fact = Table(
    "suggestion_reward_fact",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("suggestion_id", UUID(as_uuid=False), nullable=False),
    Column("reward_type", Text),
    Column("amount_minor", BigInteger, nullable=False, server_default="0"),
    Column("currency", Text),
    Column("rewarded_at", DateTime(timezone=True)),
)
Index("suggestion_reward_fact_suggestion_idx", suggestion_reward_fact.c.suggestion_id)

# --- daily summaries (migration 0004) ------------------------------------------------------
#
# Kept exact by the row trigger ``complaint_fact_summary`` on ``complaint_fact`` (in the
# writing transaction: the previous contribution of the row is subtracted, the new one
# added, a row whose count reaches 0 is deleted), so they depend only on the fact rows.
# Only complaints whose receipt day is known contribute. Reports read them for day-aligned
# ranges (docs/analytics.md "Performance").

#: Complaints and resolution clocks per receipt day and report dimension (NULLs are values).
complaint_day_dims = Table(
    "complaint_day_dims",
    metadata,
    Column("day", Date, nullable=False),
    Column("channel", Text),
    Column("category", Text),
    Column("department", Text),
    Column("priority", Text),
    Column("n", BigInteger, nullable=False, server_default="0"),
    Column("res_done", BigInteger, nullable=False, server_default="0"),
    Column("res_on_time", BigInteger, nullable=False, server_default="0"),
)

#: Additive figures of the handling report per receipt day (sums of durations are exact
#: ``numeric``: working days, seconds).
TOTALS_COLUMNS = (
    "n", "open", "resolved", "closed", "res_done", "res_on_time", "ack_done", "ack_on_time",
    "b_res", "b_ack", "b_reg", "wd_n", "wd_sum", "res_n", "res_sum", "ack_n", "ack_sum",
    "reopened", "escalations", "escalated", "extensions", "compensation", "visits",
    "unreachable", "unsatisfied", "score_n", "score_sum", "s1", "s2", "s3", "s4", "s5",
)  # fmt: skip
NUMERIC_TOTALS = ("wd_sum", "res_sum", "ack_sum")
complaint_day_totals = Table(
    "complaint_day_totals",
    metadata,
    Column("day", Date, primary_key=True),
    *[
        Column(
            c, Numeric if c in NUMERIC_TOTALS else BigInteger, nullable=False, server_default="0"
        )
        for c in TOTALS_COLUMNS
    ],
)

#: Final remedies per receipt day: complaints and compensation (minor units).
complaint_day_remedy = Table(
    "complaint_day_remedy",
    metadata,
    Column("day", Date, primary_key=True),
    Column("remedy", Text, primary_key=True),
    Column("n", BigInteger, nullable=False, server_default="0"),
    Column("compensation", BigInteger, nullable=False, server_default="0"),
)

#: Histogram of durations per receipt day: measure ``wd`` (bucket ceil(working days * 10)),
#: ``res`` (ceil(resolution seconds / 3600)), ``ack`` (ceil(acknowledgement seconds / 900)).
complaint_day_hist = Table(
    "complaint_day_hist",
    metadata,
    Column("day", Date, primary_key=True),
    Column("measure", Text, primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("n", BigInteger, nullable=False, server_default="0"),
)

#: measure -> (fact column, SQL bucket expression); the same text as migration 0004's
#: trigger and expression indexes (``complaint_fact_<measure>_bucket_idx``).
HIST_MEASURES = {
    "wd": ("resolution_working_days", "ceil(resolution_working_days * 10)::int"),
    "res": ("resolution_seconds", "ceil(resolution_seconds / 3600)::int"),
    "ack": ("ack_seconds", "ceil(ack_seconds / 900)::int"),
}

#: Migration 0006: the handling figures of :data:`complaint_day_totals`,
#: :data:`complaint_day_hist` and :data:`complaint_day_remedy` per receipt day, dimension
#: (:data:`DIM_SUMMARY_DIMENSIONS`) and value of that dimension (NULL is a value); a value
#: filter on one of these dimensions sums the rows of its values. Migration 0007 added
#: product_line, region and branch.
DIM_SUMMARY_COLUMNS = {
    "channel": "channel",
    "category": "category",
    "department": "department",
    "priority": "priority",
    "product_line": "product_line",
    "region": "region",
    "branch": "branch_code",
}
#: The ``dim`` values of the per-dimension summaries (report filter names).
DIM_SUMMARY_DIMENSIONS = tuple(DIM_SUMMARY_COLUMNS)
complaint_day_dim_totals = Table(
    "complaint_day_dim_totals",
    metadata,
    Column("day", Date, nullable=False),
    Column("dim", Text, nullable=False),
    Column("value", Text),
    *[
        Column(
            c, Numeric if c in NUMERIC_TOTALS else BigInteger, nullable=False, server_default="0"
        )
        for c in TOTALS_COLUMNS
    ],
)
complaint_day_dim_remedy = Table(
    "complaint_day_dim_remedy",
    metadata,
    Column("day", Date, nullable=False),
    Column("dim", Text, nullable=False),
    Column("value", Text),
    Column("remedy", Text, nullable=False),
    Column("n", BigInteger, nullable=False, server_default="0"),
    Column("compensation", BigInteger, nullable=False, server_default="0"),
)
complaint_day_dim_hist = Table(
    "complaint_day_dim_hist",
    metadata,
    Column("day", Date, nullable=False),
    Column("dim", Text, nullable=False),
    Column("value", Text),
    Column("measure", Text, nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("n", BigInteger, nullable=False, server_default="0"),
)
for _t in (complaint_day_dim_totals, complaint_day_dim_remedy, complaint_day_dim_hist):
    Index(f"{_t.name}_dim_idx", _t.c.dim, _t.c.value, _t.c.day)

# --- repeat complaints (migration 0008) ----------------------------------------------------
#
# Kept by the row trigger ``complaint_fact_repeat_link`` and statement triggers on
# ``complaint_repeat_link`` in the writing transaction (docs/analytics.md "Read model").

#: One row per complaint whose customer key and receipt are known: the receipt instant and
#: local day of the same customer's previous and next complaint (order: receipt instant,
#: complaint id); category NULL is stored as ``unclassified``.
complaint_repeat_link = Table(
    "complaint_repeat_link",
    metadata,
    Column("complaint_id", UUID(as_uuid=False), primary_key=True),
    Column("customer_key", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("received_day", Date, nullable=False),
    Column("category", Text, nullable=False),
    Column("prev_at", DateTime(timezone=True)),
    Column("prev_day", Date),
    Column("next_at", DateTime(timezone=True)),
    Column("next_day", Date),
)
_l = complaint_repeat_link.c
Index("complaint_repeat_link_customer_idx", _l.customer_key, _l.received_at, _l.complaint_id)
Index(
    "complaint_repeat_link_day_idx",
    _l.received_day,
    postgresql_include=["received_at", "prev_at", "prev_day", "next_at", "category", "next_day"],
)
Index(
    "complaint_repeat_link_prev_idx",
    _l.prev_day,
    postgresql_include=["prev_at", "received_at", "next_at", "category"],
    postgresql_where=text("prev_day IS NOT NULL"),
)
Index(
    "complaint_repeat_link_next_idx",
    _l.next_day,
    postgresql_include=["next_at", "received_day", "prev_day", "category"],
    postgresql_where=text("next_day IS NOT NULL"),
)

#: Points per kind (0 complaint, 1 pair ending here, 2 pair starting here, 3 triple around
#: it), category and local months of their first and last receipt (first days of months).
REPEAT_KINDS = (0, 1, 2, 3)
complaint_repeat_month = Table(
    "complaint_repeat_month",
    metadata,
    Column("kind", SmallInteger, primary_key=True),
    Column("s_month", Date, primary_key=True),
    Column("e_month", Date, primary_key=True),
    Column("category", Text, primary_key=True),
    Column("n", BigInteger, nullable=False, server_default="0"),
)

# --- repeat complaints with a value filter (migration 0010) ---------------------------------
#
# Kept by the row trigger ``complaint_fact_repeat_dim_link`` and statement triggers on
# ``complaint_repeat_dim_link`` in the writing transaction (docs/analytics.md "Read model").

#: One row per complaint and filter dimension (``dim``: a :data:`DIM_SUMMARY_DIMENSIONS` name) whose
#: value is not NULL and whose customer key and receipt are known: the same customer's
#: previous and next complaint *with the same value* (order: receipt instant, complaint id).
complaint_repeat_dim_link = Table(
    "complaint_repeat_dim_link",
    metadata,
    Column("dim", Text, primary_key=True),
    Column("complaint_id", UUID(as_uuid=False), primary_key=True),
    Column("value", Text, nullable=False),
    Column("customer_key", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("received_day", Date, nullable=False),
    Column("category", Text, nullable=False),
    Column("prev_at", DateTime(timezone=True)),
    Column("prev_day", Date),
    Column("next_at", DateTime(timezone=True)),
    Column("next_day", Date),
)
_dl = complaint_repeat_dim_link.c
Index("complaint_repeat_dim_link_customer_idx", _dl.customer_key)
Index(
    "complaint_repeat_dim_link_day_idx",
    _dl.dim,
    _dl.value,
    _dl.received_day,
    postgresql_include=["received_at", "prev_at", "prev_day", "next_at", "category", "next_day"],
)
Index(
    "complaint_repeat_dim_link_prev_idx",
    _dl.dim,
    _dl.value,
    _dl.prev_day,
    postgresql_include=["prev_at", "received_at", "next_at", "category"],
    postgresql_where=text("prev_day IS NOT NULL"),
)
Index(
    "complaint_repeat_dim_link_next_idx",
    _dl.dim,
    _dl.value,
    _dl.next_day,
    postgresql_include=["next_at", "received_day", "prev_day", "category"],
    postgresql_where=text("next_day IS NOT NULL"),
)

#: Points (kinds as :data:`REPEAT_KINDS`) per dimension, value, kind, category and local
#: months of their first and last receipt.
complaint_repeat_dim_month = Table(
    "complaint_repeat_dim_month",
    metadata,
    Column("dim", Text, primary_key=True),
    Column("value", Text, primary_key=True),
    Column("kind", SmallInteger, primary_key=True),
    Column("s_month", Date, primary_key=True),
    Column("e_month", Date, primary_key=True),
    Column("category", Text, primary_key=True),
    Column("n", BigInteger, nullable=False, server_default="0"),
)

# --- cross analysis month cells per pair (migration 0012; 0011's per dimension replaced) ---

#: The seven cross dimensions in pair order (report name -> complaint_fact column).
CROSS_PAIR_DIMENSIONS = {
    "channel": "channel",
    "category": "category",
    "product_line": "product_line",
    "department": "department",
    "priority": "priority",
    "region": "region",
    "branch": "branch_code",
}
#: The pairs ``(a, b)`` with month cells (``a`` before ``b`` in :data:`CROSS_PAIR_DIMENSIONS`):
#: the 15 pairs with product line, region or branch, i.e. not both among channel, category,
#: department and priority (those 6 pairs are per day in ``complaint_day_dims``).
CROSS_PAIRS = tuple(
    (a, b)
    for i, a in enumerate(CROSS_PAIR_DIMENSIONS)
    for b in list(CROSS_PAIR_DIMENSIONS)[i + 1 :]
    if not {a, b} <= {"channel", "category", "department", "priority"}
)
#: Complaints and resolution clocks (done, on time) per pair of :data:`CROSS_PAIRS`
#: (``pair`` = ``"<a>:<b>"``), local receipt month (its first day) and the two values
#: (``value_a`` of ``a``, ``value_b`` of ``b``; NULL is a value); kept exact by the row
#: trigger ``complaint_fact_month_pair`` in the writing transaction (a cell at 0 is deleted).
complaint_month_pair = Table(
    "complaint_month_pair",
    metadata,
    Column("pair", Text, nullable=False),
    Column("month", Date, nullable=False),
    Column("value_a", Text),
    Column("value_b", Text),
    Column("n", BigInteger, nullable=False, server_default="0"),
    Column("res_done", BigInteger, nullable=False, server_default="0"),
    Column("res_on_time", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint(
        "pair",
        "month",
        "value_a",
        "value_b",
        name="complaint_month_pair_key",
        postgresql_nulls_not_distinct=True,
    ),
)

# --- handling figures per month and pair of dimensions (migration 0014) ------------------
#
# Kept by the row trigger ``complaint_fact_pair_summary`` in the writing transaction
# (docs/analytics.md "Read model"); a row whose count reaches 0 is deleted.

#: The dimensions of the pair summaries in pair order (report name -> complaint_fact column):
#: those of the cross cells but branch (a branch's matches are few: the fact path is fast).
PAIR_SUMMARY_DIMENSIONS = {k: v for k, v in CROSS_PAIR_DIMENSIONS.items() if k != "branch"}


def pair_summary_key(dims: Iterable[str]) -> str | None:
    """The ``pair`` value of the pair summaries for two filter dimensions, or None.

    Args:
        dims: two report filter names, in any order.

    Returns:
        ``"<a>:<b>"`` with ``a`` before ``b`` in :data:`PAIR_SUMMARY_DIMENSIONS`, or None when
        there are not exactly two or one has no pair summaries (branch).
    """
    given = set(dims)
    chosen = [d for d in PAIR_SUMMARY_DIMENSIONS if d in given]
    return ":".join(chosen) if len(given) == len(chosen) == 2 else None


def _pair_key_columns() -> list[Column[Any]]:
    return [
        Column("pair", Text, nullable=False),
        Column("month", Date, nullable=False),
        Column("value_a", Text),
        Column("value_b", Text),
    ]


#: The columns of :data:`complaint_day_totals` per pair (``"<a>:<b>"``, :func:`pair_summary_key`),
#: local receipt month (its first day) and the two values (``value_a`` of ``a``; NULL is a value).
complaint_month_pair_totals = Table(
    "complaint_month_pair_totals",
    metadata,
    *_pair_key_columns(),
    *[
        Column(
            c, Numeric if c in NUMERIC_TOTALS else BigInteger, nullable=False, server_default="0"
        )
        for c in TOTALS_COLUMNS
    ],
    UniqueConstraint(
        "pair", "value_a", "value_b", "month",
        name="complaint_month_pair_totals_key", postgresql_nulls_not_distinct=True,
    ),
)  # fmt: skip
#: Complaints and compensation (minor units) per remedy, pair, month and values.
complaint_month_pair_remedy = Table(
    "complaint_month_pair_remedy",
    metadata,
    *_pair_key_columns(),
    Column("remedy", Text, nullable=False),
    Column("n", BigInteger, nullable=False, server_default="0"),
    Column("compensation", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint(
        "pair", "value_a", "value_b", "month", "remedy",
        name="complaint_month_pair_remedy_key", postgresql_nulls_not_distinct=True,
    ),
)  # fmt: skip
#: Values per measure (:data:`HIST_MEASURES`) and bucket, pair, month and values.
complaint_month_pair_hist = Table(
    "complaint_month_pair_hist",
    metadata,
    *_pair_key_columns(),
    Column("measure", Text, nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("n", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint(
        "pair", "value_a", "value_b", "month", "measure", "bucket",
        name="complaint_month_pair_hist_key", postgresql_nulls_not_distinct=True,
    ),
)  # fmt: skip

# --- handling figures per month and cell of six dimensions (migration 0015) ---------------
#
# Kept by the row trigger ``complaint_fact_cell_summary`` in the writing transaction
# (docs/analytics.md "Read model"); a row whose count reaches 0 is deleted, a cell is kept.

#: The dimensions of a cell, in the order of ``complaint_cell.dims`` (report name ->
#: complaint_fact column): those of the pair summaries.
CELL_SUMMARY_DIMENSIONS = PAIR_SUMMARY_DIMENSIONS

#: One row per combination of the six values (NULL is a value) met in the facts.
complaint_cell = Table(
    "complaint_cell",
    metadata,
    Column("cell_id", Integer, Identity(always=True), primary_key=True),
    *[Column(c, Text) for c in CELL_SUMMARY_DIMENSIONS.values()],
    Column(
        "dims",
        ARRAY(Text),
        Computed(f"ARRAY[{', '.join(CELL_SUMMARY_DIMENSIONS.values())}]::text[]", persisted=True),
    ),
    UniqueConstraint("dims", name="complaint_cell_dims_key"),
)


def _cell_key_columns(primary_key: bool = True) -> list[Column[Any]]:
    return [
        Column("cell_id", Integer, primary_key=primary_key, nullable=False),
        Column("month", Date, primary_key=primary_key, nullable=False),
    ]


#: The columns of :data:`complaint_day_totals` per cell and local receipt month (its first day).
complaint_month_cell_totals = Table(
    "complaint_month_cell_totals",
    metadata,
    *_cell_key_columns(),
    *[
        Column(
            c, Numeric if c in NUMERIC_TOTALS else BigInteger, nullable=False, server_default="0"
        )
        for c in TOTALS_COLUMNS
    ],
)
#: Complaints and compensation (minor units) per remedy, cell and month.
complaint_month_cell_remedy = Table(
    "complaint_month_cell_remedy",
    metadata,
    *_cell_key_columns(),
    Column("remedy", Text, primary_key=True),
    Column("n", BigInteger, nullable=False, server_default="0"),
    Column("compensation", BigInteger, nullable=False, server_default="0"),
)
#: Values per measure (:data:`HIST_MEASURES`) and bucket, cell and month.
complaint_month_cell_hist = Table(
    "complaint_month_cell_hist",
    metadata,
    *_cell_key_columns(primary_key=False),
    Column("measure", Text, nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("n", BigInteger, nullable=False, server_default="0"),
    # ``n`` in the key's index: a report reads a cell's rows index-only (0015).
    PrimaryKeyConstraint(
        "cell_id", "month", "measure", "bucket",
        name="complaint_month_cell_hist_pkey", postgresql_include=["n"],
    ),
)  # fmt: skip

# --- complaints in customer order, narrow (migration 0016) -----------------------------------
#
# Kept by the row trigger ``complaint_fact_customer_cell`` in the writing transaction; the
# repeat report with any value filters on the six cell dimensions reads it
# (``reports._repeats_from_customer_cells``).

#: An integer id per customer key (never deleted).
complaint_customer = Table(
    "complaint_customer",
    metadata,
    Column("customer_id", Integer, Identity(always=True), primary_key=True),
    Column("customer_key", Text, nullable=False),
    UniqueConstraint("customer_key", name="complaint_customer_key_key"),
)
#: An integer id per category label (``unclassified`` for none; never deleted).
complaint_category = Table(
    "complaint_category",
    metadata,
    Column("category_id", Integer, Identity(always=True), primary_key=True),
    Column("category", Text, nullable=False),
    UniqueConstraint("category", name="complaint_category_category_key"),
)
#: One row per complaint whose customer key, receipt instant and receipt day are known.
#: Partitioned by hash of ``customer_id`` (two partitions, ``complaint_customer_cell_p0``
#: and ``_p1``, created by the migration; keep them when autogenerating); the customer index
#: INCLUDEs the other columns but the complaint id, so the report reads it index-only in
#: customer order.
complaint_customer_cell = Table(
    "complaint_customer_cell",
    metadata,
    Column("customer_id", Integer, nullable=False),
    Column("complaint_id", UUID(as_uuid=False), nullable=False),
    Column("cell_id", Integer, nullable=False),
    Column("category_id", Integer, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("complaint_id", "customer_id", name="complaint_customer_cell_pkey"),
    postgresql_partition_by="HASH (customer_id)",
)
#: Migration 0016: the complaints without a customer key (the repeat report subtracts them
#: from the summaries' counts).
Index(
    "complaint_fact_unkeyed_idx",
    complaint_fact.c.received_day,
    postgresql_where=text("customer_key IS NULL AND received_day IS NOT NULL"),
)
Index(
    "complaint_customer_cell_customer_idx",
    complaint_customer_cell.c.customer_id,
    postgresql_include=["cell_id", "category_id", "received_at"],
)

# --- suggestion participants (migration 0013) ----------------------------------------------
#
# Kept by the row trigger ``suggestion_fact_link`` on ``suggestion_fact`` in the writing
# transaction (docs/analytics.md "Read model").

#: One row per suggestion whose customer key and receipt instant are known: the receipt
#: instant of the same customer's previous suggestion (order: receipt instant, suggestion
#: id). Participants of [from, to) = rows received in it with ``prev_at`` NULL or < from.
suggestion_link = Table(
    "suggestion_link",
    metadata,
    Column("suggestion_id", UUID(as_uuid=False), primary_key=True),
    Column("customer_key", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("prev_at", DateTime(timezone=True)),
)
Index(
    "suggestion_link_customer_idx",
    suggestion_link.c.customer_key,
    suggestion_link.c.received_at,
    suggestion_link.c.suggestion_id,
)
Index(
    "suggestion_link_received_idx",
    suggestion_link.c.received_at,
    postgresql_include=["prev_at"],
)

processed_events = processed_events_table(metadata)

#: Tables a rebuild empties before replaying (the whole model).
MODEL_TABLES = (
    complaint_fact,
    case_round_fact,
    clock_alert_fact,
    case_transition_fact,
    followup_fact,
    suggestion_fact,
    suggestion_reward_fact,
    suggestion_link,
    complaint_day_dims,
    complaint_day_totals,
    complaint_day_remedy,
    complaint_day_hist,
    complaint_day_dim_totals,
    complaint_day_dim_remedy,
    complaint_day_dim_hist,
    complaint_repeat_link,
    complaint_repeat_month,
    complaint_repeat_dim_link,
    complaint_repeat_dim_month,
    complaint_month_pair,
    complaint_month_pair_totals,
    complaint_month_pair_remedy,
    complaint_month_pair_hist,
    complaint_cell,
    complaint_month_cell_totals,
    complaint_month_cell_remedy,
    complaint_month_cell_hist,
    complaint_customer,
    complaint_category,
    complaint_customer_cell,
)


#: The row triggers on the fact tables, per table: each keeps derived tables (daily and
#: per-dimension summaries 0004/0006, repeat links 0008/0010, cross cells 0012, pair
#: summaries 0014, cell summaries 0015, customer cells 0016, suggestion links 0013) that
#: :data:`SUMMARY_BACKFILLS` recompute from the facts. A test checks this names every
#: trigger on the two tables, so that a new trigger is either added here with its backfill
#: or never turned off.
SUMMARY_TRIGGERS: dict[str, tuple[str, ...]] = {
    "complaint_fact": (
        "complaint_fact_summary", "complaint_fact_dim_summary",
        "complaint_fact_repeat_link", "complaint_fact_repeat_link_update",
        "complaint_fact_repeat_dim_link", "complaint_fact_repeat_dim_link_update",
        "complaint_fact_month_pair", "complaint_fact_month_pair_update",
        "complaint_fact_pair_summary", "complaint_fact_pair_summary_update",
        "complaint_fact_cell_summary", "complaint_fact_cell_summary_update",
        "complaint_fact_customer_cell", "complaint_fact_customer_cell_update",
    ),
    "suggestion_fact": ("suggestion_fact_link", "suggestion_fact_link_update"),
}  # fmt: skip
#: The functions recomputing every table those triggers keep (``cfp analytics-rebuild
#: --defer-summaries`` runs them after a replay with the triggers off).
SUMMARY_BACKFILLS = (
    "analytics.complaint_summary_backfill()",
    "analytics.suggestion_link_backfill()",
)
