"""A cascade on the stored path, on SQLite and PostgreSQL: the real baseline and the tiny random-weight
MLLM on real photos. What the baseline settles keeps its verdict without the MLLM; what it cannot
settle is decided once the MLLM's judgments are stored too, as "both" decides; each stage's
judgments are kept, one machine verdict, and provenance names the path."""

from __future__ import annotations

from pathlib import Path

from compliance.mllm.pipeline import MllmPipeline
from compliance.photos import receive_photo
from compliance.pipeline import Pipeline
from compliance.service.intake import Upload, accept
from compliance.service.verdicts import (
    cascade_state,
    cascade_waits_for,
    decide_cascade_from_stored,
    judge,
    judge_cascade,
    record_judgments,
    rejudge,
)
from compliance.settings import Settings
from compliance.store import Store, registry, submissions
from compliance.store.models import MACHINE, SubmissionStatus
from compliance.verdicts import Outcome, ReasonCode
from tests.composites import PLATE, driver_by_vehicle, jpeg
from tests.mllm.conftest import sample


def submit_sample(store: Store) -> str:
    """The bundled compliant sample: the baseline passes it, but sees its car weakly (escalated)."""
    return accept(
        store, sample("a_by_car_wanAUJ299.jpg"), Upload(carrier="ACME", driver="A-1", plate="皖AUJ299")
    ).submission_id


def submit_clear(store: Store, dev_dir: Path) -> str:
    """A dev portrait beside a parked car whose plate reads surely: the baseline settles it."""
    with store.sessions() as s, s.begin():
        registry.add_vehicle(s, carrier_id=registry.get_carrier(s, "ACME").id, registered_plate=PLATE)
    photo = receive_photo(jpeg(driver_by_vehicle(dev_dir)), max_bytes=1 << 26, max_pixels=80_000_000)
    return accept(store, photo, Upload(carrier="ACME", driver="A-1", plate=PLATE)).submission_id


def stored(store: Store, sid: str) -> tuple[set[str], list[str], SubmissionStatus]:
    """The pipelines with judgments kept, the machine verdicts' pipelines, and the status."""
    with store.sessions() as s:
        sub = submissions.get_submission(s, sid)
        machine = [v.pipeline for v in sub.verdicts if v.decided_by == MACHINE]
        return {j.pipeline for j in sub.judgments}, machine, sub.status


def test_a_photo_the_baseline_settles_never_reaches_the_mllm(
    store: Store, store_settings: Settings, tiny_mllm: MllmPipeline, multistage: Pipeline, dev_dir: Path
) -> None:
    sid = submit_clear(store, dev_dir)
    verdict = judge_cascade(store, store_settings, sid, multistage, tiny_mllm)

    assert verdict.outcome is Outcome.PASS and verdict.reasons == ()
    step = verdict.judgments.provenance.cascade
    assert step is not None and step.path == "settled_by_baseline" and step.reason.startswith("PASS: person score")
    assert stored(store, sid) == ({"multistage", "cascade"}, ["cascade"], SubmissionStatus.DECIDED)
    with store.sessions() as s:
        kept = submissions.get_submission(s, sid).current_verdict
        assert kept is not None and kept.judgment is not None
        assert kept.judgment.data["provenance"]["cascade"] == step.model_dump(mode="json")


def test_an_escalated_photo_waits_for_the_mllm_and_is_decided_once(
    store: Store, store_settings: Settings, tiny_mllm: MllmPipeline, multistage: Pipeline
) -> None:
    sid = submit_sample(store)
    assert cascade_waits_for(store, store_settings, sid) == "multistage"

    # The CPU worker's part: the baseline's judgments, and no verdict yet.
    record_judgments(store, store_settings, sid, multistage)
    assert decide_cascade_from_stored(store, store_settings, sid) is None
    state = cascade_state(store, store_settings, sid)
    assert state.waits_for == "mllm" and state.verdict is None
    assert stored(store, sid) == ({"multistage"}, [], SubmissionStatus.PROCESSING)

    # The GPU worker's part: the MLLM's judgments, then one verdict from the two, as "both" decides.
    record_judgments(store, store_settings, sid, tiny_mllm)
    verdict = decide_cascade_from_stored(store, store_settings, sid)
    assert verdict is not None and verdict.outcome is Outcome.REVIEW  # random weights: noise never passes
    assert ReasonCode.PIPELINES_DISAGREE_PLATE in verdict.reasons
    provenance = verdict.judgments.provenance
    assert provenance.pipeline == "cascade" and provenance.pipelines == ("mllm", "multistage")
    assert provenance.cascade is not None and provenance.cascade.path == "escalated"
    assert "not sure of the vehicle" in provenance.cascade.reason

    # A re-delivered task decides again from what is stored: the same decision, kept once.
    again = decide_cascade_from_stored(store, store_settings, sid)
    assert again is not None and again.reasons == verdict.reasons
    assert stored(store, sid) == ({"multistage", "mllm", "cascade"}, ["cascade"], SubmissionStatus.DECIDED)


def test_judge_cascade_in_one_process_runs_the_mllm_only_when_escalated(
    store: Store, store_settings: Settings, tiny_mllm: MllmPipeline, multistage: Pipeline
) -> None:
    sid = submit_sample(store)
    verdict = judge_cascade(store, store_settings, sid, multistage, tiny_mllm)
    assert verdict.judgments.provenance.cascade is not None
    assert verdict.judgments.provenance.cascade.path == "escalated"
    assert stored(store, sid)[:2] == ({"multistage", "mllm", "cascade"}, ["cascade"])


def test_an_audit_rejudges_with_a_cascade_without_moving_the_status(
    store: Store, store_settings: Settings, tiny_mllm: MllmPipeline, multistage: Pipeline, dev_dir: Path
) -> None:
    sid = submit_clear(store, dev_dir)
    judge(store, store_settings, sid, multistage)
    verdict = rejudge(
        store, store_settings, sid, {"multistage": multistage, "mllm": tiny_mllm}, actor="audit:1", choice="cascade"
    )
    assert verdict.outcome is Outcome.PASS
    assert verdict.judgments.provenance.cascade is not None
    assert verdict.judgments.provenance.cascade.path == "settled_by_baseline"
    judged, machine, status = stored(store, sid)
    assert judged == {"multistage", "cascade"} and machine == ["multistage", "cascade"]
    assert status is SubmissionStatus.DECIDED
