"""Verdicts: judge a stored submission, decide, keep the verdict, and announce it to the carrier's
webhooks.

Workers call ``judge`` (one pipeline), ``judge_many`` (a GPU batch), or ``record_judgments`` per
pipeline and then ``decide_from_stored`` (both pipelines, each on its own worker) or
``decide_cascade_from_stored`` (a cascade: the baseline on a CPU worker, the MLLM on a GPU worker
only for what the baseline cannot settle); the CLI and the demo call them in-process; batch audits
call ``rejudge``. Whoever keeps a verdict then calls ``announce``. Sessions are short: no transaction
stays open while a model runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from compliance import geo, metrics
from compliance.checks import PriorPhoto
from compliance.checks.base import SiteArea
from compliance.inspection import Facts, decide, decide_cascade
from compliance.judgments import Judgments
from compliance.photos import ExifFacts, Photo, load_photo
from compliance.pipeline import BOTH, CASCADE, CASCADE_STAGES, Pipeline
from compliance.pipelines import get_pipelines, pipeline_names
from compliance.queue.publisher import Publisher, published
from compliance.service import webhooks
from compliance.service.transient import TRANSIENT_ERRORS
from compliance.settings import Settings, Thresholds
from compliance.store import Store, registry, similar, submissions, verdicts
from compliance.store.errors import UnknownSubmission
from compliance.store.models import Submission, SubmissionStatus, utcnow
from compliance.verdicts import Verdict


@dataclass(frozen=True, slots=True)
class JudgingContext:
    """What deciding a stored submission needs, read in one short transaction."""

    submission_id: str
    thresholds: Thresholds
    plates_to_match: list[str]
    prior: list[PriorPhoto]
    scene_sha256: str
    licence_sha256: str | None
    driver_id: int
    submitted_at: datetime
    capture_time: datetime | None
    job_window: tuple[datetime, datetime] | None
    site: SiteArea | None = None
    exif: ExifFacts | None = None


def _site_area(s: Session, carrier_id: int, code: str | None) -> SiteArea | None:
    """The registered site the submission names, where it has a position; free text has none."""
    site = registry.find_site(s, carrier_id, code) if code else None
    if site is None or site.latitude is None or site.longitude is None or site.radius_m is None:
        return None
    return SiteArea(site.code, geo.Position(site.latitude, site.longitude), site.radius_m)


def _read_context(s: Session, settings: Settings, sub: Submission) -> JudgingContext:
    carrier = sub.carrier
    thresholds = registry.effective_thresholds(carrier, settings.thresholds)
    if sub.vehicle is not None:
        plates_to_match = [sub.vehicle.registered_plate]
    else:
        plates_to_match = registry.registered_plates(s, carrier.id)
    near = similar.find_similar_photos(
        s,
        carrier.id,
        sub.photo_phash,
        thresholds.duplicate_max_distance,
        exclude_submission_id=sub.id,
        created_before=sub.created_at,
    )
    return JudgingContext(
        submission_id=sub.id,
        thresholds=thresholds,
        plates_to_match=plates_to_match,
        prior=[PriorPhoto(p.submission.id, p.submission.driver_id, p.submission.created_at, p.distance) for p in near],
        scene_sha256=sub.photo_sha256,
        licence_sha256=sub.driver.licence_sha256,
        driver_id=sub.driver_id,
        submitted_at=sub.created_at,
        capture_time=sub.captured_at,
        job_window=sub.job_window,
        site=_site_area(s, carrier.id, sub.site),
        exif=ExifFacts.stored(sub.exif_findings, sub.gps_latitude, sub.gps_longitude, sub.gps_time),
    )


def begin(
    store: Store, settings: Settings, submission_id: str, *, actor: str = "cli", mark_processing: bool = True
) -> JudgingContext:
    """Read what judging needs; with ``mark_processing`` the submission moves to PROCESSING (an attempt)."""
    with store.sessions() as s, s.begin():
        if mark_processing:
            sub = submissions.set_status(s, submission_id, SubmissionStatus.PROCESSING, actor=actor)
        else:
            sub = submissions.get_submission(s, submission_id)
        return _read_context(s, settings, sub)


def photos_of(store: Store, settings: Settings, ctx: JudgingContext) -> tuple[Photo, Photo | None]:
    """The scene and licence photos, from the blob store."""
    scene = _stored_photo(store, settings, ctx.scene_sha256)
    licence = _stored_photo(store, settings, ctx.licence_sha256) if ctx.licence_sha256 else None
    return scene, licence


def _facts(ctx: JudgingContext) -> Facts:
    """What a stored submission's verdict is decided against, besides its judgments."""
    return Facts(
        thresholds=ctx.thresholds,
        registered_plates=ctx.plates_to_match,
        licence_given=ctx.licence_sha256 is not None,
        driver_id=ctx.driver_id,
        submitted_at=ctx.submitted_at,
        capture_time=ctx.capture_time,
        job_window=ctx.job_window,
        similar_photos=ctx.prior,
        site=ctx.site,
        exif=ctx.exif,
    )


