"""The stored path on SQLite and PostgreSQL: accept a photo, judge it, keep everything."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from compliance.demo import samples_dir
from compliance.judgments import FaceMatch, Judgments
from compliance.multistage.base import Image
from compliance.photos import Photo, read_photo_file
from compliance.pipelines import get_pipeline
from compliance.service.intake import Upload, accept
from compliance.service.verdicts import judge
from compliance.settings import Settings, Thresholds
from compliance.store import Store, registry, submissions
from compliance.store.models import SubmissionStatus
from compliance.verdicts import Outcome, ReasonCode

SAMPLES = samples_dir()


@pytest.fixture()
def store(database_url: str, tmp_path: Path) -> Store:
    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs")
    store = Store.open(settings)
    with store.sessions() as s, s.begin():
        carrier = registry.add_carrier(s, code="ACME", name="Acme")
        registry.add_vehicle(s, carrier_id=carrier.id, registered_plate="皖AUJ299")
        for ref, licence in (("A-1", "licence_a.jpg"), ("B-2", "licence_b.jpg")):
            sha = store.blobs.put((SAMPLES / licence).read_bytes())
            registry.add_driver(s, carrier_id=carrier.id, name=ref, external_ref=ref, licence_sha256=sha)
    return store


@pytest.fixture()
def settings(store: Store, database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, blob_dir=tmp_path / "blobs")


def photo(name: str) -> Photo:
    return read_photo_file(SAMPLES / name, max_bytes=20_000_000, max_pixels=50_000_000)


def test_accept_then_judge_keeps_judgments_and_verdict(store: Store, settings: Settings) -> None:
    pipeline = get_pipeline("multistage", settings)
    accepted = accept(store, photo("a_by_car_wanAUJ299.jpg"), Upload(carrier="ACME", driver="A-1", plate="皖AUJ299"))
    assert accepted.created
    verdict = judge(store, settings, accepted.submission_id, pipeline)
    assert verdict.outcome is Outcome.PASS, verdict.reasons
    # Judged again (a retried task): still one judgment and one machine verdict.
    again = judge(store, settings, accepted.submission_id, pipeline)
    assert again.outcome is Outcome.PASS
    with store.sessions() as s:
        sub = submissions.get_submission(s, accepted.submission_id)
        assert sub.status is SubmissionStatus.DECIDED
        assert len(sub.judgments) == 1 and sub.judgments[0].pipeline == "multistage"
        assert len([v for v in sub.verdicts if v.decided_by == "machine"]) == 1
        assert sub.current_verdict is not None and sub.current_verdict.outcome is Outcome.PASS


def test_the_same_photo_for_another_driver_is_a_duplicate(store: Store, settings: Settings) -> None:
    pipeline = get_pipeline("multistage", settings)
    first = accept(store, photo("a_by_car_wanAUJ299.jpg"), Upload(carrier="ACME", driver="A-1", plate="皖AUJ299"))
    judge(store, settings, first.submission_id, pipeline)
    second = accept(store, photo("a_by_car_wanAUJ299.jpg"), Upload(carrier="ACME", driver="B-2", plate="皖AUJ299"))
    verdict = judge(store, settings, second.submission_id, pipeline)
    assert verdict.outcome is Outcome.FAIL
    assert ReasonCode.DUPLICATE_PHOTO in verdict.reasons
    # The first driver's verdict is untouched.
    with store.sessions() as s:
        assert submissions.get_submission(s, first.submission_id).current_verdict.outcome is Outcome.PASS


def test_without_a_claimed_plate_the_fleet_is_matched(store: Store, settings: Settings) -> None:
    pipeline = get_pipeline("multistage", settings)
    accepted = accept(store, photo("a_by_car_wanAUJ299.jpg"), Upload(carrier="ACME", driver="A-1"))
    verdict = judge(store, settings, accepted.submission_id, pipeline)
    plate = next(r for r in verdict.results if r.check == "plate")
    assert plate.outcome is Outcome.PASS


class _BrokenPipeline:
    """A pipeline whose model crashes: the submission must survive as failed, not vanish."""

    name = "broken"
    models: ClassVar[dict[str, str]] = {}

    def judge(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> Judgments:
        raise RuntimeError("model crashed")

    def compare_faces(self, a: Image, b: Image, thresholds: Thresholds | None = None) -> FaceMatch:
        raise RuntimeError("model crashed")


def test_a_crashing_pipeline_leaves_the_submission_failed_not_lost(store: Store, settings: Settings) -> None:
    accepted = accept(store, photo("street_taxi.jpg"), Upload(carrier="ACME", driver="A-1"))
    with pytest.raises(RuntimeError, match="model crashed"):
        judge(store, settings, accepted.submission_id, _BrokenPipeline())
    with store.sessions() as s:
        sub = submissions.get_submission(s, accepted.submission_id)
        assert sub.status is SubmissionStatus.FAILED
        assert "model crashed" in (sub.last_error or "")
        assert store.blobs.exists(sub.photo_sha256)
