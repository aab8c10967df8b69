"""The liveness check: a face judged not live is a REVIEW, never a FAIL; unknown adds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.inspection import decide as decide_verdict
from compliance.judgments import Answer, FaceMatch, Judgments, Provenance
from compliance.settings import Settings, Thresholds
from compliance.store import Store, registry
from compliance.verdicts import Outcome, ReasonCode
from tests.checks.test_policy import decide, good_judgments


def live(answer: Answer, score: float | None = None, *, judgments: Judgments | None = None) -> Judgments:
    j = judgments or good_judgments()
    face = j.face.model_copy(update={"live": answer, "live_score": score, "live_threshold": 0.5 if score else None})
    return j.model_copy(update={"face": face})


def test_a_face_not_live_is_a_review_with_its_reason() -> None:
    outcome, reasons = decide(live(Answer.NO, 0.07))
    assert (outcome, reasons) == (Outcome.REVIEW, (ReasonCode.FACE_NOT_LIVE,))
    # With no score, the pipeline's own answer is read.
    assert decide(live(Answer.NO)) == (Outcome.REVIEW, (ReasonCode.FACE_NOT_LIVE,))


def test_never_a_fail_on_this_signal() -> None:
    # A face that does not match and is not live fails for the mismatch alone.
    mismatch = good_judgments(
        face=FaceMatch(scene_face=Answer.YES, licence_face=Answer.YES, similarity=0.05, same_person=Answer.NO)
    )
    outcome, reasons = decide(live(Answer.NO, 0.02, judgments=mismatch))
    assert outcome is Outcome.FAIL and ReasonCode.FACE_MISMATCH in reasons and ReasonCode.FACE_NOT_LIVE in reasons
    alone = decide(live(Answer.NO, 0.0))
    assert alone[0] is Outcome.REVIEW


def test_unknown_adds_no_reason_and_never_blocks_a_pass() -> None:
    assert decide(live(Answer.UNKNOWN)) == (Outcome.PASS, ())
    assert decide(live(Answer.YES, 0.93)) == (Outcome.PASS, ())
    # Judgments stored before liveness was judged parse, as unknown, and still pass.
    stored = good_judgments().model_dump(mode="json")
    for key in ("live", "live_score", "live_threshold"):
        stored["face"].pop(key)
    old = Judgments.model_validate(stored)
    assert old.face.live is Answer.UNKNOWN and old.face.live_score is None
    assert decide(old) == (Outcome.PASS, ())


def test_the_carriers_threshold_decides_not_the_one_the_pipeline_used() -> None:
    judged = live(Answer.YES, 0.35)  # the pipeline said yes at another carrier's threshold
    assert decide(judged, thresholds=Thresholds(live_min=0.3)) == (Outcome.PASS, ())
    assert decide(judged, thresholds=Thresholds(live_min=0.4))[1] == (ReasonCode.FACE_NOT_LIVE,)


def test_the_baselines_finding_stands_beside_an_mllm_that_does_not_judge_liveness() -> None:
    baseline = live(Answer.NO, 0.05)
    mllm = good_judgments(provenance=Provenance(pipeline="mllm"))
    assert mllm.face.live is Answer.UNKNOWN
    # "both", and a cascade that reached the MLLM: the MLLM's values first, the baseline's compared.
    verdict = decide_verdict(
        mllm, thresholds=Thresholds(), registered_plates=("皖A195K9",), licence_given=True, second_opinion=baseline
    )
    assert verdict.outcome is Outcome.REVIEW and ReasonCode.FACE_NOT_LIVE in verdict.reasons


def test_live_min_from_the_environment_and_per_carrier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLIANCE_THRESHOLDS__LIVE_MIN", "0.2")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", blob_dir=tmp_path / "blobs")
    assert settings.thresholds.live_min == 0.2
    judged = live(Answer.YES, 0.3)
    assert decide(judged, thresholds=settings.thresholds) == (Outcome.PASS, ())
    store = Store.open(settings)
    with store.sessions() as s, s.begin():
        strict = registry.add_carrier(s, code="STRICT", name="Strict", thresholds={"live_min": 0.45})
        lenient = registry.add_carrier(s, code="LENIENT", name="Lenient")
        strict_t = registry.effective_thresholds(strict, settings.thresholds)
        lenient_t = registry.effective_thresholds(lenient, settings.thresholds)
    store.engine.dispose()
    assert (strict_t.live_min, lenient_t.live_min) == (0.45, 0.2)
    assert decide(judged, thresholds=strict_t) == (Outcome.REVIEW, (ReasonCode.FACE_NOT_LIVE,))
    assert decide(judged, thresholds=lenient_t) == (Outcome.PASS, ())