def _decide(ctx: JudgingContext, judgments: Judgments, second_opinion: Judgments | None = None) -> Verdict:
    return decide(judgments, second_opinion=second_opinion, **_facts(ctx))


def conclude(
    store: Store,
    ctx: JudgingContext,
    judgments: Judgments,
    *,
    second_opinion: Judgments | None = None,
    actor: str = "cli",
) -> Verdict:
    """Decide from the pipeline's judgments (and another pipeline's, compared field by field) and
    keep judgments and verdict (idempotent)."""
    return _keep(store, ctx.submission_id, _decide(ctx, judgments, second_opinion), actor=actor)


def _keep(store: Store, submission_id: str, verdict: Verdict, *, actor: str) -> Verdict:
    """Keep the verdict and the judgments it was decided from (idempotent) and make it current."""
    with store.sessions() as s, s.begin():
        verdicts.record_verdict(s, submission_id, verdict, actor=actor)
    return verdict


def mark_failed(store: Store, submission_id: str, exc: BaseException, *, actor: str = "cli") -> None:
    with store.sessions() as s, s.begin():
        submissions.set_status(
            s, submission_id, SubmissionStatus.FAILED, error=f"{type(exc).__name__}: {exc}", actor=actor
        )


def _run(store: Store, settings: Settings, ctx: JudgingContext, pipeline: Pipeline, actor: str) -> Judgments:
    """The pipeline on the stored photos, outside any transaction; a crash leaves the submission
    failed with its error, never lost."""
    try:
        scene, licence = photos_of(store, settings, ctx)
        return pipeline.judge(scene.image, licence.image if licence else None, ctx.thresholds)
    except Exception as exc:
        mark_failed(store, ctx.submission_id, exc, actor=actor)
        raise


def judge(store: Store, settings: Settings, submission_id: str, pipeline: Pipeline, *, actor: str = "cli") -> Verdict:
    """Run the pipeline on a stored submission, decide, and keep judgments and verdict."""
    ctx = begin(store, settings, submission_id, actor=actor)
    return conclude(store, ctx, _run(store, settings, ctx, pipeline, actor), actor=actor)


