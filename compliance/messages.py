"""One table of what every code means, in Chinese and English: the verdicts' reasons (``ReasonCode``)
and the problems a precheck tells a driver to fix (``PrecheckCode``). The API's precheck answers
from it; the dashboard and the API's verdicts are to read their explanations from it too, so that
a code is worded once. A new code needs its entry here (tests/test_messages.py holds every code
to both languages).

The precheck's messages speak to a driver about to take the photo again ("retake ..."); the
reasons' explanations say what was decided and why, to a driver or a compliance team.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from babel import negotiate_locale

from compliance.prechecks import PrecheckCode
from compliance.verdicts import ReasonCode

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
# Each language as a tag (BCP 47), as a Content-Language header and a webhook's keys name it.
TAGS: dict[Language, str] = {"zh": "zh-CN", "en": "en"}
# An Accept-Language header is read this far: a client's list is a handful, a longer one is noise.
MAX_RANGES = 32


@dataclass(frozen=True, slots=True)
class Message:
    zh: str
    en: str

    def in_(self, language: Language) -> str:
        return self.zh if language == "zh" else self.en


MESSAGES: dict[str, Message] = {
    # --- what a precheck tells a driver to fix, by taking the photo again -------------------------
    PrecheckCode.PHOTO_BLURRED: Message(
        "照片模糊，请拿稳手机重新拍摄。", "The photo is blurred: hold the phone still and retake it."
    ),
    PrecheckCode.PHOTO_TOO_DARK: Message(
        "照片太暗，请到光线充足处或打开闪光灯重拍。",
        "The photo is too dark: retake it in better light or with the flash.",
    ),
    PrecheckCode.PHOTO_TOO_BRIGHT: Message(
        "照片过亮，请避开强光直射重新拍摄。", "The photo is too bright: retake it out of direct glare."
    ),
    PrecheckCode.NO_PERSON: Message(
        "照片中没有人，请司机本人站在车旁入镜。", "No one is in the photo: stand by the vehicle, in the picture."
    ),
    PrecheckCode.NO_FACE: Message(
        "看不到您的脸，请面向镜头重新拍摄。", "Your face is not visible: face the camera and retake the photo."
    ),
    PrecheckCode.NO_VEHICLE: Message(
        "照片中没有车辆，请将车辆拍进画面。", "No vehicle is in the photo: get the vehicle into the picture."
    ),
    PrecheckCode.NO_READABLE_PLATE: Message(
        "看不清车牌，请让车牌完整、清晰地出现在照片中。",
        "The plate cannot be read: get the whole plate into the photo, clearly.",
    ),
    PrecheckCode.NO_POSITION: Message(
        "照片没有位置信息，请在相机设置中开启定位后重新拍摄。",
        "The photo has no position: turn on location for the camera and retake it.",
    ),
    # --- the verdicts' reasons -------------------------------------------------------------------
    ReasonCode.PERSON_MISSING: Message("照片中没有人。", "No person in the photo."),
    ReasonCode.PERSON_UNCERTAIN: Message(
        "无法确定照片中是否有人，需人工审核。", "Could not tell whether a person is in the photo; a person checks it."
    ),
    ReasonCode.VEHICLE_MISSING: Message("照片中没有车辆。", "No vehicle in the photo."),
    ReasonCode.VEHICLE_UNCERTAIN: Message(
        "无法确定照片中是否有车辆，需人工审核。",
        "Could not tell whether a vehicle is in the photo; a person checks it.",
    ),
    ReasonCode.PLATE_UNREADABLE: Message("无法识别车牌。", "No plate could be read."),
    ReasonCode.PLATE_LOW_CONFIDENCE: Message(
        "车牌识别把握不足，需人工审核。", "The plate was read without enough confidence; a person checks it."
    ),
    ReasonCode.PLATE_MISMATCH: Message("车牌与登记车牌不符。", "The plate is not the registered plate."),
    ReasonCode.PLATE_CONFUSABLE: Message(
        "车牌与登记车牌仅差易混淆字符（如0/D、8/B），需人工审核。",
        "The plate differs from the registered one only by look-alike characters (0/D, 8/B); a person checks it.",
    ),
    ReasonCode.PLATE_UNCERTAIN_CHARACTER: Message(
        "车牌有一个字符与登记车牌不同，且该字符识别把握不足，需人工审核。",
        "One character differs from the registered plate and was read unsurely; a person checks it.",
    ),
    ReasonCode.PLATE_MATCH_NOT_NEAREST: Message(
        "识别到登记车牌，但更近的车辆是另一块车牌，需人工审核。",
        "The registered plate is read, but a nearer vehicle's plate is another; a person checks it.",
    ),
    ReasonCode.PLATE_UNKNOWN_FORMAT: Message(
        "识别出的车牌不符合已知车牌格式。", "The plate read fits no known plate format."
    ),
    ReasonCode.PLATE_NOT_REGISTERED: Message("没有可比对的登记车牌。", "No registered plate to compare with."),
    ReasonCode.FACE_MISMATCH: Message(
        "照片中的人脸与驾驶证照片不是同一人。", "The face in the photo is not the face on the licence."
    ),
    ReasonCode.FACE_UNCERTAIN: Message(
        "无法确定人脸是否与驾驶证照片一致，需人工审核。",
        "Could not tell whether the face matches the licence; a person checks it.",
    ),
    ReasonCode.FACE_NOT_IN_SCENE: Message("照片中找不到人脸。", "No face found in the photo."),
    ReasonCode.FACE_NOT_ON_LICENCE: Message("驾驶证照片中找不到人脸。", "No face found on the licence photo."),
    ReasonCode.FACE_NOT_LIVE: Message(
        "照片中的人脸可能是翻拍的照片或屏幕上的画面，需人工审核。",
        "The face may be a printed photo or a screen held up to the camera; a person checks it.",
    ),
    ReasonCode.LICENCE_PHOTO_MISSING: Message(
        "该司机没有登记驾驶证照片。", "No licence photo on record for the driver."
    ),
    ReasonCode.LOW_QUALITY_BLUR: Message("照片模糊。", "The photo is blurred."),
    ReasonCode.LOW_QUALITY_DARK: Message("照片太暗。", "The photo is too dark."),
    ReasonCode.LOW_QUALITY_OVEREXPOSED: Message("照片过曝。", "The photo is overexposed."),
    ReasonCode.LOW_RESOLUTION: Message("照片分辨率太低。", "The photo's resolution is too low."),
    ReasonCode.QUALITY_UNKNOWN: Message("无法测量照片质量。", "The photo's quality could not be measured."),
    ReasonCode.DUPLICATE_PHOTO: Message(
        "这张照片此前已为其他司机或其他日期提交过。", "The same photo was sent before, for another driver or day."
    ),
    ReasonCode.CAPTURE_TIME_OUTSIDE_WINDOW: Message(
        "拍摄时间不在任务时间范围内。", "The photo was taken outside the job's time window."
    ),
    ReasonCode.CAPTURE_TIME_MISSING: Message("照片没有拍摄时间。", "The photo carries no capture time."),
    ReasonCode.LOCATION_OUTSIDE_SITE: Message(
        "照片记录的拍摄位置在登记场地范围之外。", "The position the photo recorded is outside the registered site."
    ),
    ReasonCode.LOCATION_MISSING: Message(
        "照片没有记录拍摄位置（请打开手机定位后重拍）。",
        "The photo recorded no position (turn on the phone's location).",
    ),
    ReasonCode.PHOTO_EDITED: Message("照片经过修图软件处理。", "The photo was saved by an editing app."),
    ReasonCode.NO_CAMERA_EXIF: Message(
        "照片没有相机信息（可能是截图或转存的图片）。",
        "The photo carries no camera make or model (a screenshot or re-saved image?).",
    ),
    ReasonCode.INVALID_MODEL_OUTPUT: Message(
        "模型输出无效（格式错误或被截断），需人工审核。",
        "The model's answer was malformed or cut off; a person checks it.",
    ),
    ReasonCode.MODEL_LOW_CONFIDENCE: Message(
        "模型对其答案把握不足，需人工审核。", "The model gave its answer a low probability; a person checks it."
    ),
    ReasonCode.PIPELINES_DISAGREE_PERSON: Message(
        "两个模型对是否有人判断不一致，需人工审核。", "The two pipelines disagree on the person; a person checks it."
    ),
    ReasonCode.PIPELINES_DISAGREE_VEHICLE: Message(
        "两个模型对车辆判断不一致，需人工审核。", "The two pipelines disagree on the vehicle; a person checks it."
    ),
    ReasonCode.PIPELINES_DISAGREE_PLATE: Message(
        "两个模型对车牌判断不一致，需人工审核。", "The two pipelines disagree on the plate; a person checks it."
    ),
    ReasonCode.PIPELINES_DISAGREE_FACE: Message(
        "两个模型对人脸判断不一致，需人工审核。", "The two pipelines disagree on the face; a person checks it."
    ),
    ReasonCode.MLLM_FALLBACK: Message(
        "多模态模型未给出可用答案，改由基线模型判定。",
        "The multimodal model gave no usable answer; the baseline judged instead.",
    ),
}


def message(code: str, language: Language = "en") -> str:
    """The code's message in ``language``; a code without an entry reads as itself."""
    found = MESSAGES.get(code)
    return found.in_(language) if found is not None else code


