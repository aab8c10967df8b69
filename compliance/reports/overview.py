"""The overview's numbers: five GROUP BY queries over the submissions of one period, run side by side.

No query loads submissions into Python: each returns at most a few thousand groups, which are
summed here into typed results. The current verdict's outcome, decider and reasons, the two
pipelines' agreement and what reviewers said of plate readings are read from columns and tables
the store keeps in step with each verdict, through covering indexes (see migration 0005).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.agreement import FIELDS
from compliance.reports.period import ReportZone
from compliance.store.models import MACHINE, Carrier, Driver, PlateReview, Submission, SubmissionReason
from compliance.store.pages import SubmissionFilter
from compliance.verdicts import Outcome

TOP = 10
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OutcomeCounts:
    passed: int = 0
    failed: int = 0
    review: int = 0
    pending: int = 0  # no verdict yet (received, queued, processing or failed to judge)

    @property
    def decided(self) -> int:
        return self.passed + self.failed + self.review

    @property
    def total(self) -> int:
        return self.decided + self.pending

    def rate(self, outcome: Outcome) -> float | None:
        """Share of the decided submissions with ``outcome``; None when none was decided."""
        if not self.decided:
            return None
        count = {Outcome.PASS: self.passed, Outcome.FAIL: self.failed, Outcome.REVIEW: self.review}[outcome]
        return count / self.decided

    def __add__(self, other: OutcomeCounts) -> OutcomeCounts:
        return OutcomeCounts(
            self.passed + other.passed,
            self.failed + other.failed,
            self.review + other.review,
            self.pending + other.pending,
        )

    @classmethod
    def of(cls, outcome: Outcome | str | None, count: int) -> OutcomeCounts:
        if outcome is None:
            return cls(pending=count)
        outcome = Outcome(outcome)
        if outcome is Outcome.PASS:
            return cls(passed=count)
        if outcome is Outcome.FAIL:
            return cls(failed=count)
        return cls(review=count)


@dataclass(frozen=True, slots=True)
class Day:
    day: str  # YYYY-MM-DD in the report zone
    counts: OutcomeCounts


@dataclass(frozen=True, slots=True)
class Group:
    """One carrier, site (within its carrier) or driver, and its submissions' outcomes."""

    label: str
    counts: OutcomeCounts
    carrier: str  # the carrier's code
    site: str | None = None
    driver_id: int | None = None


@dataclass(frozen=True, slots=True)
class Agreement:
    compared: int  # submissions both pipelines judged
    agreed: int
    disagreements: dict[str, int]  # field -> submissions on which the pipelines disagree about it

    @property
    def rate(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


@dataclass(frozen=True, slots=True)
class Turnaround:
    """Median time from upload to the current verdict, for the machine's and for people's."""

    machine_median_s: float | None
    machine_count: int
    review_median_s: float | None
    review_count: int


@dataclass(frozen=True, slots=True)
class Accuracy:
    key: str
    read: int  # reviewed submissions
    correct: int  # the reading the reviewer saw and let stand

    @property
    def rate(self) -> float | None:
        return self.correct / self.read if self.read else None


@dataclass(frozen=True, slots=True)
class PlateAccuracy:
    by_colour: list[Accuracy]
    by_province: list[Accuracy]
    overall: Accuracy


@dataclass(frozen=True)
class Overview:
    since: datetime
    until: datetime
    totals: OutcomeCounts
    days: list[Day]
    reasons: list[tuple[str, int]]
    carriers: list[Group]
    sites: list[Group]
    drivers: list[Group]  # those with the most failures
    agreement: Agreement
    turnaround: Turnaround
    plates: PlateAccuracy
    reviewed: int = 0
    driver_count: int = 0
    site_count: int = 0
    notes: list[str] = field(default_factory=list)


# The passes run side by side, each on a connection of its own (SQLite's WAL and PostgreSQL both
# serve concurrent readers; the drivers release the GIL while the database works).
_PASSES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="overview")


def overview(
    sessions: Callable[[], Session],
    zone: ReportZone,
    *,
    since: datetime,
    until: datetime,
    carrier_id: int | None = None,
) -> Overview:
    """Everything the overview page shows for the submissions uploaded in [since, until) (of one
    carrier, or of all). ``sessions`` makes a (read-only) session per pass."""

    def run(work: Callable[[Session, str], T]) -> Future[T]:
        def in_session() -> T:
            with sessions() as session:
                return work(session, session.get_bind().dialect.name)

        return _PASSES.submit(in_session)

    # Seeking the period on the created_at index is right for the day-by-day pass; the other
    # passes read better in another index's order (see _walked).
    seek = SubmissionFilter(carrier_id=carrier_id, since=since, until=until).where()
    timeline = run(lambda s, dialect: _timeline(s, seek, zone, dialect))
    reasons = run(lambda s, dialect: _reasons(s, carrier_id=carrier_id, since=since, until=until))
    groups = run(lambda s, dialect: _groups(s, _walked(carrier_id, since, until, dialect)))
    turnaround = run(
        lambda s, dialect: _turnaround(s, _walked(carrier_id, since, until, dialect, seek_carrier=False), dialect)
    )
    plates = run(lambda s, dialect: _plate_accuracy(s, carrier_id=carrier_id, since=since, until=until))
    days, reviewed, agreement = timeline.result()
    carriers, sites, drivers, driver_count, site_count = groups.result()
    return Overview(
        since=since,
        until=until,
        totals=sum((d.counts for d in days), OutcomeCounts()),
        days=days,
        reasons=reasons.result(),
        carriers=carriers,
        sites=sites,
        drivers=drivers,
        agreement=agreement,
        turnaround=turnaround.result(),
        plates=plates.result(),
        reviewed=reviewed,
        driver_count=driver_count,
        site_count=site_count,
    )


