"""One prompt per submission: the scene photo, the licence photo, and an instruction that shows the
answer's JSON schema, generated from ``MllmAnswer`` so that it is written once."""

from __future__ import annotations

from enum import StrEnum

from compliance.mllm.answer import FACE_FIELDS, FIELDS, LICENCE_FIELDS, answer_schema, compact_json, decoding_schema
from compliance.mllm.backends.base import Image, MllmRequest


class Task(StrEnum):
    SUBMISSION = "submission"  # scene photo and licence photo
    SCENE_ONLY = "scene_only"  # no licence photo on record: nothing about the licence is asked
    FACES = "faces"  # two photos of faces: same person?

    @property
    def fields(self) -> tuple[str, ...]:
        if self is Task.SUBMISSION:
            return FIELDS
        if self is Task.SCENE_ONLY:
            return tuple(f for f in FIELDS if f not in LICENCE_FIELDS)
        return FACE_FIELDS


_RULES = (
    "Answer with ONE JSON object matching this JSON schema, and nothing else:\n{schema}\n"
    'Write "unknown" (null for numbers and the plate) for anything you cannot see clearly; never guess. '
    "Write the plate exactly as printed, province character first.\n"
    '只输出一个符合上述 JSON schema 的 JSON 对象。看不清的一律填 "unknown"（数字和车牌填 null），不要猜测。'
)

_INTRO = {
    Task.SUBMISSION: (
        "Image 1 is a photo a truck driver took of themselves beside their vehicle; "
        "image 2 is the photo on the driver's licence.\n"
        "图1是司机在车旁拍的人车合照，图2是该司机驾驶证上的照片。\n"
    ),
    Task.SCENE_ONLY: (
        "The image is a photo a truck driver took of themselves beside their vehicle.\n图中是司机在车旁拍的人车合照。\n"
    ),
    Task.FACES: (
        "Image 1 and image 2 each show a person. Treat image 1 as the scene photo and image 2 as the licence photo.\n"
        "图1和图2各有一人，判断是否为同一人。\n"
    ),
}


def instruction(task: Task) -> str:
    return _INTRO[task] + _RULES.format(schema=compact_json(answer_schema(task.fields)))


def build_request(task: Task, first: Image, second: Image | None = None) -> MllmRequest:
    """The request for one submission (``second`` is the licence photo) or one pair of faces."""
    if task is Task.SCENE_ONLY:
        if second is not None:
            raise ValueError("a scene-only prompt takes one image")
        parts: tuple[str | Image, ...] = (first, instruction(task))
    else:
        if second is None:
            raise ValueError(f"a {task.value} prompt takes two images")
        parts = ("Image 1 / 图1:", first, "Image 2 / 图2:", second, instruction(task))
    # The prompt shows the plain schema; the decoder (or a server's) enforces the richer one, whose
    # plate pattern would cost hundreds of prompt tokens a model does not need to read.
    return MllmRequest(parts=parts, schema=decoding_schema(task.fields))


def submission_request(scene: Image, licence: Image | None) -> tuple[Task, MllmRequest]:
    task = Task.SUBMISSION if licence is not None else Task.SCENE_ONLY
    return task, build_request(task, scene, licence)
