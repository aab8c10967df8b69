"""The request-body limits: a body larger than allowed is refused with a JSON 413 as soon as its
declared length (or, streamed, its bytes so far) says so, before anything is parsed or written to
disk. A photo upload (multipart) may be as large as the largest photo allowed; any other body (JSON)
is small: parsed, a few MiB of JSON become hundreds of MiB of Python objects."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from compliance.api.errors import error_body


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit}-byte limit")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, max_other_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_bytes
        self.max_other_bytes = max_other_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.max_upload_bytes if upload else self.max_other_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            error = BodyTooLarge(limit)
            await JSONResponse(error_body("too_large", str(error.detail)), status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the app's body parsing: the error handlers turn it into a JSON 413.
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)