def _walked(
    carrier_id: int | None, since: datetime, until: datetime, dialect: str, *, seek_carrier: bool = True
) -> list[sa.ColumnElement[bool]]:
    """The period (and carrier, unless ``seek_carrier``) as a filter that SQLite checks entry by
    entry instead of seeking it on the created_at index: wrapped in likely() (which returns its
    argument) a column is no index key, so the planner walks the covering index that fits the
    query's GROUP BY (no sort) or starts from the smaller table. PostgreSQL plans these well."""

    def unindexed(column: sa.ColumnElement[object]) -> sa.ColumnElement[object]:
        return sa.func.likely(column, type_=column.type) if dialect == "sqlite" else column

    created = unindexed(Submission.created_at)
    clauses = [created >= since, created < until]
    if carrier_id is not None:
        clauses.append((Submission.carrier_id if seek_carrier else unindexed(Submission.carrier_id)) == carrier_id)
    return clauses


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _timeline(
    session: Session, clauses: list[sa.ColumnElement[bool]], zone: ReportZone, dialect: str
) -> tuple[list[Day], int, Agreement]:
    """Outcomes by day, people's verdicts and the pipelines' agreement in one pass over the period's
    entries of ix_submissions_created_report (it covers every column read)."""
    day = zone.day_of(Submission.created_at, dialect).label("day")
    outcome = Submission.outcome
    by_person = sa.and_(Submission.decided_by.is_not(None), Submission.decided_by != MACHINE)
    rows = session.execute(
        sa.select(
            day,
            _count_if(outcome == Outcome.PASS),
            _count_if(outcome == Outcome.FAIL),
            _count_if(outcome == Outcome.REVIEW),
            _count_if(outcome.is_(None)),
            _count_if(by_person),
            _count_if(Submission.pipelines_agree.is_not(None)),
            _count_if(Submission.pipelines_agree.is_(True)),
            *(_count_if(Submission.pipelines_disagree_on.like(f"%{f}%")) for f in FIELDS),
        )
        .where(*clauses)
        .group_by(day)
        .order_by(day)
    )
    days = []
    reviewed = compared = agreed = 0
    fields: Counter[str] = Counter({f: 0 for f in FIELDS})
    for day_text, passed, failed, review, pending, people, both, same, *apart in rows:
        days.append(Day(day_text, OutcomeCounts(passed or 0, failed or 0, review or 0, pending or 0)))
        reviewed += people or 0
        compared += both or 0
        agreed += same or 0
        for name, n in zip(FIELDS, apart, strict=True):
            fields[name] += n or 0
    return days, reviewed, Agreement(compared, agreed, dict(fields))


def _reasons(session: Session, *, carrier_id: int | None, since: datetime, until: datetime) -> list[tuple[str, int]]:
    """The commonest reason codes of current verdicts, from ix_submission_reasons_report alone."""
    count = sa.func.count().label("n")
    query = (
        sa.select(SubmissionReason.reason, count)
        .where(SubmissionReason.created_at >= since, SubmissionReason.created_at < until)
        .group_by(SubmissionReason.reason)
        .order_by(count.desc(), SubmissionReason.reason)
        .limit(TOP)
    )
    if carrier_id is not None:
        query = query.where(SubmissionReason.carrier_id == carrier_id)
    return [(reason, n) for reason, n in session.execute(query)]


