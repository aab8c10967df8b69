"""What the API takes and gives, as pydantic models (they make the OpenAPI spec at ``/docs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from compliance.judgments import CascadeStep, PlateColor, VehicleKind
from compliance.messages import Language, messages
from compliance.service.audits import pipeline_choices
from compliance.store.models import (
    AuditJob,
    Driver,
    Site,
    Submission,
    Vehicle,
    VerdictRecord,
    Webhook,
    WebhookDelivery,
)
from compliance.store.models import SubmissionStatus as Status
from compliance.verdicts import Corrections, Outcome, ReasonCode


def links(status: int, **targets: tuple[str, str, str]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose answer names what other routes take: OpenAPI links, by
    name, to (method, path, the path parameter the answer's ``id`` fills). Clients, and the stateful
    API tests, follow them from the resource a POST made to reading, reviewing or deleting it."""

    def ref(method: str, path: str) -> str:
        return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method

    return {
        "responses": {
            str(status): {
                "links": {
                    name: {"operationRef": ref(method, path), "parameters": {parameter: "$response.body#/id"}}
                    for name, (method, path, parameter) in targets.items()
                }
            }
        }
    }


# A pipeline choice, listed in the spec as the choices the registry holds when the app is built
# (multistage, mllm, both, cascade, and any plug-in registered before). The service checks the value,
# so an unknown one is its 422 naming the choices, and a plug-in registered later is still accepted.
PipelineChoice = Annotated[str, WithJsonSchema({"type": "string", "enum": list(pipeline_choices())})]

# Ids as the database keeps them (32-bit integers), written as JSON integers: strict, so that true
# is not read as driver 1, nor "7" as 7.
DbId = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]


class Error(BaseModel):
    code: str = Field(description="stable, for programs: e.g. photo_corrupt, unknown_reference")
    message: str = Field(description="one line, for people")
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: Error


# Submissions


class Accepted(BaseModel):
    id: str
    status: Status
    created: bool = Field(description="false when the Idempotency-Key named an earlier upload, returned instead")


class PrecheckProblem(BaseModel):
    code: str = Field(description="stable, for programs: e.g. PHOTO_TOO_DARK, NO_FACE, NO_READABLE_PLATE")
    zh: str = Field(description="what to fix, in Chinese, for the driver")
    en: str = Field(description="the same in English")


class PrecheckOut(BaseModel):
    ok: bool = Field(description="true when nothing needs a retake (the verdict is still decided after the upload)")
    problems: list[PrecheckProblem] = Field(description="what to fix by taking the photo again, most basic first")


# The codes are for programs and never change; their explanations are for people, in one language.
REASONS = "stable reason codes, for programs: e.g. PLATE_MISMATCH, FACE_UNCERTAIN"
REASON_MESSAGES = (
    "each reason's explanation, in the order of `reasons`, in the language the request's "
    "Accept-Language asks for (English by default; any zh gives Simplified Chinese)"
)


class VerdictOut(BaseModel):
    id: int
    outcome: Outcome
    reasons: list[str] = Field(description=REASONS)
    reason_messages: list[str] = Field(description=REASON_MESSAGES)
    decided_at: datetime
    decided_by: str
    pipeline: str
    model_version: str
    policy_version: str
    current: bool
    note: str | None = None
    corrections: dict[str, Any] | None = None
    results: list[dict[str, Any]] | None = None
    cascade: CascadeStep | None = Field(
        None, description="pipeline cascade only: the path taken (settled_by_baseline or escalated) and why"
    )

    @classmethod
    def of(cls, v: VerdictRecord, *, results: bool = False, language: Language = "en") -> VerdictOut:
        # The path a cascade took is kept with the judgments the verdict was decided from.
        step = v.judgment.data.get("provenance", {}).get("cascade") if v.judgment is not None else None
        return cls(
            id=v.id,
            outcome=v.outcome,
            reasons=list(v.reasons),
            reason_messages=messages(v.reasons, language),
            decided_at=v.created_at,
            decided_by=v.decided_by,
            pipeline=v.pipeline,
            model_version=v.model_version,
            policy_version=v.policy_version,
            current=v.is_current,
            note=v.note,
            corrections=v.corrections,
            results=list(v.results) if results else None,
            cascade=CascadeStep.model_validate(step) if step else None,
        )


class JudgmentsOut(BaseModel):
    pipeline: str
    model_version: str
    created_at: datetime
    judgments: dict[str, Any]


