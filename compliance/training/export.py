"""Training data from reviewers' corrections: SFT records and DPO pairs, as JSONL beside the photos.

A submission is reviewed when its current verdict was decided by a person (``decided_by`` is not
the machine). The truth is the machine's judgments that verdict rests on with the reviewer's
``Corrections`` laid over them (``Corrections.apply``): that is the SFT answer and the DPO
``chosen``. The DPO ``rejected`` is what the MLLM really wrote (its raw output), and a pair is
written only where that answer differs from the truth, or was not a valid answer at all.

The prompt is production's (``compliance.mllm.prompt``, the same parts in the same order, so the
chat template renders the same text), and the answer is the compact JSON of ``MllmAnswer``, each
value validated by the schema. Records carry two shapes of the same conversation:

- ``messages`` (SFT) / ``prompt`` + ``chosen`` + ``rejected`` (DPO) with ``images``: TRL's
  conversational vision format (structured content, ``{"type": "image"}`` placeholders filled from
  ``images`` in order), which ``datasets.load_dataset("json", ...)`` reads;
- ``conversations`` (+ ``chosen_reply`` / ``rejected_reply``): LLaMA-Factory's sharegpt format
  (``<image>`` placeholders in the text), declared in the ``dataset_info.json`` written beside them.

Image paths are relative to ``out_dir``; the photos are written once each under ``images/`` as
JPEG, decoded as production decodes them (EXIF orientation applied).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from compliance.judgments import Answer, Judgments, PlateReading
from compliance.mllm.answer import compact_json, field_adapter
from compliance.mllm.backends.base import MllmRequest
from compliance.mllm.backends.transformers import chat_messages
from compliance.mllm.prompt import Task, build_request
from compliance.photos import load_photo
from compliance.store.blobs import PhotoStore
from compliance.store.models import MACHINE, Submission, VerdictRecord
from compliance.verdicts import Corrections

IMAGES = "images"
SFT_FILE = "sft.jsonl"
DPO_FILE = "dpo.jsonl"
DATASET_INFO = "dataset_info.json"
_JPEG_QUALITY = 95


@dataclass(frozen=True)
class ExportSummary:
    records: int
    images: int
    path: Path  # the JSONL file written


@dataclass(frozen=True)
class _Reviewed:
    submission_id: str
    images: tuple[str, ...]  # blob digests: the scene photo, then the licence photo if the driver has one
    truth: Judgments
    mllm_output: str | None  # the MLLM's raw answer, where it gave one
    mllm_judgments: Judgments | None  # what that answer parsed to (None: it was not used, e.g. a fallback)


def export_sft(
    session: Session,
    blobs: PhotoStore,
    out_dir: Path,
    *,
    carrier_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ExportSummary:
    """One SFT record per reviewed submission: production's prompt and photos, the corrected answer."""
    writer = _Writer(blobs, out_dir)
    records = []
    for item in _reviewed(session, carrier_id, since, until):
        task, prompt = writer.prompt(item)
        answer = answer_json(item.truth, task)
        records.append(
            {
                "submission_id": item.submission_id,
                "images": prompt["images"],
                "messages": [prompt["user"], _assistant(answer)],
                "conversations": [prompt["human"], {"from": "gpt", "value": answer}],
            }
        )
    path = writer.write(SFT_FILE, records)
    writer.declare(
        "compliance_sft", {"file_name": SFT_FILE, "formatting": "sharegpt", "columns": _LLAMA_FACTORY_COLUMNS}
    )
    return ExportSummary(records=len(records), images=writer.image_count, path=path)


