"""The CSV and XLSX exports hold whatever text an upload carried as plain text: no formula, however
it is written (full-width, after spaces), and no control character that would break the file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
from sqlalchemy.orm import Session

from compliance.reports.exports import csv_chunks, write_xlsx
from compliance.reports.period import ReportZone
from compliance.store.pages import SubmissionFilter
from tests.store.samples import Fleet, submit

CONTROLS = "depot\x01\x1b[31m\x07 7"
# site as uploaded -> as a spreadsheet must show it
SITES = {
    "＝HYPERLINK('http://evil')": "'＝HYPERLINK('http://evil')",
    " =1+1": "' =1+1",
    "\u3000＋1": "'\u3000＋1",
    "＠SUM(A1)": "'＠SUM(A1)",
    "-2+3": "'-2+3",
    CONTROLS: "depot[31m 7",
    "合肥 depot": "合肥 depot",
}


def _stored(session: Session, fleet: Fleet) -> SubmissionFilter:
    for i, site in enumerate(SITES):
        submit(session, fleet, site=site, photo_sha256=f"{i + 1:064x}")
    session.flush()
    return SubmissionFilter(carrier_id=fleet.carrier_id)


def test_csv_cells_are_text_without_controls(session: Session, fleet: Fleet) -> None:
    body = b"".join(csv_chunks(session, _stored(session, fleet), ReportZone.named("UTC")))
    table = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert sorted(row["site"] for row in table) == sorted(SITES.values())


def test_xlsx_holds_every_row_as_text(session: Session, fleet: Fleet, tmp_path: Path) -> None:
    path = tmp_path / "verdicts.xlsx"
    assert write_xlsx(session, _stored(session, fleet), ReportZone.named("UTC"), path) == len(SITES)
    sheet = openpyxl.load_workbook(path, read_only=True)["verdicts"]
    header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert sorted(r[header.index("site")] for r in body) == sorted(SITES.values())
