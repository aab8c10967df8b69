"""Any OpenAI-compatible chat-completions server (vLLM, SGLang, LMDeploy, a hosted API) over HTTP.

Images go as base64 data URLs, downscaled to the configured pixel budget first (the server would
downscale them anyway; sending the full photo only costs bandwidth). The answer's JSON schema is
sent as ``response_format`` where the server takes it; a server that rejects it is asked again
without, once, and not again. Token log-probabilities are requested (``logprobs``) so that
confidence comes from the model, as with the in-process backend.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import httpx

from compliance.mllm.backends.base import Image, MllmError, MllmOutput, MllmRequest, TokenLogprob, fit_pixels
from compliance.settings import Settings

log = logging.getLogger(__name__)

TOP_LOGPROBS = 5
# What a server writes for a token its grammar masked out: vLLM clamps -inf to -9999.0. No model's own
# distribution puts one of its five likeliest tokens there.
MASKED_LOGPROB = -9999.0
# Answers worth retrying: the server or something in front of it is busy or restarting.
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class OpenAIBackend:
    name = "openai"

    def __init__(
        self, settings: Settings, *, backoff_s: float = 0.5, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.backoff_s = backoff_s
        headers = (
            {"Authorization": f"Bearer {settings.mllm_api_key.get_secret_value()}"} if settings.mllm_api_key else {}
        )
        self._client = httpx.Client(
            base_url=settings.mllm_base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(settings.mllm_timeout_s),
            transport=transport,
            limits=httpx.Limits(max_connections=max(1, settings.mllm_concurrency)),
        )
        # None: not yet known whether the server takes a json_schema response_format.
        self._schema_supported: bool | None = None
        self._served: str | None = None
        self._warned_mask = False
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.settings.mllm_served_model or self.settings.mllm_model

    @property
    def version(self) -> str:
        """What the server said it ran (its model name and fingerprint); unknown before the first answer."""
        return self._served or "unknown"

    # The server holds the model: nothing to load here.
    loaded = True

    def load(self) -> None:
        return None

    def close(self) -> None:
        self._client.close()

    def generate(self, requests: Sequence[MllmRequest]) -> list[MllmOutput]:
        if len(requests) <= 1:
            return [self._complete(r) for r in requests]
        workers = max(1, min(self.settings.mllm_concurrency, len(requests)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mllm-http") as pool:
            return list(pool.map(self._complete, requests))

    def _complete(self, request: MllmRequest) -> MllmOutput:
        body = self._body(request)
        attempt = 0
        while True:
            with_schema = "response_format" in body
            try:
                response = self._client.post("chat/completions", json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code in (400, 422) and with_schema and self._schema_supported is not True:
                    # Some servers do not know json_schema response formats: ask again without.
                    if self._schema_supported is None:
                        log.warning(
                            "%s refused the answer's JSON schema (%s); answers are no longer constrained "
                            "by the server, only checked here: %s",
                            self._url(),
                            response.status_code,
                            response.text[:200],
                        )
                    self._schema_supported = False
                    body = {k: v for k, v in body.items() if k != "response_format"}
                    continue
                if response.status_code not in _RETRY_STATUS:
                    if response.is_error:
                        raise MllmError(f"{self._url()} answered {response.status_code}: {response.text[:300]}")
                    if with_schema:
                        self._schema_supported = True
                    return self._output(response)
                failure = f"HTTP {response.status_code}: {response.text[:200]}"
            if attempt >= self.settings.mllm_retries:
                raise MllmError(f"{self._url()} failed after {attempt + 1} attempts; last: {failure}")
            time.sleep(self.backoff_s * 2**attempt)
            attempt += 1

    def _url(self) -> str:
        return f"{self._client.base_url}chat/completions"

    def _body(self, request: MllmRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        for part in request.parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            else:
                content.append({"type": "image_url", "image_url": {"url": self._data_url(part)}})
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": self.settings.mllm_max_new_tokens,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        if request.schema is not None and self.settings.mllm_server_schema and self._schema_supported is not False:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.schema, "strict": True},
            }
        return body

    def _data_url(self, image: Image) -> str:
        fitted = fit_pixels(image, self.settings.mllm_max_pixels)
        ok, encoded = cv2.imencode(".jpg", fitted, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise MllmError("could not encode an image as JPEG for the server")
        return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")

    def _output(self, response: httpx.Response) -> MllmOutput:
        try:
            payload = response.json()
            choice = payload["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise MllmError(f"{self._url()} sent no chat completion: {response.text[:300]!r}") from exc
        served = " ".join(str(payload[k]) for k in ("model", "system_fingerprint") if payload.get(k))
        if served:
            with self._lock:
                self._served = served
        tokens = _tokens(choice.get("logprobs"))
        extra = {"server_model": served} if served else {}
        if tokens is not None and _after_mask(tokens):
            # The server read the probabilities after its grammar's mask, which makes whatever the
            # grammar allows look sure: they say nothing of the model's confidence, so none is used.
            if not self._warned_mask:
                self._warned_mask = True
                log.warning(
                    "%s reports token log-probabilities after its grammar's mask (masked alternatives at %s): "
                    "they cannot measure the model's confidence, so every answer goes to REVIEW. "
                    "Set COMPLIANCE_MLLM_SERVER_SCHEMA=false to send no schema to this server.",
                    self._url(),
                    MASKED_LOGPROB,
                )
            tokens = None
            extra["logprobs"] = "after the server's grammar mask"
        return MllmOutput(text=text, tokens=tokens, finished=choice.get("finish_reason") != "length", extra=extra)


def _tokens(logprobs: Any) -> tuple[TokenLogprob, ...] | None:
    if not isinstance(logprobs, dict) or not isinstance(logprobs.get("content"), list):
        return None
    tokens: list[TokenLogprob] = []
    for entry in logprobs["content"]:
        try:
            top = tuple((_bytes(t), float(t["logprob"])) for t in entry.get("top_logprobs") or ())
            tokens.append(TokenLogprob(bytes=_bytes(entry), logprob=float(entry["logprob"]), top=top))
        except (KeyError, TypeError, ValueError):
            return None
    return tuple(tokens)


def _after_mask(tokens: tuple[TokenLogprob, ...]) -> bool:
    """Whether any step's likeliest alternatives include a token the server had masked out."""
    return any(logprob <= MASKED_LOGPROB for token in tokens for _, logprob in token.top)


def _bytes(entry: dict[str, Any]) -> bytes:
    """The token's bytes; servers send them where a token is part of a UTF-8 character."""
    raw = entry.get("bytes")
    if isinstance(raw, list):
        return bytes(raw)
    return str(entry["token"]).encode("utf-8")
