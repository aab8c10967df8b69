"""Is the person in the photo the driver on the licence?"""

from __future__ import annotations

from compliance.checks.base import CheckContext, failed, passed, review
from compliance.judgments import Answer
from compliance.verdicts import CheckResult, ReasonCode


class FaceMatchesLicence:
    name = "face"

    def run(self, ctx: CheckContext) -> CheckResult:
        face = ctx.judgments.face
        if not ctx.licence_given:
            return review(self.name, ReasonCode.LICENCE_PHOTO_MISSING, "no licence photo on record for the driver")
        if face.licence_face is not Answer.YES:
            return review(self.name, ReasonCode.FACE_NOT_ON_LICENCE, "no face found on the licence photo")
        if face.scene_face is not Answer.YES:
            # A face turned away or too small is for a person to judge, not a machine to fail.
            return review(self.name, ReasonCode.FACE_NOT_IN_SCENE, "no face found in the photo")
        similarity = f"similarity {face.similarity:.3f}" if face.similarity is not None else "similarity unknown"
        if face.same_person is Answer.YES:
            return passed(self.name, similarity)
        if face.same_person is Answer.NO:
            return failed(self.name, ReasonCode.FACE_MISMATCH, f"not the licensed driver ({similarity})")
        return review(self.name, ReasonCode.FACE_UNCERTAIN, f"too close to call ({similarity})")
