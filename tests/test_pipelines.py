"""The pipeline registry: adding a pipeline is one class and one registry line; ``both`` and
``cascade`` are combinations of registered pipelines; each pipeline is built once per the settings it
reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from compliance.demo import samples_dir
from compliance.judgments import FaceMatch, Judgments
from compliance.photos import read_photo_file
from compliance.pipeline import BOTH, Image, Pipeline
from compliance.pipelines import REGISTRY, Registered, choices, get_pipeline, get_pipelines, register, unregister
from compliance.queue.routing import routes
from compliance.service.intake import InvalidUpload, Upload, accept, check_upload
from compliance.service.verdicts import judge
from compliance.settings import Settings, Thresholds
from compliance.store import Store, registry, verdicts

SAMPLES = samples_dir()


class SecondLook:
    """A new pipeline, as a user would add one: here the baseline's models under another name."""

    name = "second-look"

    def __init__(self, settings: Settings) -> None:
        self.inner = get_pipeline("multistage", settings)

    @property
    def models(self) -> dict[str, str]:
        return self.inner.models

    def load(self) -> None:
        self.inner.load()

    def judge(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> Judgments:
        judged = self.inner.judge(scene, licence, thresholds)
        return judged.model_copy(update={"provenance": judged.provenance.model_copy(update={"pipeline": self.name})})

    def judge_batch(
        self, items: Sequence[tuple[Image, Image | None]], thresholds: Thresholds | None = None
    ) -> list[Judgments]:
        return [self.judge(scene, licence, thresholds) for scene, licence in items]

    def compare_faces(self, a: Image, b: Image, thresholds: Thresholds | None = None) -> FaceMatch:
        return self.inner.compare_faces(a, b, thresholds)


@pytest.fixture()
def second_look() -> Iterator[str]:
    # The one registry line a new pipeline needs.
    register("second-look", Registered(SecondLook, reads=lambda settings: frozenset({"detector", "thresholds"})))
    yield "second-look"
    unregister("second-look")


def test_a_registered_pipeline_is_accepted_routed_and_judges_stored_photos(
    second_look: str, database_url: str, tmp_path: Path
) -> None:
    assert second_look in choices() and "both" in choices()
    check_upload(Upload(carrier="ACME", driver="A-1", pipeline=second_look))
    (route,) = routes(second_look)
    assert (route.queue, route.part) == ("multistage", second_look)  # not batched: a CPU worker's task

    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs")
    store = Store.open(settings)
    with store.sessions() as s, s.begin():
        carrier = registry.add_carrier(s, code="ACME", name="Acme")
        registry.add_vehicle(s, carrier_id=carrier.id, registered_plate="皖AUJ299")
        sha = store.blobs.put((SAMPLES / "licence_a.jpg").read_bytes())
        registry.add_driver(s, carrier_id=carrier.id, name="A", external_ref="A-1", licence_sha256=sha)
    photo = read_photo_file(SAMPLES / "a_by_car_wanAUJ299.jpg", max_bytes=20_000_000, max_pixels=50_000_000)
    accepted = accept(store, photo, Upload(carrier="ACME", driver="A-1", plate="皖AUJ299", pipeline=second_look))
    pipeline: Pipeline = get_pipelines(second_look, settings)[second_look]
    verdict = judge(store, settings, accepted.submission_id, pipeline)
    assert verdict.outcome.value == "PASS", verdict.reasons
    with store.sessions() as s:
        stored = verdicts.latest_judgments(s, accepted.submission_id)
    assert set(stored) == {second_look}
    store.engine.dispose()


def test_an_unregistered_name_is_refused_and_both_is_not_an_entry() -> None:
    with pytest.raises(InvalidUpload, match="unknown pipeline 'second-look'"):
        check_upload(Upload(carrier="ACME", driver="A-1", pipeline="second-look"))
    assert "both" not in REGISTRY and set(BOTH) <= set(REGISTRY)
    assert [r.part for r in routes("both")] == list(BOTH)
    with pytest.raises(ValueError, match="registered already"):
        register("both", REGISTRY["multistage"])


def test_a_cascade_is_a_choice_not_an_entry_and_is_queued_at_its_first_stage() -> None:
    assert "cascade" in choices() and "cascade" not in REGISTRY
    assert list(get_pipelines("cascade", Settings())) == ["multistage", "mllm"]  # the order they judge in
    assert [(r.queue, r.part) for r in routes("cascade")] == [("multistage", "multistage")]
    with pytest.raises(ValueError, match="registered already"):
        register("cascade", REGISTRY["multistage"])


def test_a_pipeline_is_built_once_per_the_settings_it_reads(second_look: str) -> None:
    settings = Settings()
    first = get_pipeline(second_look, settings)
    # Settings the pipeline does not read build no second copy of its models...
    assert (
        get_pipeline(
            second_look,
            settings.model_copy(update={"mllm_model": "elsewhere", "database_url": "sqlite:///elsewhere.db"}),
        )
        is first
    )
    assert get_pipeline("multistage", settings.model_copy(update={"mllm_batch_size": 3})) is get_pipeline(
        "multistage", settings
    )
    # ...and a setting it reads does.
    changed = settings.model_copy(update={"detector": "ultralytics"})
    assert get_pipeline(second_look, changed) is not first


def test_the_mllm_pipeline_is_built_anew_for_the_other_model_source() -> None:
    # The same model id names other weights in the other source's cache.
    settings = Settings(mllm_backend="transformers")
    first = get_pipeline("mllm", settings)
    assert get_pipeline("mllm", settings.model_copy(update={"model_source": "modelscope"})) is not first
    assert get_pipeline("mllm", settings.model_copy(update={"mllm_batch_size": 3})) is not first
    assert get_pipeline("mllm", settings.model_copy(update={"database_url": "sqlite:///elsewhere.db"})) is first
