"""A fixed-window rate limiter per API key, counted in Redis so that every API host shares it.

Each key gets ``limit`` requests in each window of ``window_s`` seconds (windows aligned on the
clock: ``floor(now / window_s)``); the next is refused with the seconds until the window ends, for a
``Retry-After``. One ``INCR`` and one ``EXPIRE NX`` per request, pipelined. While Redis cannot be
reached, each process counts in its own memory (bounded): a limit per process rather than none,
and a request never waits on a Redis that is down (no retries, half a second at most).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    count: int
    retry_after_s: int  # until the window ends; 0 when allowed


class FixedWindowLimiter:
    def __init__(
        self,
        redis: Redis | None,
        *,
        name: str,
        limit: int,
        window_s: int,
        namespace: str = "",
        clock: Callable[[], float] = time.time,
        max_local: int = 10_000,
    ) -> None:
        self.redis = redis
        self.name = name
        self.limit = limit
        self.window_s = window_s
        # One deployment's counters: its processes share a database, so its URL names them.
        self.namespace = hashlib.sha256(namespace.encode()).hexdigest()[:16]
        self.clock = clock
        self.max_local = max_local
        self._local: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    @classmethod
    def on(cls, redis_url: str, *, name: str, limit: int, window_s: int, namespace: str) -> FixedWindowLimiter:
        client = Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        return cls(client, name=name, limit=limit, window_s=window_s, namespace=namespace)

    def hit(self, who: str) -> Decision:
        """Count one request of ``who`` and say whether it is within the limit."""
        now = self.clock()
        window = math.floor(now / self.window_s)
        count = self._count(who, window)
        if count <= self.limit:
            return Decision(True, count, 0)
        return Decision(False, count, max(1, math.ceil((window + 1) * self.window_s - now)))

    def _count(self, who: str, window: int) -> int:
        if self.redis is not None:
            key = f"compliance:rate:{self.name}:{self.namespace}:{who}:{window}"
            try:
                with self.redis.pipeline(transaction=False) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, self.window_s + 1, nx=True)
                    count, _ = pipe.execute()
                return int(count)
            except RedisError:
                pass
        with self._lock:
            if len(self._local) >= self.max_local:  # forget past windows, then the oldest
                self._local = {k: v for k, v in self._local.items() if k[1] >= window}
                while len(self._local) >= self.max_local:
                    del self._local[next(iter(self._local))]
            count = self._local.get((who, window), 0) + 1
            self._local[(who, window)] = count
            return count
