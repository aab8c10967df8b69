"""One settings object, read once at the edge (CLI, API, worker) and passed in.

Environment variables use the prefix ``COMPLIANCE_``; nested fields use ``__``
(``COMPLIANCE_THRESHOLDS__BLUR_MIN=40``). Defaults work offline on a laptop.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The hubs an MLLM's weights are downloaded from, each into its own cache.
ModelSource = Literal["huggingface", "modelscope"]
# What a check on where or how the photo was taken does with a finding: nothing, REVIEW or FAIL.
CheckMode = Literal["off", "review", "fail"]
ReviewMode = Literal["off", "review"]
# The languages the dashboard speaks, as a user's setting and COMPLIANCE_DEFAULT_LANGUAGE name them.
DashboardLanguage = Literal["zh-CN", "en"]


class Thresholds(BaseModel):
    """Decision thresholds for the checks. A carrier may override any of them."""

    # SFace cosine similarity. 0.363 is OpenCV Zoo's published operating point for SFace on LFW
    # (chosen there for a low false-accept rate); it is not fitted to our dev photos.
    face_same_min: float = 0.363
    # Between this and face_same_min the match is too close to call: REVIEW, not FAIL.
    face_uncertain_min: float = 0.30
    # When the smaller of the two faces is under face_small_px tall (a licence photo under about
    # 110 px), a different person is only called below face_small_uncertain_min. Measured on dev
    # pairs with the licence made 64-192 px, grey, JPEG q35: the same person then scored as low as
    # 0.274 (44-48 px faces) and 0.283 (36-40 px), under face_uncertain_min, a wrong FAIL; at 56 px
    # and up never below 0.33. 0.24 keeps 0.03 below the lowest genuine score.
    face_small_px: int = 56
    # On small faces impostors score higher: swept over licences of 64-192 px, different people reached
    # 0.357 (44-48 px faces), 6 thousandths under face_same_min; the same people scored 0.406 and up at
    # 100-120 px licences. 0.38 sits between the two.
    face_small_same_min: float = 0.38
    face_small_uncertain_min: float = 0.24
    plate_confidence_min: float = 0.80
    # A reading one character away from the registered plate is a FAIL only if the reader was at
    # least this sure of that character; below, a misread is as likely as another vehicle (REVIEW).
    plate_char_confidence_min: float = 0.95
    # Two plates read: a registered one, and another read surely whose plate is this many times larger
    # (nearer): the driver may stand by the other vehicle, so a person looks.
    plate_nearer_area_ratio: float = 2.0
    # MiniFASNet's live score (0-1) below which the scene's face is taken as not live (shown on a
    # screen or on paper): REVIEW, FACE_NOT_LIVE. On the dev spoof set every spoof scored 0.21 or
    # less, every live face (spoof set, dev scenes, dev portraits; faces of 64 px and up) 0.37 or more.
    # 0.25 leans to the live side: a live face flagged costs a person's minute on every such photo.
    live_min: float = Field(default=0.25, ge=0.0, le=1.0)
    blur_min: float = 30.0
    brightness_min: float = 40.0
    brightness_max: float = 235.0
    min_short_side: int = 320
    # Hamming distance between 64-bit perceptual hashes below which two photos are one.
    duplicate_max_distance: int = 6
    # Cameras write local time without an offset; read it in this zone. Slack covers clock drift.
    local_timezone: str = "Asia/Shanghai"
    capture_time_tolerance_minutes: float = 15.0
    # Where and how the photo was taken (EXIF): what each finding does; a carrier may override each.
    # A position farther than the site's radius: REVIEW by default where the site has a position
    # (a wrong FAIL costs a driver a job; phones' GPS can be off by hundreds of metres indoors).
    location_outside_site: CheckMode = "review"
    # The site has a position and the photo none: off by default, since chat apps strip EXIF.
    location_missing: CheckMode = "off"
    # Only 11 of the 91 dev photos carry a camera make or model and chat apps strip EXIF: on by
    # default these two would end automation, so a carrier opts in (REVIEW, never a FAIL).
    photo_edited: ReviewMode = "off"
    no_camera_exif: ReviewMode = "off"

    def face_band(self, smaller_face_px: float) -> tuple[float, float]:
        """The undecided band of face similarity, (different below, same from), for two faces whose
        smaller one is this tall: a similarity inside it is too close to call."""
        if smaller_face_px < self.face_small_px:
            return self.face_small_uncertain_min, self.face_small_same_min
        return self.face_uncertain_min, self.face_same_min


class PhotoLimits(TypedDict):
    """The bounds a photo is decoded within (``compliance.photos``); the last three have defaults there."""

    max_bytes: int
    max_pixels: int
    max_decode_bytes: NotRequired[int]
    working_pixels: NotRequired[int]
    concurrent_decodes: NotRequired[int]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLIANCE_", env_nested_delimiter="__", extra="ignore")

    database_url: str = "sqlite:///compliance.db"
    # The dashboard's pages and exports only read: point them at a PostgreSQL read replica to keep
    # their scans off the primary. Sign-in and every write (reviews, audits) use database_url.
    database_read_url: str | None = None
    blob_dir: Path = Path("data/blobs")
    # Where photos live: unset means the folder blob_dir (the embedded default); "file:///abs/path" or
    # "s3://bucket/prefix" for any S3-compatible store (credentials and endpoint from the AWS_* variables).
    blob_url: str | None = None
    # Embedded SQLite migrates on start; in production migrations run as their own step
    # (`compliance db upgrade`) and hosts only check that the schema is at their revision.
    migrate_on_start: bool = True

    # Person and vehicle detector: yolox ships with the package; ultralytics needs yolo11n.pt.
    detector: Literal["yolox", "ultralytics"] = "yolox"
    detector_score_min: float = 0.3
    yolo_weights: str = "yolo11n.pt"

    # The cascade (pipeline choice "cascade", compliance.cascade): the baseline's PASS or FAIL stands
    # only when every judgment it rests on clears its threshold by these margins; otherwise the MLLM
    # judges too. A person or vehicle needs a detector score of detector_score_min plus this: 0.5, half
    # the scale (the dev portraits' people scored 0.86-0.97; detected vehicles 0.34-0.93).
    cascade_detector_margin: float = Field(default=0.2, ge=0.0, le=1.0)
    # A face's similarity must lie this far outside the undecided band (Thresholds.face_band): on
    # small faces impostors reached 0.357 against a same-person threshold of 0.38, and genuine pairs
    # scored from 0.406 at 120 px licences, so 0.03 keeps the first out and the second in.
    cascade_face_margin: float = Field(default=0.03, ge=0.0, le=1.0)
    # A plate needs the reading at plate_confidence_min and every character at plate_char_confidence_min
    # (0.95, above the 0.87 the wrong character of a one-off misread reached), plus this margin on both.
    cascade_plate_margin: float = Field(default=0.0, ge=0.0, le=1.0)

    # Bad-input limits, applied where photos enter.
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    # What decoding one photo may cost at its peak, estimated from its header before any pixel is
    # decoded (the file, the decoder's buffers and the converted image): a photo over it is refused
    # at intake with a 413, so that no process (API, worker, dashboard) spends more. A JPEG of any
    # size up to the pixel limit fits (it is decoded at a reduced scale); formats that cannot be
    # decoded at a reduced size fit up to about 12-15 MP (WebP and HEIF: 8-10 MP).
    max_decode_mib: int = Field(default=112, ge=16, le=4096)
    # The pipelines work on at most this many pixels: a larger photo is decoded at 1/2, 1/4, ...
    # (a JPEG by its decoder, others by area averaging), keeping at least a phone's 12 MP.
    working_pixels: int = Field(default=16_000_000, ge=1_000_000)
    # Photos one process decodes at once (the others wait, holding only their compressed bytes).
    concurrent_decodes: int = Field(default=2, ge=1, le=64)

    # How long the API trusts an API key it has verified before asking the database again: a revoked
    # key (or one moved to another carrier) stops working within this many seconds. 0: every request.
    api_key_cache_s: float = Field(default=2.0, ge=0.0, le=2.0)
    # Threads per API process for blocking work (decoding a photo, the database, the disk). Uploads
    # are CPU-bound: a few threads overlap the waits; many only contend for the GIL, and under a
    # burst the rest wait their turn in the event loop, which costs nothing.
    api_threads: int = Field(default=4, ge=1, le=200)
    # The largest body other than a photo upload (JSON: an audit's 1,000 ids are about 10 KiB).
    # Parsed JSON takes tens of times its size in memory: 20 MiB of "[{},{},…]" would be 450 MiB.
    api_max_json_bytes: int = Field(default=256 * 1024, ge=4096, le=16 * 1024 * 1024)
    # /metrics counts every carrier's submissions: with a token, only a scraper that sends it (Bearer);
    # without one, only a client on this host (loopback).
    metrics_token: SecretStr | None = None
    # Proxies whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated; uvicorn's format).
    # None by default: a client cannot claim another address to slip the sign-in throttle.
    trusted_proxies: str = ""
    # The API's HTTP server (compliance/api/server.py): how long a client may take, and how many at once.
    # A request's head (request line and headers, a few hundred bytes to a few KB) must be complete this
    # long after the connection opened or the previous response ended, however it trickles: 1 KB takes
    # 0.2 s even at 2G's 50 kbit/s, so 10 s leaves room for a weak link's retransmissions, not for a
    # client that holds the connection by sending a byte now and then.
    api_header_timeout_s: float = Field(default=10.0, gt=0.0)
    # A request's body must be complete this long after its head. The largest body allowed is the
    # largest photo plus 1 MiB of form (20 + 1 MiB = 176 Mbit): in 120 s that needs 1.5 Mbit/s of
    # uplink (a weak 3G/4G link); a typical 3 MB phone photo needs 0.2 Mbit/s. Behind a proxy that
    # buffers bodies (README) the proxy absorbs slow clients and this only guards the proxy's hop.
    api_body_timeout_s: float = Field(default=120.0, gt=0.0)
    # The largest request head, in bytes: nginx's default (4 buffers of 8 KB); ours are under 4 KB.
    api_max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    # Connections per API process (idle keep-alive ones count); a request on one more is answered 503.
    # An upload costs ~16 ms of CPU here, so 256 waiting already means ~4 s of work queued per core:
    # past that a quick 503 (Retry-After: 1) serves a client better than a slow answer.
    api_limit_concurrency: int = Field(default=256, ge=1)
    # An idle keep-alive connection is closed after this long (uvicorn's default). A proxy that keeps
    # connections open to the API must close idle ones sooner (nginx: upstream keepalive_timeout 4s).
    api_keep_alive_s: float = Field(default=5.0, gt=0.0)
    # Connections the kernel queues before the API accepts them (uvicorn's default; the kernel caps it
    # at net.core.somaxconn).
    api_backlog: int = Field(default=2048, ge=1)

    # POST /v1/prechecks (tell a driver what to retake before uploading): at most this many per API
    # key in each fixed window of precheck_rate_window_s, counted in Redis (broker_url) so that every
    # API host shares them; over it, 429 with Retry-After. A driver app checks a photo or two before
    # each upload; hundreds a minute from one key is a client retrying in a loop.
    precheck_rate_limit: int = Field(default=120, ge=1)
    precheck_rate_window_s: int = Field(default=60, ge=1, le=86_400)

    thresholds: Thresholds = Field(default_factory=Thresholds)

    @property
    def photo_limits(self) -> PhotoLimits:
        """Keyword arguments for ``compliance.photos.load_photo`` / ``receive_photo`` / ``read_photo_file``."""
        return {
            "max_bytes": self.max_upload_bytes,
            "max_pixels": self.max_image_pixels,
            "max_decode_bytes": self.max_decode_mib * 1024 * 1024,
            "working_pixels": self.working_pixels,
            "concurrent_decodes": self.concurrent_decodes,
        }

    # The multimodal LLM pipeline (one prompt per photo). Flat names so that the documented
    # COMPLIANCE_MLLM_MODEL etc. work as they read.
    mllm_backend: Literal["transformers", "openai"] = "transformers"
    mllm_model: str = "Qwen/Qwen2-VL-2B-Instruct"  # hub id or local folder
    # Where `compliance models pull` fetches a model id from, and so which cache judging finds it
    # in: ModelScope is the usual source in mainland China, where the Hugging Face Hub is not.
    model_source: ModelSource = "huggingface"
    mllm_adapter: str | None = None  # a LoRA adapter folder from `compliance train lora`
    mllm_device: str = "auto"  # auto: cuda if present, else cpu
    mllm_min_pixels: int = 256 * 28 * 28
    mllm_max_pixels: int = 640 * 28 * 28
    mllm_max_new_tokens: int = 256
    # Constrain the in-process model's decoding to the answer's JSON schema (xgrammar): every answer
    # parses. False decodes freely, to compare. A server constrains by its own engine (response_format).
    mllm_constrained: bool = True
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
    # Send the decoding schema to an OpenAI-compatible server as response_format. A server that reads
    # log-probabilities after its grammar's mask gives no usable confidence: set false for it.
    mllm_server_schema: bool = True

    # The service: upload API, Celery queues, workers, sweeper, webhooks. The broker: Redis (the default;
    # the sweeper re-queues what a restart loses) or RabbitMQ (amqp://: durable quorum queues).
    broker_url: str = "redis://127.0.0.1:6379/0"
    # Throttles and rate limits (sign-in, prechecks) are counted in Redis, shared by every API host:
    # the broker's Redis when unset; with a RabbitMQ broker it must be set (the one use of Redis then).
    redis_url: str | None = None
    # The global gauges (queue depths, submissions by status) are exported once, by the sweeper, here.
    sweeper_metrics_port: int = 9101
    # Where that port listens: this host only by default; 0.0.0.0 in a container Prometheus scrapes.
    sweeper_metrics_host: str = "127.0.0.1"
    # The pipeline an upload is judged by when the request names none; it picks the queue:
    # multistage -> "multistage" (CPU workers), mllm -> "mllm" (GPU workers).
    service_pipeline: str = "multistage"
    # An upload never waits long on a broker that is down: it goes back to RECEIVED and the sweeper queues it.
    broker_connect_timeout_s: float = 2.0
    # Redis hands an unacknowledged task to another worker after this long: longer than the longest
    # task (task_time_limit_s) plus the longest retry countdown, or a slow task would run twice.
    broker_visibility_timeout_s: int = 3600
    task_soft_time_limit_s: int = 240
    task_time_limit_s: int = 300
    # Transient errors (database or broker unreachable, a model server's 5xx): retried with backoff.
    task_max_retries: int = 6
    task_retry_backoff_max_s: int = 600
    # A submission started this many times without a verdict is failed for good (a photo that kills
    # its worker every time must not loop forever).
    max_attempts: int = 5
    # The sweeper re-queues what the broker lost: RECEIVED past sweep_received_after_s (the broker was
    # down at upload), QUEUED/PROCESSING past sweep_stale_after_s while their queue is empty, FAILED
    # with attempts left, and everything unfinished after a broker restart that lost its data.
    sweep_interval_s: float = 30.0
    sweep_received_after_s: float = 30.0
    sweep_stale_after_s: float = 900.0
    sweep_batch: int = 1000
    # The sweeper also removes photo files nothing refers to (a photo is written before its row
    # commits, so a failed commit leaves one), every orphan_sweep_interval_s, once they are older
    # than orphan_grace_s: far longer than any upload's or import's transaction, since until its
    # row commits every new photo looks unreferenced. Not below an hour.
    orphan_grace_s: float = Field(default=24 * 3600.0, ge=3600.0)
    orphan_sweep_interval_s: float = Field(default=3600.0, ge=60.0)
    # GPU workers gather up to mllm_batch_size queued photos into one generate call, waiting at
    # most this long for a batch to fill.
    mllm_batch_wait_s: float = 0.5
    # Webhooks: POSTed verdicts, signed with HMAC-SHA256; retried with exponential backoff.
    webhook_timeout_s: float = 10.0  # per connect and per read, and never beyond the deadline
    # A POST (connect, send, answer, at most a few KB of its body) ends within this, in all (and
    # within half of task_soft_time_limit_s, whichever is less): inside the task's lease (this + 30 s),
    # so a slow receiver never gets a delivery twice.
    webhook_deadline_s: float = 5.0
    webhook_max_attempts: int = 8
    webhook_backoff_s: float = 10.0
    webhook_backoff_max_s: float = 1800.0
    # Refuse webhook URLs that resolve to loopback/private/link-local addresses (SSRF); allow for local set-ups.
    webhook_allow_private: bool = False
    # Batch audits re-judge this many submissions per task, so every task stays short.
    audit_chunk: int = 20

    @property
    def limits_redis_url(self) -> str:
        """The Redis that counts throttles and rate limits."""
        return self.redis_url or self.broker_url

    @model_validator(mode="after")
    def _redis_for_limits(self) -> Settings:
        if self.redis_url is None and not self.broker_url.lower().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "set COMPLIANCE_REDIS_URL: with a broker that is not Redis, throttles and rate limits "
                "are still counted in Redis"
            )
        return self

    @model_validator(mode="after")
    def _crash_safe_timing(self) -> Settings:
        """Timings that would let a live task run twice, or a lost one never come back, are refused."""
        if not 0 < self.task_soft_time_limit_s < self.task_time_limit_s:
            raise ValueError("task_soft_time_limit_s must be positive and below task_time_limit_s")
        longest = self.task_time_limit_s + max(self.task_retry_backoff_max_s, self.webhook_backoff_max_s)
        if self.broker_visibility_timeout_s <= longest:
            raise ValueError(
                f"broker_visibility_timeout_s ({self.broker_visibility_timeout_s}) must exceed the task time limit "
                f"plus the longest retry countdown ({longest}), or tasks still running are handed out again"
            )
        if self.webhook_deadline_s <= 0:
            raise ValueError("webhook_deadline_s must be positive")
        if self.sweep_stale_after_s <= self.task_time_limit_s:
            raise ValueError("sweep_stale_after_s must exceed task_time_limit_s: a live task is never stale")
        return self

    # The dashboard: people's sign-in and the review queue.
    # Signs session cookies. Left unset, a random secret is made once and kept in session_secret_file
    # (mode 0600): right for one machine; several API processes on several hosts must share one.
    session_secret: SecretStr | None = None
    # Default: beside the SQLite database file ("<db>.session-secret"), else beside the blob folder.
    session_secret_file: Path | None = None
    session_max_age_s: int = 8 * 3600  # idle: a session unused this long ends
    session_absolute_s: int = 12 * 3600  # absolute: however busy, a session ends this long after sign-in
    session_https_only: bool = False  # True behind HTTPS: the cookie is then never sent in clear
    dashboard_page_size: int = 50
    # Reports count days in this zone (a fixed offset: its offset today).
    dashboard_timezone: str = "Asia/Shanghai"
    # The dashboard's language for a user who chose none and a browser that asks for neither.
    default_language: DashboardLanguage = "zh-CN"
    # A driver's page lists the verdicts of this many days decided before their licence photo was
    # last replaced (against the photo replaced) for a person to check again.
    licence_recheck_days: int = Field(default=30, ge=1, le=3650)

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
