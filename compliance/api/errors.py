"""Every error the API gives is JSON: ``{"error": {"code", "message", "details"?}}`` with a 4xx
status; a 5xx means a bug (or the database down), never bad input.

The domain's errors are mapped here, at the boundary, by kind: a lookup that fails is 404 for the
resource in the path and 422 for one named in the body; bad values are 422; a rejected photo is
415, 413 or 422 by what is wrong with it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from compliance.photos import PhotoRejected
from compliance.store.errors import IdempotencyConflict, PhotoStoreUnavailable, StoreError

log = logging.getLogger("compliance.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def not_found(what: str, ref: object) -> ApiError:
    # The same answer whether it does not exist or belongs to another carrier: a 403 would confirm it.
    return ApiError(404, "not_found", f"no {what} {ref}")


def invalid(code: str, message: str) -> ApiError:
    return ApiError(422, code, message)


# Photo rejections by their code: the file is not an image we take (415), too big (413), or an
# image we cannot judge (422).
_PHOTO_STATUS = {
    "not_an_image": 415,
    "unsupported_format": 415,
    "too_large": 413,
    "too_many_pixels": 413,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def photo_error(exc: PhotoRejected, field: str = "photo") -> ApiError:
    return ApiError(_PHOTO_STATUS.get(exc.code, 422), f"photo_{exc.code}", f"{field}: {exc}")


def store_error(exc: StoreError) -> ApiError:
    """A store refusal caused by the request's body: a name that is not the caller's, a bad value."""
    if isinstance(exc, IdempotencyConflict):
        return ApiError(409, "idempotency_conflict", str(exc))
    if isinstance(exc, PhotoStoreUnavailable):  # not the caller's fault: nothing kept, try again
        return ApiError(
            503,
            "photo_store_unavailable",
            "照片存储暂不可用，请稍后重试 (the photo store is unavailable; try again shortly)",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, LookupError):
        return ApiError(422, "unknown_reference", str(exc))
    if isinstance(exc, ValueError):
        return ApiError(422, "invalid_value", str(exc))
    return ApiError(409, "conflict", str(exc))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(PhotoRejected)
    async def _photo(request: Request, exc: PhotoRejected) -> JSONResponse:
        error = photo_error(exc)
        return JSONResponse(error_body(error.code, error.message), status_code=error.status)

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        error = store_error(exc)
        return JSONResponse(error_body(error.code, error.message), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path", "header"))
        message = f"{where}: {first['msg']}" if where else first["msg"]
        return JSONResponse(error_body("invalid_request", message, jsonable_encoder(details)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "the service failed; it is logged"), status_code=500)
