"""The verdict table for any filter, as CSV (streamed) or XLSX (openpyxl, write-only).

Rows are read in keyset batches, newest first, so an export of 100,000 submissions never holds
them all. Text that a spreadsheet would run as a formula is kept as text.

A ``Layout`` says under which headers: ``CODES`` (the column names carriers' scripts read, the
default here) or people's words in their language with a column explaining the reason codes
(compliance.messages) after the codes themselves; the dashboard words the headers.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlalchemy.orm import Session

from compliance.messages import Language, message
from compliance.reports.period import ReportZone
from compliance.store.models import Carrier, Driver, Submission, SubmissionReason, Vehicle
from compliance.store.pages import SubmissionFilter

BATCH = 2000
COLUMNS = (
    "submission",
    "created",
    "carrier",
    "site",
    "driver_ref",
    "driver",
    "plate",
    "status",
    "verdict",
    "reasons",
    "decided_by",
    "decided",
    "pipelines_agree",
    "disagree_on",
    "job",
)
EXPLAINED = "reason_messages"  # the explanations' column, after "reasons", when a layout has one
# Times: shown in the report zone's wall-clock time, which the header names.
TIMES = ("created", "decided")
# The headers' font in an XLSX: DengXian, the CJK font Excel (2016 and later) and WPS default to
# for Chinese; other cells keep the default font, for which both fall back to a CJK font.
HEADER_FONT = Font(name="等线", bold=True)


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns of an export and their headers."""

    headers: dict[str, str] = field(default_factory=dict)  # column -> header; a column not named: itself
    explain: Language | None = None  # the reasons explained in this language, in a column of their own
    zone_name: str = ""  # named in the time columns' headers; "" -> "UTC+0800" for XLSX, nothing for CSV
    sheet: str = "verdicts"

    @property
    def columns(self) -> tuple[str, ...]:
        if self.explain is None:
            return COLUMNS
        at = COLUMNS.index("reasons") + 1
        return (*COLUMNS[:at], EXPLAINED, *COLUMNS[at:])

    def header(self, column: str, zone: str = "") -> str:
        text = self.headers.get(column, column)
        zone = self.zone_name or zone
        return f"{text} ({zone})" if column in TIMES and zone else text

    def value(self, row: ExportRow, column: str) -> object:
        if column == EXPLAINED:
            language = self.explain or "en"
            return "; ".join(message(code, language) for code in row.reasons.split(";") if code)
        return getattr(row, column)


CODES = Layout()

# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets (OWASP: CSV injection),
# also after leading spaces and in full-width form (＝, ＋, －, ＠), which spreadsheets fold.
_FORMULA_START = ("=", "+", "-", "@")
# Control characters: an XLSX cannot hold them (one made the whole export fail) and a CSV reader
# may split on them. Whatever reaches an export is stripped of them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ExportRow:
    submission: str
    created: datetime
    carrier: str
    site: str
    driver_ref: str
    driver: str
    plate: str
    status: str
    verdict: str
    reasons: str
    decided_by: str
    decided: datetime | None
    pipelines_agree: str
    disagree_on: str
    job: str


def rows(session: Session, where: SubmissionFilter, zone: ReportZone) -> Iterator[ExportRow]:
    """Every submission ``where`` selects, newest first, in batches of ``BATCH``."""
    after: tuple[datetime, str] | None = None
    while True:
        query = (
            sa.select(Submission, Carrier.code, Driver.name, Driver.external_ref, Vehicle.registered_plate)
            .join(Carrier, Carrier.id == Submission.carrier_id)
            .join(Driver, Driver.id == Submission.driver_id)
            .outerjoin(Vehicle, Vehicle.id == Submission.vehicle_id)
            .where(*where.where())
            .order_by(Submission.created_at.desc(), Submission.id.desc())
            .limit(BATCH)
        )
        if after is not None:
            query = query.where(sa.tuple_(Submission.created_at, Submission.id) < sa.tuple_(*after))
        batch = session.execute(query).all()
        if not batch:
            return
        reasons: dict[str, list[str]] = defaultdict(list)
        for submission_id, reason in session.execute(
            sa.select(SubmissionReason.submission_id, SubmissionReason.reason)
            .where(SubmissionReason.submission_id.in_([row[0].id for row in batch]))
            .order_by(SubmissionReason.reason)
        ):
            reasons[submission_id].append(reason)
        for sub, carrier, driver, ref, plate in batch:
            yield ExportRow(
                submission=sub.id,
                created=zone.local(sub.created_at),
                carrier=carrier,
                site=sub.site or "",
                driver_ref=ref or "",
                driver=driver,
                plate=sub.claimed_plate or plate or "",
                status=sub.status.value,
                verdict=sub.outcome.value if sub.outcome else "",
                reasons=";".join(reasons.get(sub.id, [])),
                decided_by=sub.decided_by or "",
                decided=zone.local(sub.decided_at) if sub.decided_at else None,
                pipelines_agree="" if sub.pipelines_agree is None else ("yes" if sub.pipelines_agree else "no"),
                disagree_on=sub.pipelines_disagree_on or "",
                job=sub.job_id or "",
            )
        session.expunge_all()  # the batch is written; do not keep it in the identity map
        last = batch[-1][0]
        after = (last.created_at, last.id)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return _safe_text(str(value))


def _safe_text(text: str) -> str:
    """Text a spreadsheet shows as text: no control characters, and no formula, however written."""
    text = _CONTROL.sub("", text)
    folded = unicodedata.normalize("NFKC", text).lstrip()
    return "'" + text if folded.startswith(_FORMULA_START) else text


def csv_chunks(session: Session, where: SubmissionFilter, zone: ReportZone, layout: Layout = CODES) -> Iterator[bytes]:
    """The CSV as UTF-8 chunks (with a byte-order mark, so Excel on a Chinese Windows reads it as
    UTF-8, not as GBK)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    columns = layout.columns
    writer.writerow([_safe_text(layout.header(c)) for c in columns])
    for count, row in enumerate(rows(session, where, zone), start=1):
        writer.writerow([_cell_text(layout.value(row, c)) for c in columns])
        if count % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def write_xlsx(session: Session, where: SubmissionFilter, zone: ReportZone, path: Path, layout: Layout = CODES) -> int:
    """Write the XLSX to ``path``; returns the number of rows."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(layout.sheet)
    sheet.freeze_panes = "A2"
    offset = f"UTC{zone.local(datetime(2000, 1, 1, tzinfo=zone.tzinfo)).strftime('%z')}"
    columns = layout.columns
    headers = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=_safe_text(layout.header(column, offset)))
        cell.data_type = "s"
        if layout is not CODES:
            cell.font = HEADER_FONT
        headers.append(cell)
    sheet.append(headers)
    count = 0
    for row in rows(session, where, zone):
        cells = []
        for column in columns:
            value = layout.value(row, column)
            if isinstance(value, datetime):
                # Excel keeps no time zone: the report zone's wall-clock time, named in the header.
                cell = WriteOnlyCell(sheet, value=value.replace(tzinfo=None))
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            else:
                cell = WriteOnlyCell(sheet, value=_safe_text(str(value)) if isinstance(value, str) else value)
                cell.data_type = "s"  # never a formula, whatever the text starts with
            cells.append(cell)
        sheet.append(cells)
        count += 1
    book.save(path)
    return count