def export_dpo(
    session: Session,
    blobs: PhotoStore,
    out_dir: Path,
    *,
    carrier_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ExportSummary:
    """One DPO pair per reviewed submission where the MLLM's own answer was wrong: chosen is the
    corrected answer, rejected the model's raw output."""
    writer = _Writer(blobs, out_dir)
    records = []
    for item in _reviewed(session, carrier_id, since, until):
        if item.mllm_output is None:
            continue  # the MLLM never answered this one (multistage only, or a failed backend)
        task = _task(item)
        chosen = answer_json(item.truth, task)
        if item.mllm_judgments is not None and not item.mllm_judgments.provenance.output_errors:
            if answer_json(item.mllm_judgments, task) == chosen:
                continue  # the model was right; nothing to prefer
        _, prompt = writer.prompt(item)
        records.append(
            {
                "submission_id": item.submission_id,
                "images": prompt["images"],
                "prompt": [prompt["user"]],
                "chosen": [_assistant(chosen)],
                "rejected": [_assistant(item.mllm_output)],
                "conversations": [prompt["human"]],
                "chosen_reply": {"from": "gpt", "value": chosen},
                "rejected_reply": {"from": "gpt", "value": item.mllm_output},
            }
        )
    path = writer.write(DPO_FILE, records)
    writer.declare(
        "compliance_dpo",
        {
            "file_name": DPO_FILE,
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {**_LLAMA_FACTORY_COLUMNS, "chosen": "chosen_reply", "rejected": "rejected_reply"},
        },
    )
    return ExportSummary(records=len(records), images=writer.image_count, path=path)


_LLAMA_FACTORY_COLUMNS = {"messages": "conversations", "images": "images"}


def answer_json(judgments: Judgments, task: Task) -> str:
    """The answer a model should give for these judgments: ``MllmAnswer``'s fields for the task, in
    the schema's order, each validated by its own field type. Counts and kinds that contradict a
    presence answer are dropped rather than taught (the parser would flag them as errors)."""
    person, vehicle, plate, face = judgments.person, judgments.vehicle, judgments.plate, judgments.face
    people = person.count
    if person.present is Answer.NO:
        people = 0
    elif person.present is Answer.UNKNOWN or (person.present is Answer.YES and people == 0):
        people = None
    same = face.same_person
    # "The same person" says there is a face on each photo; the reverse does not hold.
    seen = Answer.YES if same is Answer.YES else face.scene_face
    on_licence = Answer.YES if same is Answer.YES else face.licence_face
    values: dict[str, Any] = {
        "person": person.present.value,
        "people": people,
        "vehicle": vehicle.present.value,
        "kind": vehicle.kind.value if vehicle.present is not Answer.NO else "unknown",
        "plate": plate.text,
        "color": plate.color.value,
        "rows": plate.rows,
        "plates": [{"plate": p.text, "color": p.color.value, "rows": p.rows} for p in _listed_plates(judgments)],
        "face": seen.value,
        "licence_face": on_licence.value,
        "same": same.value,
    }
    checked = {name: field_adapter(name).validate_python(values[name]) for name in task.fields}
    if "plates" in checked:
        checked["plates"] = [p.model_dump() for p in checked["plates"]]
    return compact_json(checked)


def _listed_plates(judgments: Judgments) -> tuple[PlateReading, ...]:
    """Every plate to teach: the list as read when it holds the plate the verdict rests on; the plate
    alone when it was corrected (the list may hold the uncorrected reading) or the judgments predate
    the list."""
    plate = judgments.plate
    if plate in judgments.plates:
        return judgments.plates
    return (plate,) if plate.text else ()


def _assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def _task(item: _Reviewed) -> Task:
    return Task.SUBMISSION if len(item.images) == 2 else Task.SCENE_ONLY


def _reviewed(
    session: Session, carrier_id: int | None, since: datetime | None, until: datetime | None
) -> Iterator[_Reviewed]:
    query = (
        sa.select(Submission, VerdictRecord)
        .join(
            VerdictRecord,
            sa.and_(VerdictRecord.submission_id == Submission.id, VerdictRecord.is_current.is_(True)),
        )
        .where(VerdictRecord.decided_by != MACHINE, VerdictRecord.judgment_id.is_not(None))
        .options(selectinload(Submission.judgments), selectinload(Submission.driver))
        .order_by(Submission.created_at, Submission.id)
    )
    if carrier_id is not None:
        query = query.where(Submission.carrier_id == carrier_id)
    if since is not None:
        query = query.where(Submission.created_at >= since)
    if until is not None:
        query = query.where(Submission.created_at < until)
    for submission, verdict in session.execute(query):
        judged = {record.id: record for record in submission.judgments}
        decided_from = Judgments.model_validate(judged[verdict.judgment_id].data)
        truth = Corrections.model_validate(verdict.corrections or {}).apply(decided_from)
        output, parsed = _mllm_answer(decided_from, [Judgments.model_validate(r.data) for r in submission.judgments])
        licence = submission.driver.licence_sha256
        yield _Reviewed(
            submission_id=submission.id,
            images=(submission.photo_sha256, licence) if licence else (submission.photo_sha256,),
            truth=truth,
            mllm_output=output,
            mllm_judgments=parsed,
        )


def _mllm_answer(decided_from: Judgments, stored: list[Judgments]) -> tuple[str | None, Judgments | None]:
    """The MLLM's raw answer for the submission: the one the reviewed verdict rests on where it
    holds one (the mllm's own, or a combined "both"), else the answer a fallback set aside, else
    the newest the MLLM gave for it."""
    provenance = decided_from.provenance
    if provenance.raw_output is not None and (provenance.pipelines or (provenance.pipeline,))[0] == "mllm":
        return provenance.raw_output, decided_from
    if provenance.fallback is not None and provenance.fallback.raw_output is not None:
        return provenance.fallback.raw_output, None
    for judgments in reversed(stored):
        if judgments.provenance.pipeline == "mllm" and judgments.provenance.raw_output is not None:
            return judgments.provenance.raw_output, judgments
    return None, None


class _Writer:
    """Writes photos once each under ``images/`` and the records as JSONL, all under ``out_dir``."""

    def __init__(self, blobs: PhotoStore, out_dir: Path) -> None:
        self.blobs = blobs
        self.out_dir = out_dir
        self.written: set[str] = set()
        (out_dir / IMAGES).mkdir(parents=True, exist_ok=True)

    @property
    def image_count(self) -> int:
        return len(self.written)

    def prompt(self, item: _Reviewed) -> tuple[Task, dict[str, Any]]:
        """Production's prompt for the item: the user message (structured and sharegpt) and image paths."""
        images = [self._image(sha) for sha in item.images]
        task = _task(item)
        request = build_request(task, *(image for _, image in images))
        return task, {
            "images": [path for path, _ in images],
            "user": chat_messages(request)[0],
            "human": {"from": "human", "value": _sharegpt_text(request)},
        }

    def _image(self, sha256: str) -> tuple[str, Any]:
        data = self.blobs.get(sha256)
        # Decoded as production decodes it; the photo was accepted once, so no limit applies here.
        photo = load_photo(data, max_bytes=len(data), max_pixels=1 << 40)
        relative = f"{IMAGES}/{sha256}.jpg"
        if sha256 not in self.written:
            target = self.out_dir / relative
            if not target.is_file():
                ok, encoded = cv2.imencode(".jpg", photo.image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
                if not ok:
                    raise ValueError(f"could not encode photo {sha256} as JPEG")
                partial = target.with_suffix(".part")
                partial.write_bytes(encoded.tobytes())
                partial.replace(target)
            self.written.add(sha256)
        return relative, photo.image

    def write(self, name: str, records: list[dict[str, Any]]) -> Path:
        path = self.out_dir / name
        partial = path.with_suffix(".part")
        with partial.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        partial.replace(path)
        return path

    def declare(self, name: str, entry: dict[str, Any]) -> None:
        """Add the file to LLaMA-Factory's ``dataset_info.json`` (kept beside it, other entries kept)."""
        path = self.out_dir / DATASET_INFO
        info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        info[name] = entry  # sharegpt's default tags (from/value, human/gpt) are the ones written
        path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _sharegpt_text(request: MllmRequest) -> str:
    return "".join(part if isinstance(part, str) else "<image>" for part in request.parts)