def judge_many(
    store: Store,
    settings: Settings,
    submission_ids: Sequence[str],
    pipeline: Pipeline,
    *,
    decide_stored: Callable[[str], Verdict | None] | None = None,
    actor: str = "cli",
) -> list[Verdict | Exception | None]:
    """Judge several stored submissions, in one ``judge_batch`` call where the pipeline has one.

    Each item's result is its verdict or the exception that stopped it; one bad photo does not fail
    the others. A failure of the batch call itself fails every submission in it. With
    ``decide_stored`` (a submission judged by two pipelines: "both", a cascade) each item's
    judgments are kept and the verdict is what ``decide_stored`` decides from the stored ones, by
    submission id: None while another pipeline's are still missing.
    """
    results: list[Verdict | Exception | None] = [None] * len(submission_ids)
    ready: list[tuple[int, JudgingContext, Photo, Photo | None]] = []
    for i, submission_id in enumerate(submission_ids):
        try:
            ctx = begin(store, settings, submission_id, actor=actor)
        except Exception as exc:
            results[i] = exc
            continue
        try:
            scene, licence = photos_of(store, settings, ctx)
        except Exception as exc:
            mark_failed(store, submission_id, exc, actor=actor)
            results[i] = exc
            continue
        ready.append((i, ctx, scene, licence))
    if ready:
        items = [(scene.image, licence.image if licence else None) for _, _, scene, licence in ready]
        try:
            # Thresholds do not change what a model sees; the checks apply each carrier's own.
            all_judgments = pipeline.judge_batch(items, ready[0][1].thresholds)
        except Exception as exc:
            for i, ctx, _, _ in ready:
                mark_failed(store, ctx.submission_id, exc, actor=actor)
                results[i] = exc
            return results
        for (i, ctx, _, _), judgments in zip(ready, all_judgments, strict=True):
            try:
                if decide_stored is None:
                    results[i] = conclude(store, ctx, judgments, actor=actor)
                else:
                    with store.sessions() as s, s.begin():
                        verdicts.record_judgment(s, ctx.submission_id, judgments, actor=actor)
                    results[i] = decide_stored(ctx.submission_id)
            except Exception as exc:
                results[i] = exc
    return results


def rejudge(
    store: Store,
    settings: Settings,
    submission_id: str,
    pipelines: Mapping[str, Pipeline],
    *,
    actor: str,
    choice: str | None = None,
) -> Verdict:
    """Judge an already decided submission again (a batch audit) without moving its status: the
    new verdict becomes current only if the models or policy changed; errors are the caller's.
    ``pipelines`` is one pipeline, or the two of "both" (the first decides; each one's judgments are
    kept), or with ``choice`` "cascade" the two of a cascade (the MLLM judges only if needed)."""
    ctx = begin(store, settings, submission_id, actor=actor, mark_processing=False)
    scene, licence = photos_of(store, settings, ctx)
    if choice == CASCADE:
        return _rejudge_cascade(store, settings, ctx, scene, licence, pipelines, actor)
    judged = [p.judge(scene.image, licence.image if licence else None, ctx.thresholds) for p in pipelines.values()]
    if len(judged) == 1:
        return conclude(store, ctx, judged[0], actor=actor)
    with store.sessions() as s, s.begin():
        for judgments in judged:
            verdicts.record_judgment(s, submission_id, judgments, actor=actor)
    return conclude(store, ctx, judged[0], second_opinion=judged[1], actor=actor)


def _rejudge_cascade(
    store: Store,
    settings: Settings,
    ctx: JudgingContext,
    scene: Photo,
    licence: Photo | None,
    pipelines: Mapping[str, Pipeline],
    actor: str,
) -> Verdict:
    judged: dict[str, Judgments] = {}
    verdict = None
    for stage in CASCADE_STAGES:  # the baseline, then the MLLM only if the baseline did not settle it
        judged[stage] = pipelines[stage].judge(scene.image, licence.image if licence else None, ctx.thresholds)
        with store.sessions() as s, s.begin():
            verdicts.record_judgment(s, ctx.submission_id, judged[stage], actor=actor)
        verdict = _cascade_verdict(ctx, settings, judged)
        if verdict is not None:
            break
    assert verdict is not None, "with both stages judged a cascade always decides"
    return _keep(store, ctx.submission_id, verdict, actor=actor)


# Judging with both pipelines. A service runs each pipeline on its own worker (multistage on a CPU,
# the MLLM on a GPU): each worker calls ``record_judgments`` and then ``decide_from_stored``, which
# decides once both pipelines' judgments are stored (whichever worker finishes second does it; if
# both see both, the store keeps one machine verdict). ``judge_both`` is the two steps in one process.


