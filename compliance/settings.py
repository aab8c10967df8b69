"""One settings object, read once at the edge (CLI, API, worker) and passed in.

Environment variables use the prefix ``COMPLIANCE_``; nested fields use ``__``
(``COMPLIANCE_THRESHOLDS__BLUR_MIN=40``). Defaults work offline on a laptop.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Thresholds(BaseModel):
    """Decision thresholds for the checks. A carrier may override any of them."""

    # SFace cosine similarity. 0.363 is OpenCV Zoo's published operating point for SFace on LFW
    # (chosen there for a low false-accept rate); it is not fitted to our dev photos.
    face_same_min: float = 0.363
    # Between this and face_same_min the match is too close to call: REVIEW, not FAIL.
    face_uncertain_min: float = 0.30
    plate_confidence_min: float = 0.80
    blur_min: float = 30.0
    brightness_min: float = 40.0
    brightness_max: float = 235.0
    min_short_side: int = 320
    # Hamming distance between 64-bit perceptual hashes below which two photos are one.
    duplicate_max_distance: int = 6
    # Cameras write local time without an offset; read it in this zone. Slack covers clock drift.
    local_timezone: str = "Asia/Shanghai"
    capture_time_tolerance_minutes: float = 15.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLIANCE_", env_nested_delimiter="__", extra="ignore")

    database_url: str = "sqlite:///compliance.db"
    blob_dir: Path = Path("data/blobs")

    # Person and vehicle detector: yolox ships with the package; ultralytics needs yolo11n.pt.
    detector: Literal["yolox", "ultralytics"] = "yolox"
    detector_score_min: float = 0.3
    yolo_weights: str = "yolo11n.pt"

    # Bad-input limits, applied where photos enter.
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000

    thresholds: Thresholds = Field(default_factory=Thresholds)

    @property
    def photo_limits(self) -> dict[str, int]:
        """Keyword arguments for ``compliance.photos.load_photo`` / ``read_photo_file``."""
        return {"max_bytes": self.max_upload_bytes, "max_pixels": self.max_image_pixels}

    # The multimodal LLM pipeline (one prompt per photo). Flat names so that the documented
    # COMPLIANCE_MLLM_MODEL etc. work as they read.
    mllm_backend: Literal["transformers", "openai"] = "transformers"
    mllm_model: str = "Qwen/Qwen2-VL-2B-Instruct"  # hub id or local folder
    mllm_adapter: str | None = None  # a LoRA adapter folder from `compliance train lora`
    mllm_device: str = "auto"  # auto: cuda if present, else cpu
    mllm_min_pixels: int = 256 * 28 * 28
    mllm_max_pixels: int = 640 * 28 * 28
    mllm_max_new_tokens: int = 256
    mllm_batch_size: int = 8
    # Token probability below which a field the model gave is too unsure to act on (-> REVIEW).
    mllm_confidence_min: float = 0.6
    # With pipeline "mllm": on an invalid or failed answer, judge with the multistage baseline instead.
    mllm_fallback: bool = False
    mllm_base_url: str = "http://127.0.0.1:8000/v1"
    mllm_api_key: SecretStr | None = None
    mllm_served_model: str | None = None  # the server's model name; default: mllm_model
    mllm_timeout_s: float = 60.0
    mllm_retries: int = 3
    mllm_concurrency: int = 8

    # The service: upload API, Celery queues (Redis broker), workers, sweeper, webhooks.
    broker_url: str = "redis://127.0.0.1:6379/0"

    # The dashboard: people's sign-in and the review queue.
    # Signs session cookies. Left unset, a random secret is made once and kept in session_secret_file
    # (mode 0600): right for one machine; several API processes on several hosts must share one.
    session_secret: SecretStr | None = None
    # Default: beside the SQLite database file ("<db>.session-secret"), else beside the blob folder.
    session_secret_file: Path | None = None
    session_max_age_s: int = 8 * 3600  # a working day; signing in again after that
    session_https_only: bool = False  # True behind HTTPS: the cookie is then never sent in clear
    dashboard_page_size: int = 50
    # Reports count days in this zone (a fixed offset: its offset today).
    dashboard_timezone: str = "Asia/Shanghai"

    @property
    def session_secret_path(self) -> Path:
        if self.session_secret_file is not None:
            return self.session_secret_file
        url = self.database_url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            db_file = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
            return db_file.with_name(db_file.name + ".session-secret")
        return self.blob_dir.parent / "session-secret"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
