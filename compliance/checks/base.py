"""What a check sees and what it is. Checks never run a model and never read the database:
everything they need arrives in ``CheckContext``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from compliance.geo import Position
from compliance.judgments import Judgments
from compliance.photos import ExifFacts
from compliance.settings import Thresholds
from compliance.verdicts import CheckResult, Outcome, ReasonCode


@dataclass(frozen=True, slots=True)
class PriorPhoto:
    """An earlier submission whose photo is a near-duplicate of this one (found by the store)."""

    submission_id: str
    driver_id: int | None
    submitted_at: datetime
    distance: int


@dataclass(frozen=True, slots=True)
class SiteArea:
    """The registered site an upload names, where it has a position: WGS-84 and a radius in metres."""

    code: str
    position: Position
    radius_m: float


@dataclass(frozen=True, slots=True)
class CheckContext:
    judgments: Judgments
    thresholds: Thresholds
    # Plates the reading may match: the claimed vehicle's, or the carrier's fleet when none was claimed.
    registered_plates: tuple[str, ...] = ()
    licence_given: bool = True
    driver_id: int | None = None
    submitted_at: datetime | None = None
    capture_time: datetime | None = None
    job_window: tuple[datetime, datetime] | None = None
    similar_photos: tuple[PriorPhoto, ...] = field(default=())
    # The same photo judged by a second pipeline (pipeline choice "both"), to compare field by field.
    second_opinion: Judgments | None = None
    # The named site's area (None: no site, free text, or a site without a position) and what the
    # photo's EXIF says of where and how it was made (None: not read, e.g. an ad-hoc check).
    site: SiteArea | None = None
    exif: ExifFacts | None = None


class Check(Protocol):
    name: str

    def run(self, ctx: CheckContext) -> CheckResult | None:
        """One result, or None where the check does not apply (e.g. no job window given)."""
        ...


def passed(check: str, detail: str = "") -> CheckResult:
    return CheckResult(check=check, outcome=Outcome.PASS, detail=detail)


def review(check: str, reason: ReasonCode, detail: str) -> CheckResult:
    return CheckResult(check=check, outcome=Outcome.REVIEW, reason=reason, detail=detail)


def failed(check: str, reason: ReasonCode, detail: str) -> CheckResult:
    return CheckResult(check=check, outcome=Outcome.FAIL, reason=reason, detail=detail)
