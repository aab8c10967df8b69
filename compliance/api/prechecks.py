"""``/v1/prechecks``: check a photo before uploading it, for what the driver fixes by taking it again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile

from compliance.api.deps import Caller, SettingsDep, StoreDep, requires
from compliance.api.errors import ApiError, invalid, photo_error, store_error
from compliance.api.ratelimit import FixedWindowLimiter
from compliance.api.schemas import ErrorResponse, PrecheckOut, PrecheckProblem
from compliance.api.uploads import UploadForm, upload_form
from compliance.messages import MESSAGES
from compliance.photos import PhotoRejected, load_photo
from compliance.service.intake import InvalidUpload
from compliance.service.prechecks import precheck
from compliance.store.errors import StoreError

router = APIRouter(prefix="/v1/prechecks", tags=["prechecks"])

_ERRORS = {
    400: {"model": ErrorResponse, "description": "a body that cannot be parsed"},
    401: {"model": ErrorResponse, "description": "no valid API key"},
    403: {"model": ErrorResponse, "description": "the key lacks the 'submit' scope"},
    413: {"model": ErrorResponse, "description": "photo over the size or pixel limit"},
    415: {"model": ErrorResponse, "description": "not an image, or a format that is not accepted"},
    422: {"model": ErrorResponse, "description": "invalid field, unknown driver or vehicle, undecodable photo"},
    429: {
        "model": ErrorResponse,
        "description": "over the key's precheck limit in this window; Retry-After says when to try again",
    },
}


def _limited(request: Request, caller: Caller) -> None:
    limiter: FixedWindowLimiter = request.app.state.precheck_limiter
    decision = limiter.hit(caller.key_id)
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"over {limiter.limit} prechecks per {limiter.window_s} s for this API key; "
            f"retry in {decision.retry_after_s} s",
            headers={"Retry-After": str(decision.retry_after_s)},
        )


@router.post(
    "",
    response_model=PrecheckOut,
    responses=_ERRORS,
    summary="Check a photo before uploading it: what to fix by taking it again",
)
def create_precheck(
    request: Request,
    caller: Annotated[Caller, Depends(requires("submit"))],
    store: StoreDep,
    settings: SettingsDep,
    photo: Annotated[UploadFile, File(description="the scene photo: the driver by the vehicle")],
    form: Annotated[UploadForm, Depends(upload_form)],
) -> PrecheckOut:
    """The same fields as an upload (``POST /v1/submissions``), answered at once with the problems
    a driver fixes by taking the photo again, each with a code and a message in Chinese and English:
    blurred, too dark or too bright; no person, or no face; no vehicle; no readable plate; no
    position recorded (where the site has one). It never says whether the plate read is the
    registered one, nor anything of the face's identity or liveness. Nothing of the photo is
    stored; the driver's precheck count is. Limited per API key (429 with Retry-After)."""
    _limited(request, caller)
    upload = form.upload(caller)
    data = photo.file.read(settings.max_upload_bytes + 1)
    try:
        scene = load_photo(data, **settings.photo_limits)
    except PhotoRejected as exc:
        raise photo_error(exc) from None
    try:
        result = precheck(store, settings, scene, upload)
    except InvalidUpload as exc:
        raise invalid(exc.code, str(exc)) from None
    except StoreError as exc:
        raise store_error(exc) from None
    return PrecheckOut(
        ok=result.ok,
        problems=[PrecheckProblem(code=code, zh=MESSAGES[code].zh, en=MESSAGES[code].en) for code in result.problems],
    )