class SubmissionSummary(BaseModel):
    id: str
    status: Status
    outcome: Outcome | None
    reasons: list[str] = Field(description="the current verdict's " + REASONS)
    reason_messages: list[str] = Field(description=REASON_MESSAGES)
    driver_id: int
    vehicle_id: int | None
    plate: str | None
    job_id: str | None
    site: str | None
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, s: Submission, language: Language = "en") -> SubmissionSummary:
        current = s.current_verdict
        reasons = list(current.reasons) if current else []
        return cls(
            id=s.id,
            status=s.status,
            outcome=s.outcome,
            reasons=reasons,
            reason_messages=messages(reasons, language),
            driver_id=s.driver_id,
            vehicle_id=s.vehicle_id,
            plate=s.claimed_plate,
            job_id=s.job_id,
            site=s.site,
            created_at=s.created_at,
            decided_at=s.decided_at,
        )


class SubmissionDetail(SubmissionSummary):
    pipeline: str | None
    source: str
    capture_time: str | None = Field(description="EXIF time as the camera wrote it (with its offset if it gave one)")
    gps_lat: float | None = Field(None, description="where the phone says the photo was taken (EXIF GPS, WGS-84)")
    gps_lon: float | None = None
    gps_time: datetime | None = Field(None, description="the GPS fix's time, where the phone wrote one")
    exif_findings: dict[str, Any] | None = Field(
        None, description="EXIF Software, camera make and model, whether the GPS block was unreadable"
    )
    job_start: datetime | None
    job_end: datetime | None
    attempts: int
    last_error: str | None
    updated_at: datetime
    verdict: VerdictOut | None = Field(description="the current verdict")
    history: list[VerdictOut] = Field(description="every verdict, oldest first")
    judgments: list[JudgmentsOut] = Field(description="each pipeline's judgments, per model version")

    @classmethod
    def of(cls, s: Submission, language: Language = "en") -> SubmissionDetail:  # type: ignore[override]
        summary = SubmissionSummary.of(s, language)
        current = s.current_verdict
        return cls(
            **summary.model_dump(),
            pipeline=s.pipeline,
            source=s.source.value,
            capture_time=s.captured_at.isoformat() if s.captured_at else None,
            gps_lat=s.gps_latitude,
            gps_lon=s.gps_longitude,
            gps_time=s.gps_time,
            exif_findings=s.exif_findings,
            job_start=s.job_start,
            job_end=s.job_end,
            attempts=s.attempts,
            last_error=s.last_error,
            updated_at=s.updated_at,
            verdict=VerdictOut.of(current, results=True, language=language) if current else None,
            history=[VerdictOut.of(v, language=language) for v in s.verdicts],
            judgments=[
                JudgmentsOut(
                    pipeline=j.pipeline, model_version=j.model_version, created_at=j.created_at, judgments=j.data
                )
                for j in s.judgments
            ],
        )


class SubmissionPageOut(BaseModel):
    items: list[SubmissionSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")
    total: int | None = Field(None, description="how many match, when asked with ?count=true")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    note: str = Field(min_length=1, max_length=2000, description="why the machine's verdict is overridden")
    reasons: list[ReasonCode] = Field(default_factory=list, max_length=32)
    corrections: Corrections | None = None


# Registry


class DriverOut(BaseModel):
    id: int
    name: str
    ref: str | None
    has_licence: bool
    created_at: datetime

    @classmethod
    def of(cls, d: Driver) -> DriverOut:
        return cls(
            id=d.id, name=d.name, ref=d.external_ref, has_licence=d.licence_sha256 is not None, created_at=d.created_at
        )


class VehicleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plate: str = Field(min_length=1, max_length=32, description="registered plate, e.g. 京A12345")
    color: PlateColor | None = None
    kind: VehicleKind | None = None


class VehicleOut(BaseModel):
    id: int
    plate: str
    color: str | None
    kind: str | None
    created_at: datetime

    @classmethod
    def of(cls, v: Vehicle) -> VehicleOut:
        return cls(id=v.id, plate=v.registered_plate, color=v.plate_color, kind=v.kind, created_at=v.created_at)


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=128, description="what an upload's `site` names, e.g. SH-JD")
    name: str = Field(min_length=1, max_length=200)
    lat: float | None = Field(None, ge=-90, le=90, description="latitude in decimal degrees, in `datum`")
    lon: float | None = Field(None, ge=-180, le=180, description="longitude in decimal degrees, in `datum`")
    radius_m: float | None = Field(None, gt=0, le=100_000, description="default 500 where a position is given")
    datum: Literal["wgs84", "gcj02"] = Field(
        "wgs84", description="gcj02: as Chinese map apps show it; kept converted to WGS-84"
    )