def record_judgments(
    store: Store, settings: Settings, submission_id: str, pipeline: Pipeline, *, actor: str = "worker"
) -> Judgments:
    """Run one pipeline on a stored submission and keep its judgments (under its own pipeline name
    and model version), without deciding. Idempotent: the same pipeline and models again keep the
    first record. A crash leaves the submission failed with its error."""
    ctx = begin(store, settings, submission_id, actor=actor)
    judgments = _run(store, settings, ctx, pipeline, actor)
    with store.sessions() as s, s.begin():
        verdicts.record_judgment(s, submission_id, judgments, actor=actor)
    return judgments


def decide_from_stored(
    store: Store,
    settings: Settings,
    submission_id: str,
    pipelines: Sequence[str] = BOTH,
    *,
    actor: str = "worker",
) -> Verdict | None:
    """Decide from the judgments already stored, the newest of each pipeline in ``pipelines``: the
    first's values decide, the second's are compared field by field. Keeps and returns the verdict;
    None while a pipeline's judgments are not stored yet (the other worker will decide). Runs no model."""
    if len(pipelines) not in (1, 2):
        raise ValueError(f"decide from one pipeline or two, not {len(pipelines)}")
    ctx, newest = _stored(store, settings, submission_id, needs=pipelines)
    if ctx is None:
        return None
    first, *rest = (newest[name] for name in pipelines)
    return conclude(store, ctx, first, second_opinion=rest[0] if rest else None, actor=actor)


def _stored(
    store: Store, settings: Settings, submission_id: str, *, needs: Sequence[str]
) -> tuple[JudgingContext | None, dict[str, Judgments]]:
    """The newest stored judgments of each pipeline, and the context to decide with; the context is
    read only when every pipeline in ``needs`` has judged (else None: nothing to decide yet)."""
    with store.sessions() as s:
        sub = submissions.get_submission(s, submission_id)
        newest: dict[str, Judgments] = {}
        for record in sub.judgments:  # oldest first: later records replace earlier ones
            newest[record.pipeline] = Judgments.model_validate(record.data)
        if any(name not in newest for name in needs):
            return None, newest
        return _read_context(s, settings, sub), newest


def judge_both(
    store: Store, settings: Settings, submission_id: str, first: Pipeline, second: Pipeline, *, actor: str = "cli"
) -> Verdict:
    """Both pipelines in this process, one after the other, then one verdict from the two
    (``first`` decides, normally the MLLM; ``second`` is the second opinion)."""
    for pipeline in (first, second):
        record_judgments(store, settings, submission_id, pipeline, actor=actor)
    verdict = decide_from_stored(store, settings, submission_id, (first.name, second.name), actor=actor)
    if verdict is None:  # a pipeline recorded its judgments under another name (a fallback)
        raise ValueError(f"no judgments stored for both {first.name} and {second.name}: is one falling back?")
    return verdict


# A cascade: the baseline judges on a CPU worker; where it settles the photo its verdict is kept
# there and then, and only the photos it cannot settle go on to the GPU queue, whose worker keeps the
# MLLM's judgments and decides from the two stored ones as "both" decides. Every step reads what is
# stored, so a re-delivered task (or the sweeper's) finds its stage done and decides once.

BASELINE_STAGE, MLLM_STAGE = CASCADE_STAGES


@dataclass(frozen=True, slots=True)
class CascadeState:
    """Where a cascade submission stands, from what is stored."""

    # The stage still to judge: the baseline, or the MLLM (escalated); None when decidable now.
    waits_for: str | None
    verdict: Verdict | None  # decided from the stored judgments, not yet kept


def _cascade_verdict(ctx: JudgingContext, settings: Settings, judged: Mapping[str, Judgments]) -> Verdict | None:
    return decide_cascade(judged[BASELINE_STAGE], judged.get(MLLM_STAGE), settings=settings, **_facts(ctx))


