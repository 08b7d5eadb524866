"""Supervisors' overrides as labelled training examples (issue 4 "Deliver" 6).

Every override stores the complaint's (redacted) text with the corrected category and
product line in ``routing.labelled_example``. The training command reads them as extra
examples: ``cfp train-classifier --with-overrides`` exports the table to a CSV next to the
new artifact (:func:`export_csv`) and passes the rows to
``services.routing.classifier.train.train(..., extra_examples=...)``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing import tables
from shared.db import make_engine, make_sessionmaker

CSV_COLUMNS = ("text", "category", "product_line")
"""Columns of the examples CSV (the first three of any wider file are what training uses)."""

ExtraExample = tuple[str, str, str]
"""(text, category code, product-line code)."""


async def fetch(*, session: AsyncSession) -> list[ExtraExample]:
    """Return every labelled example, oldest first.

    Returns:
        ``(text, category, product_line)`` per overridden complaint (the latest override).
    """
    e = tables.labelled_example
    rows = (
        await session.execute(
            select(e.c.text, e.c.category, e.c.product_line).order_by(
                e.c.labelled_at, e.c.complaint_id
            )
        )
    ).all()
    return [(r.text, r.category, r.product_line) for r in rows]


def write_csv(path: Path, examples: list[ExtraExample]) -> None:
    """Write examples as UTF-8 CSV with the header ``text,category,product_line``.

    Raises:
        OSError: the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(examples)


def read_csv(path: Path) -> list[ExtraExample]:
    """Read an examples CSV written by :func:`write_csv` (or by hand, same header).

    Rows with an empty text are skipped; codes are checked by the training command.

    Raises:
        OSError: the file cannot be read.
        ValueError: the header lacks ``text``, ``category`` or ``product_line``.
    """
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        return [
            (row["text"], row["category"].strip(), row["product_line"].strip())
            for row in reader
            if row["text"].strip()
        ]


async def export_csv(database_url: str, path: Path) -> list[ExtraExample]:
    """Read the labelled examples from the routing schema and write them to ``path``.

    Args:
        database_url: SQLAlchemy URL of the platform database (asyncpg).
        path: the CSV to write.

    Returns:
        The examples written.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database cannot be read.
        OSError: the file cannot be written.
    """
    engine = make_engine(database_url, pool_size=1, application_name="routing-export")
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            examples = await fetch(session=session)
    finally:
        await engine.dispose()
    write_csv(path, examples)
    return examples