class SiteOut(BaseModel):
    id: int
    code: str
    name: str
    lat: float | None = Field(description="WGS-84")
    lon: float | None = Field(description="WGS-84")
    radius_m: float | None
    created_at: datetime

    @classmethod
    def of(cls, s: Site) -> SiteOut:
        return cls(
            id=s.id,
            code=s.code,
            name=s.name,
            lat=s.latitude,
            lon=s.longitude,
            radius_m=s.radius_m,
            created_at=s.created_at,
        )


class SiteList(BaseModel):
    items: list[SiteOut]


class RegistryPage(BaseModel):
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last")


class DriverPage(RegistryPage):
    items: list[DriverOut]


class VehiclePage(RegistryPage):
    items: list[VehicleOut]


# Audits


def _written_time(value: Any) -> Any:
    """A time in a JSON body is written as the spec says, a date-time string: a number is refused
    rather than read as seconds since 1970 (pydantic's lax reading)."""
    if isinstance(value, int | float):
        raise ValueError("a date-time string is expected, e.g. 2026-11-25T08:00:00+08:00")
    return value


WrittenTime = Annotated[AwareDatetime, BeforeValidator(_written_time)]


class AuditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: WrittenTime | None = Field(None, description="submissions created at or after (with a UTC offset)")
    until: WrittenTime | None = Field(None, description="… and before (with a UTC offset)")
    driver_ids: list[DbId] = Field(default_factory=list, max_length=1000)
    vehicle_ids: list[DbId] = Field(default_factory=list, max_length=1000)
    pipeline: PipelineChoice | None = Field(None, description="default: the deployment's pipeline")


class TransitionOut(BaseModel):
    from_: Outcome | None = Field(alias="from")
    to: Outcome | None
    count: int

    model_config = ConfigDict(populate_by_name=True)


class AuditDiff(BaseModel):
    changed: int = Field(description="items whose outcome or reasons changed")
    unchanged: int
    transitions: list[TransitionOut] = Field(description="outcome changes, most common first")
    reasons_added: dict[str, int]
    reasons_removed: dict[str, int]


class AuditOut(BaseModel):
    id: str
    status: str
    pipeline: str
    criteria: dict[str, Any]
    total: int
    pending: int
    done: int
    failed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    diff: AuditDiff

    @classmethod
    def of(cls, job: AuditJob, progress: Any) -> AuditOut:
        return cls(
            id=job.id,
            status=job.status.value,
            pipeline=job.pipeline,
            criteria=job.criteria,
            total=job.total,
            pending=progress.pending,
            done=progress.done,
            failed=progress.failed,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            diff=AuditDiff(
                changed=progress.changed,
                unchanged=progress.done - progress.changed,
                transitions=[TransitionOut(from_=t.before, to=t.after, count=t.count) for t in progress.transitions],
                reasons_added=progress.reasons_added,
                reasons_removed=progress.reasons_removed,
            ),
        )


# Webhooks


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=8, max_length=2048, pattern=r"^https?://", description="http(s) URL to POST verdicts to"
    )


class EventVerdict(BaseModel):
    id: int = Field(description="de-duplicate by it: delivery is at least once")
    outcome: Outcome
    reasons: list[str] = Field(description=REASONS)
    reason_messages: dict[str, list[str]] = Field(
        description='each reason\'s explanation in both languages, keyed by language tag ({"zh-CN": [...], '
        '"en": [...]}), each list in the order of `reasons`'
    )
    decided_at: datetime
    decided_by: str = Field(description="machine, or the reviewer who decided")
    pipeline: str
    model_version: str
    policy_version: str


class VerdictEvent(BaseModel):
    """The JSON body POSTed to a webhook when a verdict is decided (compact, UTF-8, keys sorted)."""

    event: Literal["verdict.decided"]
    submission_id: str
    status: Status
    driver_id: int
    vehicle_id: int | None
    job_id: str | None
    site: str | None
    verdict: EventVerdict


class WebhookOut(BaseModel):
    id: int
    url: str
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, w: Webhook) -> WebhookOut:
        return cls(id=w.id, url=w.url, active=w.active, created_at=w.created_at)


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="signs each body: X-Compliance-Signature: sha256=HMAC-SHA256(secret, body); shown once"
    )


class AttemptOut(BaseModel):
    number: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryOut(BaseModel):
    id: int
    submission_id: str
    verdict_id: int
    event: str
    status: str
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=d.id,
            submission_id=d.submission_id,
            verdict_id=d.verdict_id,
            event=d.event,
            status=d.status.value,
            attempts=[
                AttemptOut(
                    number=a.number, at=a.at, status_code=a.status_code, error=a.error, duration_ms=a.duration_ms
                )
                for a in d.tries
            ],
            next_attempt_at=d.next_attempt_at if d.status.value == "pending" else None,
            delivered_at=d.delivered_at,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