def cascade_state(store: Store, settings: Settings, submission_id: str) -> CascadeState:
    """Which stage a cascade submission waits for, or its verdict if what is stored decides it.
    Runs no model."""
    ctx, stored = _stored(store, settings, submission_id, needs=(BASELINE_STAGE,))
    if ctx is None:
        return CascadeState(BASELINE_STAGE, None)
    verdict = _cascade_verdict(ctx, settings, stored)
    return CascadeState(MLLM_STAGE if verdict is None else None, verdict)


def cascade_waits_for(store: Store, settings: Settings, submission_id: str) -> str:
    """The queue's stage a cascade submission is to be queued at again (the sweeper): the baseline's
    until its judgments are stored, the MLLM's when escalated; the baseline's too when what is stored
    decides it already (its worker died before keeping the verdict), which then runs no model."""
    return cascade_state(store, settings, submission_id).waits_for or BASELINE_STAGE


def decide_cascade_from_stored(
    store: Store, settings: Settings, submission_id: str, *, actor: str = "worker"
) -> Verdict | None:
    """Decide a cascade from the judgments stored and keep the verdict: the baseline's where it settles
    the photo, else one from the two as "both" decides once the MLLM's are stored. None while a stage
    is still to judge (``cascade_state`` says which). Runs no model; idempotent."""
    state = cascade_state(store, settings, submission_id)
    return None if state.verdict is None else _keep(store, submission_id, state.verdict, actor=actor)


def judge_cascade(
    store: Store, settings: Settings, submission_id: str, baseline: Pipeline, mllm: Pipeline, *, actor: str = "cli"
) -> Verdict:
    """A cascade in this process: the baseline, then the MLLM only if the baseline did not settle it."""
    for pipeline in (baseline, mllm):
        record_judgments(store, settings, submission_id, pipeline, actor=actor)
        verdict = decide_cascade_from_stored(store, settings, submission_id, actor=actor)
        if verdict is not None:
            return verdict
    raise ValueError(f"no judgments stored for both {baseline.name} and {mllm.name}: is one falling back?")


def _stored_photo(store: Store, settings: Settings, sha256: str) -> Photo:
    return load_photo(store.blobs.get(sha256), **settings.photo_limits)


def announce(store: Store, publisher: Publisher, submission_id: str) -> list[int]:
    """Queue the submission's current verdict for each of the carrier's webhooks (once per verdict:
    a second call for the same verdict queues nothing) and publish the deliveries; a broker that is
    down leaves them pending for the sweeper. Returns the deliveries' ids."""
    deliveries = webhooks.announce(store, submission_id)
    for delivery_id in deliveries:
        published(lambda d=delivery_id: publisher.deliver(d), f"webhook delivery {delivery_id}")
    return deliveries


# Judging queued work: what a worker's task does with the submission it was handed. The attempts
# rule lives here: a submission judged ``max_attempts`` times without a verdict is failed for good.

WORKER = "worker"
log = logging.getLogger("compliance.workers")


@dataclass(frozen=True, slots=True)
class Todo:
    submission_id: str
    pipeline: str  # the choice the submission asked for: a pipeline, or "both"
    part: str  # the pipeline this task runs

    @property
    def combine(self) -> tuple[str, ...] | None:
        """With "both": the pipelines whose stored judgments the verdict is decided from."""
        names = pipeline_names(self.pipeline)
        return names if len(names) > 1 and self.pipeline != CASCADE else None

    def decide_stored(self, store: Store, settings: Settings) -> Callable[[str], Verdict | None] | None:
        """How a worker decides once its pipeline's judgments are stored, where two pipelines judge."""
        if self.pipeline == CASCADE:
            return lambda submission_id: decide_cascade_from_stored(store, settings, submission_id, actor=WORKER)
        combine = self.combine
        if combine is None:
            return None
        return lambda submission_id: decide_from_stored(store, settings, submission_id, combine, actor=WORKER)


