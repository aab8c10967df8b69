"""A policy is an ordered set of checks and the rule that combines them into a verdict."""

from __future__ import annotations

from collections.abc import Sequence

from compliance.checks.agreement import PipelinesAgree
from compliance.checks.base import Check, CheckContext
from compliance.checks.face import FaceMatchesLicence
from compliance.checks.liveness import FaceIsLive
from compliance.checks.origin import FromCamera, NotEdited, PositionRecorded, TakenAtSite
from compliance.checks.plate import PlateMatchesRegistered
from compliance.checks.presence import PersonPresent, VehiclePresent
from compliance.checks.provenance import FallbackDeclared, ModelOutputValid, ModelSure, NotReused, TakenDuringJob
from compliance.checks.quality import LargeEnough, SharpEnough, WellExposed
from compliance.verdicts import Verdict, worst

DEFAULT_CHECKS: tuple[Check, ...] = (
    ModelOutputValid(),
    ModelSure(),
    PersonPresent(),
    VehiclePresent(),
    PlateMatchesRegistered(),
    FaceMatchesLicence(),
    FaceIsLive(),
    SharpEnough(),
    WellExposed(),
    LargeEnough(),
    NotReused(),
    TakenDuringJob(),
    TakenAtSite(),
    PositionRecorded(),
    NotEdited(),
    FromCamera(),
    PipelinesAgree("person"),
    PipelinesAgree("vehicle"),
    PipelinesAgree("plate"),
    PipelinesAgree("face"),
    FallbackDeclared(),
)


class Policy:
    """Any FAIL fails the photo; otherwise any REVIEW sends it to a person; PASS needs every check to pass."""

    # 2026.11.2: a second pipeline's judgments are compared field by field; an MLLM fallback is declared.
    # 2026.12.1: every plate read is compared; one doubted character is a REVIEW (PLATE_UNCERTAIN_CHARACTER).
    # 2026.12.2: values an MLLM wrote unsurely are a REVIEW of their own (MODEL_LOW_CONFIDENCE), not invalid output.
    # 2026.12.3: a scene face judged not live (on a screen or paper) is a REVIEW (FACE_NOT_LIVE).
    # 2026.12.4: where and how the photo was taken, from EXIF: LOCATION_OUTSIDE_SITE (REVIEW by default
    #   where the site has a position), LOCATION_MISSING, PHOTO_EDITED, NO_CAMERA_EXIF (off by default).
    version = "2026.12.4"

    def __init__(self, checks: Sequence[Check] = DEFAULT_CHECKS) -> None:
        self.checks = tuple(checks)

    def decide(self, ctx: CheckContext) -> Verdict:
        results = tuple(r for check in self.checks if (r := check.run(ctx)) is not None)
        return Verdict(
            outcome=worst([r.outcome for r in results]),
            reasons=tuple(r.reason for r in results if r.reason is not None),
            results=results,
            judgments=ctx.judgments,
            policy_version=self.version,
        )
