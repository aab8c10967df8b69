"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 that answers from a script:
timeouts, 5xx then success, a server that rejects json_schema, malformed and wrongly typed answers,
token log-probabilities, and the concurrency limit."""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np
import pytest

from compliance import plates
from compliance.inspection import decide
from compliance.judgments import Answer
from compliance.mllm.backends.base import MllmError
from compliance.mllm.backends.openai import OpenAIBackend
from compliance.mllm.pipeline import MllmPipeline
from compliance.settings import Settings, Thresholds
from compliance.verdicts import Outcome, ReasonCode

GOOD = {
    "person": "yes",
    "people": 1,
    "vehicle": "yes",
    "kind": "truck",
    "plate": "京A·12345",
    "color": "blue",
    "rows": 1,
    "face": "yes",
    "licence_face": "yes",
    "same": "yes",
}


@dataclass
class Reply:
    status: int = 200
    content: str | None = None
    raw_body: str | None = None  # sent as is, instead of a chat completion
    delay_s: float = 0.0
    logprobs: list[tuple[str, float]] | None = None  # (token text, probability)
    finish_reason: str = "stop"
    # Alternatives a grammar masked out, as vLLM reports them when it reads probabilities after its mask.
    masked: bool = False


@dataclass
class Script:
    replies: list[Reply] = field(default_factory=list)
    default: Reply | None = None
    bodies: list[dict[str, Any]] = field(default_factory=list)
    active: int = 0
    most_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.bodies.append(body)
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            reply = self.replies.pop(0) if self.replies else self.default
        assert reply is not None, "the server got a request the test did not expect"
        return reply

    def done(self) -> None:
        with self.lock:
            self.active -= 1


def _completion(reply: Reply) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": reply.content},
        "finish_reason": reply.finish_reason,
    }
    if reply.logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": t,
                    "logprob": math.log(p),
                    "bytes": list(t.encode("utf-8")),
                    "top_logprobs": [{"token": t, "logprob": math.log(p), "bytes": list(t.encode("utf-8"))}]
                    + ([{"token": "?", "logprob": -9999.0, "bytes": [63]}] if reply.masked else []),
                }
                for t, p in reply.logprobs
            ]
        }
    return {"id": "cmpl-1", "object": "chat.completion", "model": "qwen2-vl-test", "choices": [choice]}


@pytest.fixture()
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            reply = script.next(body)
            try:
                time.sleep(reply.delay_s)
                payload = reply.raw_body if reply.raw_body is not None else json.dumps(_completion(reply))
                if reply.status != 200 and reply.raw_body is None:
                    payload = json.dumps({"error": {"message": f"scripted {reply.status}"}})
                data = payload.encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): that is the case under test
            finally:
                script.done()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def photo() -> np.ndarray:
    # A synthetic 1600x1200 photo: the backend must downscale it to the pixel budget before sending.
    image = np.zeros((1200, 1600, 3), dtype=np.uint8)
    cv2.rectangle(image, (200, 300), (1400, 1000), (40, 120, 200), -1)
    return image


def _backend(url: str, **settings: Any) -> OpenAIBackend:
    values = {
        "mllm_base_url": url,
        "mllm_served_model": "qwen2-vl-test",
        "mllm_retries": 2,
        "mllm_timeout_s": 5.0,
        "mllm_max_pixels": 64 * 28 * 28,
    } | settings
    return OpenAIBackend(Settings(**values), backoff_s=0.01)


def _confident(text: str, p: float = 0.99) -> list[tuple[str, float]]:
    return [(c, p) for c in text]


def test_one_submission_is_one_request_with_two_images_and_the_schema(
    server: tuple[str, Script], photo: np.ndarray
) -> None:
    url, script = server
    content = json.dumps(GOOD, ensure_ascii=False)
    script.replies = [Reply(content=content, logprobs=_confident(content))]
    backend = _backend(url)
    judgments = MllmPipeline(backend, backend.settings).judge(photo, photo)

    assert len(script.bodies) == 1
    body = script.bodies[0]
    parts = body["messages"][0]["content"]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == 2
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(images[0].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[0] * decoded.shape[1] <= 64 * 28 * 28
    assert body["logprobs"] is True and body["temperature"] == 0.0
    sent = body["response_format"]["json_schema"]
    assert sent["strict"] is True and sent["schema"]["required"][-1] == "same"
    # The richer schema: each plate under the plate grammar, so a server that honours `pattern`
    # can only let the model write a well-formed plate.
    plate_string = next(b for b in sent["schema"]["properties"]["plate"]["anyOf"] if b["type"] == "string")
    assert plate_string["pattern"] == plates.PATTERN
    listed = sent["schema"]["properties"]["plates"]["items"]["properties"]["plate"]["anyOf"]
    assert plate_string in listed

    assert judgments.provenance.output_errors == ()
    assert judgments.plate.text == "京A12345" and judgments.plate.confidence == pytest.approx(0.99)
    assert judgments.face.same_person is Answer.YES
    assert judgments.provenance.models == {"mllm:openai:qwen2-vl-test": "qwen2-vl-test"}
    verdict = decide(judgments, thresholds=Thresholds(), registered_plates=["京A12345"], licence_given=True)
    # The model's answer is consistent and sure; the quality checks alone decide the synthetic photo.
    assert ReasonCode.INVALID_MODEL_OUTPUT not in verdict.reasons


def test_a_5xx_is_retried_then_succeeds(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    content = json.dumps(GOOD)
    script.replies = [Reply(status=503), Reply(status=502), Reply(content=content, logprobs=_confident(content))]
    output = _backend(url).generate([_request(photo)])[0]
    assert len(script.bodies) == 3
    assert json.loads(output.text) == GOOD


def test_a_timeout_is_retried_then_gives_up_with_a_clear_error(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    script.default = Reply(content="{}", delay_s=1.0)
    backend = _backend(url, mllm_timeout_s=0.2, mllm_retries=1)
    with pytest.raises(MllmError, match="failed after 2 attempts; last: ReadTimeout"):
        MllmPipeline(backend, backend.settings).judge(photo, None)
    assert len(script.bodies) == 2


def test_a_timeout_then_an_answer_succeeds(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    script.replies = [Reply(content="{}", delay_s=1.0), Reply(content=json.dumps(GOOD))]
    output = _backend(url, mllm_timeout_s=0.3).generate([_request(photo)])[0]
    assert json.loads(output.text) == GOOD and output.tokens is None


def test_a_client_error_is_not_retried(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    script.replies = [Reply(status=401)]
    with pytest.raises(MllmError, match="answered 401"):
        _backend(url).generate([_request(photo)])
    assert len(script.bodies) == 1


def test_a_server_without_json_schema_is_asked_again_without_it(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    script.replies = [Reply(status=400), Reply(content=json.dumps(GOOD)), Reply(content=json.dumps(GOOD))]
    backend = _backend(url)
    backend.generate([_request(photo)])
    backend.generate([_request(photo)])
    assert ["response_format" in b for b in script.bodies] == [True, False, False]


def test_a_body_that_is_not_a_completion_is_an_error(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    script.replies = [Reply(raw_body="<html>proxy error</html>")]
    with pytest.raises(MllmError, match="sent no chat completion"):
        _backend(url).generate([_request(photo)])


def test_malformed_json_answer_becomes_unknown_and_review(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    content = '{"person": "yes", "people": 1,, "vehicle": yes "kind": "truck", "plate": "京A123'
    script.replies = [Reply(content=content, logprobs=_confident(content), finish_reason="length")]
    backend = _backend(url)
    judgments = MllmPipeline(backend, backend.settings).judge(photo, photo)
    errors = judgments.provenance.output_errors
    assert judgments.provenance.raw_output == content
    assert "answer cut off at the token limit" in errors
    assert any(e.startswith("plate: cut off") for e in errors)
    assert judgments.plate.text is None and judgments.face.same_person is Answer.UNKNOWN
    assert judgments.person.present is Answer.YES  # what was complete and sure is kept
    verdict = decide(judgments, thresholds=Thresholds(), registered_plates=["京A12345"], licence_given=True)
    assert verdict.outcome is Outcome.REVIEW and ReasonCode.INVALID_MODEL_OUTPUT in verdict.reasons


def test_wrong_types_become_unknown_and_review(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    content = json.dumps(GOOD | {"person": 1, "people": "a few", "plate": 12345, "same": {"answer": "yes"}})
    script.replies = [Reply(content=content, logprobs=_confident(content))]
    backend = _backend(url)
    judgments = MllmPipeline(backend, backend.settings).judge(photo, photo)
    errors = judgments.provenance.output_errors
    assert {e.split(":")[0] for e in errors} == {"person", "people", "plate", "same"}
    assert judgments.person.present is Answer.UNKNOWN and judgments.person.count is None
    assert judgments.plate.text is None and judgments.face.same_person is Answer.UNKNOWN
    assert judgments.vehicle.present is Answer.YES
    verdict = decide(judgments, thresholds=Thresholds(), registered_plates=["京A12345"], licence_given=True)
    assert verdict.outcome is Outcome.REVIEW


def test_an_unsure_answer_from_the_server_becomes_unknown(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    content = json.dumps(GOOD)
    where = content.index('"yes"', content.index('"same"'))
    logprobs = [(c, 0.3 if where < i < where + 4 else 0.99) for i, c in enumerate(content)]
    script.replies = [Reply(content=content, logprobs=logprobs)]
    backend = _backend(url, mllm_confidence_min=0.6)
    judgments = MllmPipeline(backend, backend.settings).judge(photo, photo)
    assert judgments.face.same_person is Answer.UNKNOWN
    assert judgments.face.scene_face is Answer.YES
    assert any(e.startswith("same: 'yes' at probability 0.30") for e in judgments.provenance.output_doubts)


def test_a_batch_is_sent_concurrently_up_to_the_limit(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    script.default = Reply(content=json.dumps(GOOD), delay_s=0.2)
    backend = _backend(url, mllm_concurrency=2)
    judgments = MllmPipeline(backend, backend.settings).judge_batch([(photo, None)] * 6)
    assert len(judgments) == 6 and len(script.bodies) == 6
    assert script.most_active == 2
    assert all(len([p for p in b["messages"][0]["content"] if p["type"] == "image_url"]) == 1 for b in script.bodies)
    assert all("same" not in b["response_format"]["json_schema"]["schema"]["properties"] for b in script.bodies)


def _request(photo: np.ndarray) -> Any:
    from compliance.mllm.prompt import submission_request

    return submission_request(photo, photo)[1]


def test_probabilities_read_after_the_servers_grammar_are_no_confidence(
    server: tuple[str, Script], photo: np.ndarray
) -> None:
    """A server that applies its grammar's mask before reading log-probabilities makes every allowed
    token look sure; its masked alternatives (-9999.0) give it away, and no confidence is used."""
    url, script = server
    content = json.dumps(GOOD, ensure_ascii=False)
    script.replies = [Reply(content=content, logprobs=_confident(content), masked=True)]
    backend = _backend(url)
    judgments = MllmPipeline(backend, backend.settings).judge(photo, photo)
    assert any("confidence unknown" in e for e in judgments.provenance.output_errors)
    verdict = decide(judgments, thresholds=Thresholds(), registered_plates=["京A12345"], licence_given=True)
    assert verdict.outcome is Outcome.REVIEW and ReasonCode.INVALID_MODEL_OUTPUT in verdict.reasons
    assert judgments.plate.confidence is None


def test_the_schema_can_be_kept_from_a_server(server: tuple[str, Script], photo: np.ndarray) -> None:
    url, script = server
    content = json.dumps(GOOD, ensure_ascii=False)
    script.replies = [Reply(content=content, logprobs=_confident(content))]
    backend = _backend(url, mllm_server_schema=False)
    judgments = MllmPipeline(backend, backend.settings).judge(photo, photo)
    assert "response_format" not in script.bodies[0]
    assert judgments.provenance.output_errors == () and judgments.face.same_person is Answer.YES