def _pipeline_for(todo: Todo, settings: Settings) -> Pipeline:
    # get_pipelines turns the MLLM's fallback off under "both" and "cascade": its own judgments are compared.
    return get_pipelines(todo.pipeline, settings)[todo.part]


def _triage(
    store: Store, publisher: Publisher, settings: Settings, submission_id: str, part: str | None = None
) -> Todo | None:
    """What to do with a delivered task: judge it (a Todo), or nothing because it is already decided,
    gone, or has used up its attempts (then it is failed for good). ``part`` is the pipeline the
    message asks for (one half of "both"); without it, the submission's own choice."""
    with store.sessions() as s, s.begin():
        sub = s.get(Submission, submission_id)
        if sub is None:
            log.warning("task for unknown submission %s dropped", submission_id)
            return None
        if sub.status is SubmissionStatus.DECIDED:
            decided = True
        elif sub.attempts >= settings.max_attempts:
            if sub.status is not SubmissionStatus.FAILED or not (sub.last_error or "").startswith("gave up"):
                submissions.set_status(
                    s,
                    submission_id,
                    SubmissionStatus.FAILED,
                    error=f"gave up after {sub.attempts} attempts without a verdict",
                    actor=WORKER,
                )
            return None
        else:
            decided = False
            metrics.STAGE_SECONDS.labels("queue.wait").observe((utcnow() - sub.created_at).total_seconds())
        pipeline = sub.pipeline or settings.service_pipeline
    if decided:
        announce(store, publisher, submission_id)  # in case the worker died between deciding and announcing
        return None
    names = pipeline_names(pipeline)
    return Todo(submission_id, pipeline, part if part in names else names[0])


def _decided(store: Store, publisher: Publisher, todo: Todo, verdict: Verdict, seconds: float) -> None:
    metrics.VERDICTS.labels(todo.pipeline, verdict.outcome.value).inc()
    step = verdict.judgments.provenance.cascade
    if step is not None:
        metrics.CASCADE.labels(step.path).inc()
    metrics.observe_judgments_latency(verdict.judgments.provenance.latency_ms)
    metrics.STAGE_SECONDS.labels("judge.total").observe(seconds)
    announce(store, publisher, todo.submission_id)


def judge_queued(
    store: Store, publisher: Publisher, settings: Settings, submission_id: str, part: str | None = None
) -> str:
    """A submission's task from a CPU queue: judge it with its pipeline (or its part of "both", or a
    cascade's baseline), decide, keep and announce; a task for one already decided, gone or out of
    attempts does nothing."""
    todo = _triage(store, publisher, settings, submission_id, part)
    if todo is None:
        return "skipped"
    pipeline = _pipeline_for(todo, settings)
    start = time.perf_counter()
    verdict: Verdict | None
    if todo.pipeline == CASCADE:
        verdict = _judge_cascade_stage(store, publisher, settings, todo, pipeline)
        if verdict is None:
            return f"{todo.part} judged; escalated to {MLLM_STAGE}"
    elif todo.combine is None:
        verdict = judge(store, settings, submission_id, pipeline, actor=WORKER)
    else:
        record_judgments(store, settings, submission_id, pipeline, actor=WORKER)
        verdict = decide_from_stored(store, settings, submission_id, todo.combine, actor=WORKER)
    if verdict is None:
        return f"{todo.part} judged; waiting for the other pipeline"
    _decided(store, publisher, todo, verdict, time.perf_counter() - start)
    return verdict.outcome.value


def _judge_cascade_stage(
    store: Store, publisher: Publisher, settings: Settings, todo: Todo, pipeline: Pipeline
) -> Verdict | None:
    """A cascade's stage on its worker: judge if the submission waits for this stage, then keep the
    verdict if what is stored decides it, else queue the stage it waits for (escalate to the MLLM).
    A re-delivered task finds its stage stored and runs no model."""
    state = cascade_state(store, settings, todo.submission_id)
    if state.verdict is None and state.waits_for == todo.part:
        record_judgments(store, settings, todo.submission_id, pipeline, actor=WORKER)
        state = cascade_state(store, settings, todo.submission_id)
    if state.verdict is not None:
        return _keep(store, todo.submission_id, state.verdict, actor=WORKER)
    _queue_stage(publisher, todo.submission_id, state.waits_for or BASELINE_STAGE)
    return None


