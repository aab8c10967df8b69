"""Is the face in the photo a live one, not the driver's face held up on a phone or a print?"""

from __future__ import annotations

from compliance.checks.base import CheckContext, passed, review
from compliance.judgments import Answer, FaceMatch
from compliance.settings import Thresholds
from compliance.verdicts import CheckResult, ReasonCode


def not_live(face: FaceMatch, thresholds: Thresholds) -> bool:
    """A face judged not live: its score under the carrier's ``live_min`` (the threshold the
    pipeline used may be another's), or, with no score, a ``no`` from the pipeline."""
    if face.live_score is not None:
        return face.live_score < thresholds.live_min
    return face.live is Answer.NO


class FaceIsLive:
    """A face that is not live is a REVIEW (``FACE_NOT_LIVE``), never a FAIL: a wrong REVIEW costs a
    person a minute, a wrong FAIL a driver his job. ``unknown`` (a face too small to judge, a pipeline
    that does not judge it) adds nothing. With a second opinion ("both", a cascade that reached the
    MLLM) either pipeline's ``no`` counts: the MLLM does not judge liveness, and must not hide the
    baseline's finding."""

    name = "liveness"

    def run(self, ctx: CheckContext) -> CheckResult | None:
        judged = [j for j in (ctx.judgments, ctx.second_opinion) if j is not None]
        for judgments in judged:
            face = judgments.face
            if not_live(face, ctx.thresholds):
                why = (
                    f"live score {face.live_score:.2f} < {ctx.thresholds.live_min:.2f}"
                    if face.live_score is not None
                    else f"judged not live by {judgments.provenance.pipeline}"
                )
                return review(self.name, ReasonCode.FACE_NOT_LIVE, f"the face may be on a screen or on paper ({why})")
        scores = [j.face.live_score for j in judged if j.face.live_score is not None]
        if scores:
            return passed(self.name, f"live score {scores[0]:.2f}")
        return None
