"""Checks on the photo's history: re-use of an earlier photo, capture time, model output."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from compliance.checks.base import CheckContext, failed, passed, review
from compliance.judgments import Provenance
from compliance.verdicts import CheckResult, Outcome, ReasonCode


class NotReused:
    """The same photo (near-duplicate by perceptual hash) sent for another driver or another day."""

    name = "duplicate"

    def run(self, ctx: CheckContext) -> CheckResult:
        for prior in sorted(ctx.similar_photos, key=lambda p: p.distance):
            other_driver = prior.driver_id != ctx.driver_id
            other_day = ctx.submitted_at is not None and prior.submitted_at.date() != ctx.submitted_at.date()
            if other_driver or other_day:
                who = "another driver" if other_driver else "another day"
                return failed(
                    self.name,
                    ReasonCode.DUPLICATE_PHOTO,
                    f"same photo as submission {prior.submission_id} ({who}, hash distance {prior.distance})",
                )
        return passed(self.name, "no earlier use of this photo")


class TakenDuringJob:
    """EXIF capture time inside the job's window; applies only where a window is given."""

    name = "capture_time"

    def run(self, ctx: CheckContext) -> CheckResult | None:
        if ctx.job_window is None:
            return None
        if ctx.capture_time is None:
            return review(self.name, ReasonCode.CAPTURE_TIME_MISSING, "the photo carries no capture time")
        start, end = ctx.job_window
        when = _comparable(ctx.capture_time, ctx.thresholds.local_timezone, start)
        slack = timedelta(minutes=ctx.thresholds.capture_time_tolerance_minutes)
        if not (start - slack <= when <= end + slack):
            return failed(
                self.name,
                ReasonCode.CAPTURE_TIME_OUTSIDE_WINDOW,
                f"taken {when.isoformat()}, job window {start.isoformat()} to {end.isoformat()}",
            )
        return passed(self.name, f"taken {when.isoformat()}")


def _comparable(when: datetime, tz_name: str, like: datetime) -> datetime:
    """Cameras often write local time without an offset: read it in the carrier's time zone."""
    if (when.tzinfo is None) == (like.tzinfo is None):
        return when
    if when.tzinfo is None:
        return when.replace(tzinfo=ZoneInfo(tz_name))
    return when.astimezone(ZoneInfo(tz_name)).replace(tzinfo=None)


class ModelOutputValid:
    """A generative model's answer that was missing, malformed or unsure anywhere; the second
    opinion's too, since a field it got wrong may be one that no agreement check compares."""

    name = "model_output"

    def run(self, ctx: CheckContext) -> CheckResult:
        problems = _model_notes(ctx, lambda p: p.output_errors)
        if problems:
            return review(self.name, ReasonCode.INVALID_MODEL_OUTPUT, " | ".join(problems))
        return passed(self.name)


class ModelSure:
    """A generative model's answer that was well formed but unsure: values it wrote at a token
    probability below ``mllm_confidence_min`` (each already taken as unknown). Under constrained
    decoding every answer is well formed, so this is what stands between noise and a PASS."""

    name = "model_confidence"

    def run(self, ctx: CheckContext) -> CheckResult | None:
        doubts = _model_notes(ctx, lambda p: p.output_doubts)
        if doubts:
            return review(self.name, ReasonCode.MODEL_LOW_CONFIDENCE, " | ".join(doubts))
        return None


def _model_notes(ctx: CheckContext, notes: Callable[[Provenance], tuple[str, ...]]) -> list[str]:
    """What was noted of each model's answer, the judgments' and the second opinion's (named by
    pipeline when there are two)."""
    found = []
    for judgments in (ctx.judgments, ctx.second_opinion):
        if judgments is not None and notes(judgments.provenance):
            which = next(iter(judgments.provenance.pipelines), judgments.provenance.pipeline)
            own = "" if ctx.second_opinion is None else f"{which}: "
            found.append(own + "; ".join(notes(judgments.provenance)))
    return found


class FallbackDeclared:
    """Judged by the baseline because the MLLM failed or answered invalidly (setting mllm_fallback).

    Not a reason to REVIEW (that is what the setting is for), but never silent: the result names
    the failure, and its reason code lets reports count fallbacks.
    """

    name = "fallback"

    def run(self, ctx: CheckContext) -> CheckResult | None:
        fallback = ctx.judgments.provenance.fallback
        if fallback is None:
            return None
        return CheckResult(
            check=self.name,
            outcome=Outcome.PASS,
            reason=ReasonCode.MLLM_FALLBACK,
            detail=f"judged by {ctx.judgments.provenance.pipeline} because {fallback.pipeline} failed: "
            f"{fallback.reason}",
        )