def _cascade_not_this_stage(store: Store, publisher: Publisher, settings: Settings, todo: Todo) -> str | None:
    """Before a batch runs the MLLM on a cascade: a submission that what is stored decides already (a
    re-delivered task) is decided here, and one whose baseline has not judged is queued there; either
    way without the MLLM. None: its turn for the MLLM."""
    state = cascade_state(store, settings, todo.submission_id)
    if state.waits_for == todo.part:
        return None
    if state.verdict is not None:
        verdict = _keep(store, todo.submission_id, state.verdict, actor=WORKER)
        _decided(store, publisher, todo, verdict, 0.0)
        return verdict.outcome.value
    _queue_stage(publisher, todo.submission_id, state.waits_for or BASELINE_STAGE)
    return f"waiting for {state.waits_for}"


def _queue_stage(publisher: Publisher, submission_id: str, stage: str) -> None:
    # A broker that is down leaves the submission PROCESSING: the sweeper queues the stage it waits for.
    published(lambda: publisher.judge_part(submission_id, stage), f"submission {submission_id} ({stage})")


def judge_queued_batch(
    store: Store, publisher: Publisher, settings: Settings, requests: list[tuple[str, str | None]]
) -> dict[str, str]:
    """A batch from the GPU queue, (submission id, pipeline part) each: one ``judge_batch`` call per
    pipeline for everything still to do. A transient failure puts the submission back on its queue
    with a delay."""
    todos: dict[str, Todo] = {}
    outcome: dict[str, str] = {}
    for submission_id, part in dict(requests).items():  # a duplicate delivery in one batch counts once
        todo = _triage(store, publisher, settings, submission_id, part)
        if todo is None:
            outcome[submission_id] = "skipped"
        elif todo.pipeline == CASCADE and (done := _cascade_not_this_stage(store, publisher, settings, todo)):
            outcome[submission_id] = done
        else:
            todos[submission_id] = todo
    groups: dict[tuple[str, str], list[Todo]] = {}
    for todo in todos.values():
        groups.setdefault((todo.pipeline, todo.part), []).append(todo)
    for group in groups.values():
        metrics.MLLM_BATCH.observe(len(group))
        pipeline = _pipeline_for(group[0], settings)
        start = time.perf_counter()
        results = judge_many(
            store,
            settings,
            [t.submission_id for t in group],
            pipeline,
            decide_stored=group[0].decide_stored(store, settings),
            actor=WORKER,
        )
        seconds = (time.perf_counter() - start) / len(group)
        for todo, result in zip(group, results, strict=True):
            if result is None:
                outcome[todo.submission_id] = f"{todo.part} judged; waiting for the other pipeline"
            elif isinstance(result, Verdict):
                _decided(store, publisher, todo, result, seconds)
                outcome[todo.submission_id] = result.outcome.value
            elif isinstance(result, TRANSIENT_ERRORS):
                outcome[todo.submission_id] = f"retry: {type(result).__name__}"
                _requeue_later(publisher, todo)
            elif isinstance(result, UnknownSubmission):
                outcome[todo.submission_id] = "skipped"
            else:
                log.error("submission %s failed: %s", todo.submission_id, result)
                outcome[todo.submission_id] = f"failed: {type(result).__name__}"
    return outcome


def _requeue_later(publisher: Publisher, todo: Todo) -> None:
    # The batch task has no per-request retry; a delayed message does the same. If even that fails,
    # the submission is FAILED with attempts left, and the sweeper comes back to it.
    published(
        lambda: publisher.judge_part(todo.submission_id, todo.part, countdown=30),
        f"submission {todo.submission_id}",
    )
