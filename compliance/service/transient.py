"""Errors that say "try again later" rather than "this photo cannot be judged": the database, the
broker or the photo store unreachable, a model server down or out of memory. Tasks retry these with
backoff."""

from __future__ import annotations

import sqlalchemy.exc
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from compliance.mllm.backends.base import MllmError
from compliance.store.errors import PhotoStoreUnavailable

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    BrokerError,
    RedisConnectionError,
    RedisTimeoutError,
    MllmError,
    PhotoStoreUnavailable,
    ConnectionError,
    TimeoutError,
)