def _groups(
    session: Session, clauses: list[sa.ColumnElement[bool]]
) -> tuple[list[Group], list[Group], list[Group], int, int]:
    """Carriers, sites and the drivers with the most failures, from one walk of
    ix_submissions_groups_report in its own order (no sort)."""
    outcome_text = sa.type_coerce(Submission.outcome, sa.String())  # plain text: no enum per row
    query = (
        sa.select(Submission.carrier_id, Submission.site, Submission.driver_id, outcome_text, sa.func.count())
        .where(*clauses)
        .group_by(Submission.carrier_id, Submission.site, Submission.driver_id, Submission.outcome)
    )
    # Plain counters while summing (thousands of groups), typed results at the end.
    slot = {None: 3, Outcome.PASS.value: 0, Outcome.FAIL.value: 1, Outcome.REVIEW.value: 2}
    by_carrier: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    by_site: dict[tuple[int, str | None], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    by_driver: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for carrier_id, site, driver_id, outcome, count in session.execute(query):
        i = slot[outcome]
        by_carrier[carrier_id][i] += count
        by_site[(carrier_id, site)][i] += count
        by_driver[driver_id][i] += count

    carrier_counts = {k: OutcomeCounts(*v) for k, v in by_carrier.items()}
    site_counts = {k: OutcomeCounts(*v) for k, v in by_site.items()}
    driver_counts = {k: OutcomeCounts(*v) for k, v in by_driver.items()}
    codes = dict(session.execute(sa.select(Carrier.id, Carrier.code).where(Carrier.id.in_(list(by_carrier)))).all())
    several = len(by_carrier) > 1
    carriers = [
        Group(codes[cid], c, codes[cid])
        for cid, c in sorted(carrier_counts.items(), key=lambda kv: (-kv[1].total, codes[kv[0]]))
    ]
    sites = [
        Group((f"{codes[cid]} · " if several else "") + (site or "(no site)"), c, codes[cid], site=site)
        for (cid, site), c in sorted(
            site_counts.items(), key=lambda kv: (-kv[1].total, codes[kv[0][0]], kv[0][1] or "")
        )
    ]
    worst = sorted(driver_counts.items(), key=lambda kv: (-kv[1].failed, -kv[1].total, kv[0]))[:TOP]
    found = session.scalars(sa.select(Driver).where(Driver.id.in_([driver_id for driver_id, _ in worst])))
    names = {d.id: d for d in found}
    drivers = []
    for driver_id, c in worst:
        driver = names[driver_id]
        carrier = codes[driver.carrier_id]
        label = f"{driver.name} ({driver.external_ref or driver.id})" + (f" · {carrier}" if several else "")
        drivers.append(Group(label, c, carrier, driver_id=driver_id))
    return carriers, sites, drivers, len(by_driver), len(by_site)


def _turnaround(session: Session, clauses: list[sa.ColumnElement[bool]], dialect: str) -> Turnaround:
    """Median seconds from upload to the current verdict, the machine's and people's apart."""
    by_machine = Submission.decided_by == MACHINE
    if dialect == "postgresql":
        median = sa.func.percentile_cont(0.5).within_group(Submission.verdict_seconds)
        rows = session.execute(
            sa.select(by_machine, median, sa.func.count())
            .where(*clauses, Submission.verdict_seconds.is_not(None))
            .group_by(by_machine)
        )
        found = {bool(machine): (float(value), count) for machine, value, count in rows}
        machine_median, machine_count = found.get(True, (None, 0))
        people_median, people_count = found.get(False, (None, 0))
        return Turnaround(machine_median, machine_count, people_median, people_count)
    # SQLite has no percentile: a histogram by whole second, read in the order of
    # ix_submissions_turnaround_report (no sort), its median found here.
    rows = session.execute(
        sa.select(Submission.verdict_seconds, _count_if(by_machine), sa.func.count())
        .where(*clauses, Submission.verdict_seconds.is_not(None))
        .group_by(Submission.verdict_seconds)
    )
    machine: list[tuple[int, int]] = []
    people: list[tuple[int, int]] = []
    for seconds, by_machine_count, count in rows:
        if by_machine_count:
            machine.append((seconds, by_machine_count))
        if count - by_machine_count:
            people.append((seconds, count - by_machine_count))
    return Turnaround(_median(machine), sum(c for _, c in machine), _median(people), sum(c for _, c in people))


def _median(histogram: Iterable[tuple[int, int]]) -> float | None:
    values = sorted(histogram)
    total = sum(c for _, c in values)
    if not total:
        return None
    # The median of the expanded list, without expanding it.
    wanted = [(total - 1) // 2, total // 2]
    found: list[int] = []
    seen = 0
    for value, count in values:
        while len(found) < 2 and wanted[len(found)] < seen + count:
            found.append(value)
        seen += count
    return statistics.fmean(found)


def _plate_accuracy(session: Session, *, carrier_id: int | None, since: datetime, until: datetime) -> PlateAccuracy:
    """How often the plate reading a person saw was right, by plate colour and province (what
    the store keeps in plate_reviews beside each person's current verdict)."""
    query = (
        sa.select(
            PlateReview.colour, PlateReview.province, sa.func.count(), _count_if(PlateReview.read_right.is_(True))
        )
        .where(PlateReview.created_at >= since, PlateReview.created_at < until)
        .group_by(PlateReview.colour, PlateReview.province)
    )
    if carrier_id is not None:
        query = query.where(PlateReview.carrier_id == carrier_id)
    by_colour: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_province: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for colour, province, count, right in session.execute(query):
        for table, key in ((by_colour, colour), (by_province, province)):
            table[key][0] += count
            table[key][1] += int(right or 0)

    def listed(table: dict[str, list[int]]) -> list[Accuracy]:
        return [Accuracy(k, n, c) for k, (n, c) in sorted(table.items(), key=lambda kv: (-kv[1][0], kv[0]))]

    total = sum(n for n, _ in by_colour.values())
    right_total = sum(c for _, c in by_colour.values())
    return PlateAccuracy(listed(by_colour), listed(by_province), Accuracy("all", total, right_total))
