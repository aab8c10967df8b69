"""The stored path with the MLLM, on SQLite and PostgreSQL: judged by the MLLM alone, and by both
pipelines on two workers that each record their own judgments and decide once both are in."""

from __future__ import annotations

import threading

from compliance.mllm.pipeline import MllmPipeline
from compliance.pipeline import Pipeline
from compliance.service.intake import Upload, accept
from compliance.service.verdicts import decide_from_stored, judge, judge_both, record_judgments, rejudge
from compliance.settings import Settings
from compliance.store import Store, audit, submissions, verdicts
from compliance.store.models import MACHINE, SubmissionStatus
from compliance.verdicts import Outcome, ReasonCode
from tests.mllm.conftest import sample


def submit(store: Store) -> str:
    return accept(
        store, sample("a_by_car_wanAUJ299.jpg"), Upload(carrier="ACME", driver="A-1", plate="皖AUJ299")
    ).submission_id


def test_stored_mllm_judgment_of_noise_is_kept_and_reviewed(
    store: Store, store_settings: Settings, tiny_mllm: MllmPipeline
) -> None:
    sid = submit(store)
    verdict = judge(store, store_settings, sid, tiny_mllm)
    assert verdict.outcome is Outcome.REVIEW
    assert ReasonCode.MODEL_LOW_CONFIDENCE in verdict.reasons
    with store.sessions() as s:
        sub = submissions.get_submission(s, sid)
        assert [j.pipeline for j in sub.judgments] == ["mllm"]
        kept = sub.judgments[0]
        assert kept.model_version == verdicts.models_version(tiny_mllm.models)
        assert kept.data["provenance"]["raw_output"] == verdict.judgments.provenance.raw_output
        assert sub.current_verdict is not None and sub.current_verdict.pipeline == "mllm"


def test_two_workers_record_their_own_judgments_and_one_verdict_is_kept(
    store: Store, store_settings: Settings, tiny_mllm: MllmPipeline, multistage: Pipeline
) -> None:
    sid = submit(store)
    # The CPU worker finishes first: nothing to decide yet.
    record_judgments(store, store_settings, sid, multistage)
    assert decide_from_stored(store, store_settings, sid) is None
    with store.sessions() as s:
        assert submissions.get_submission(s, sid).status is SubmissionStatus.PROCESSING

    record_judgments(store, store_settings, sid, tiny_mllm)
    verdict = decide_from_stored(store, store_settings, sid)

    assert verdict is not None and verdict.outcome is Outcome.REVIEW
    assert ReasonCode.PIPELINES_DISAGREE_PLATE in verdict.reasons
    assert verdict.judgments.provenance.pipelines == ("mllm", "multistage")
    # A re-delivered task decides again: the same decision, kept once.
    again = decide_from_stored(store, store_settings, sid)
    assert again is not None and again.reasons == verdict.reasons
    with store.sessions() as s:
        sub = submissions.get_submission(s, sid)
        by_pipeline = {j.pipeline: j for j in sub.judgments}
        assert set(by_pipeline) == {"mllm", "multistage", "both"}
        assert by_pipeline["mllm"].model_version == verdicts.models_version(tiny_mllm.models)
        assert by_pipeline["multistage"].model_version == verdicts.models_version(multistage.models)
        machine = [v for v in sub.verdicts if v.decided_by == MACHINE]
        assert len(machine) == 1 and machine[0].is_current and machine[0].pipeline == "both"
        assert machine[0].judgment_id == by_pipeline["both"].id
        assert sub.status is SubmissionStatus.DECIDED


def test_workers_finishing_together_keep_one_verdict(
    store: Store, store_settings: Settings, tiny_mllm: MllmPipeline, multistage: Pipeline
) -> None:
    sid = submit(store)
    decided: list[object] = []
    failures: list[BaseException] = []

    def worker(pipeline: Pipeline) -> None:
        try:
            record_judgments(store, store_settings, sid, pipeline)
            decided.append(decide_from_stored(store, store_settings, sid))
        except BaseException as exc:  # surfaced below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in (tiny_mllm, multistage)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not failures
    assert any(v is not None for v in decided)  # whoever stored second saw both
    with store.sessions() as s:
        sub = submissions.get_submission(s, sid)
        assert len([v for v in sub.verdicts if v.decided_by == MACHINE]) == 1
        assert sub.current_verdict is not None and sub.current_verdict.pipeline == "both"
        assert sub.status is SubmissionStatus.DECIDED


def test_judge_both_in_one_process(
    store: Store, store_settings: Settings, tiny_mllm: MllmPipeline, multistage: Pipeline
) -> None:
    sid = submit(store)
    verdict = judge_both(store, store_settings, sid, tiny_mllm, multistage)
    assert verdict.outcome is Outcome.REVIEW
    assert verdict.judgments.provenance.pipeline == "both"
    with store.sessions() as s:
        assert submissions.get_submission(s, sid).current_verdict.pipeline == "both"


def test_an_audit_rejudges_with_both_without_moving_the_status(
    store: Store, store_settings: Settings, tiny_mllm: MllmPipeline, multistage: Pipeline
) -> None:
    sid = submit(store)
    first = judge(store, store_settings, sid, multistage)
    verdict = rejudge(store, store_settings, sid, {"mllm": tiny_mllm, "multistage": multistage}, actor="audit:1")
    assert verdict.judgments.provenance.pipeline == "both"
    assert verdict.outcome is Outcome.REVIEW and first.outcome is Outcome.PASS
    with store.sessions() as s:
        sub = submissions.get_submission(s, sid)
        assert sorted(j.pipeline for j in sub.judgments) == ["both", "mllm", "multistage"]
        assert [v.pipeline for v in sub.verdicts] == ["multistage", "both"]
        assert sub.current_verdict.pipeline == "both" and sub.status is SubmissionStatus.DECIDED
        # The audit trail never saw the submission leave "decided".
        assert not [e for e in audit.list_events(s, subject_id=sid, action="submission.status") if e.actor == "audit:1"]