def messages(codes: Iterable[str], language: Language = "en") -> list[str]:
    """Each code's message, in the codes' order."""
    return [message(code, language) for code in codes]


def in_both(codes: Iterable[str]) -> dict[str, list[str]]:
    """The codes' messages in every language, keyed by tag: ``{"zh-CN": [...], "en": [...]}``."""
    listed = list(codes)
    return {TAGS[language]: messages(listed, language) for language in LANGUAGES}


def negotiate(accept_language: str | None, default: Language = "en") -> Language:
    """The language to answer in, from an Accept-Language header (RFC 9110 12.5.4): ranges by
    their q-value, highest first, q=0 never; ``*`` or nothing we speak gives ``default``. Any
    Chinese (zh, zh-CN, zh-Hans, zh-TW) is answered in Simplified Chinese."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",", MAX_RANGES)[:MAX_RANGES]):
        tag, _, params = part.partition(";")
        tag = tag.strip().lower().replace("_", "-")  # tags are case-insensitive; zh_CN is a common slip
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0  # a malformed weight is not a preference
        if tag and 0.0 < weight <= 1.0:
            ranked.append((-weight, position, tag))
    preferred = [default if tag == "*" else tag for _, _, tag in sorted(ranked)]
    chosen = negotiate_locale(preferred, LANGUAGES, sep="-", aliases=None)
    return chosen if chosen in LANGUAGES else default  # type: ignore[return-value]
