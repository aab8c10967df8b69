"""Sending work to the queues, and reading the broker's state (depths, liveness, lost data) from
Redis or RabbitMQ, whichever ``broker_url`` names (``BrokerState``).

A publish that fails raises ``BrokerUnavailable`` at once: callers keep what they stored (a
submission goes back to RECEIVED, an audit stays QUEUED, a delivery PENDING) and the sweeper
publishes it later; ``published`` is that rule, for every caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property
from typing import Protocol

import redis
from amqp.exceptions import ChannelError
from celery import Celery
from kombu import Connection

from compliance.queue.app import AUDIT, AUDIT_CHUNK, DELIVER_WEBHOOK, QUEUES, WEBHOOKS, is_amqp, make_celery
from compliance.queue.routing import routes
from compliance.settings import Settings

# Lives in the broker beside the queues, so it vanishes exactly when they do (a restart of a Redis
# that keeps nothing on disk, a FLUSHALL): its absence tells the sweeper that queued work was lost.
BROKER_MARKER = "compliance:broker-marker"


log = logging.getLogger("compliance.queue")


class BrokerUnavailable(RuntimeError):
    pass


def published(send: Callable[[], None], what: str) -> bool:
    """Publish, tolerating a broker that is down: the work is already in the database (a submission
    RECEIVED, an audit QUEUED, a delivery PENDING), so the sweeper publishes it once the broker is
    back. The one place that rule lives; False when it was left for the sweeper."""
    try:
        send()
    except BrokerUnavailable as exc:
        log.warning("%s left for the sweeper: %s", what, exc)
        return False
    return True


class Publisher:
    def __init__(self, settings: Settings, celery: Celery | None = None) -> None:
        self.settings = settings
        self.celery = celery or make_celery(settings, publisher=True)

    def _send(self, task: str, args: list[object], queue: str, countdown: float | None = None) -> None:
        try:
            self.celery.send_task(task, args=args, queue=queue, countdown=countdown, retry=False)
        except Exception as exc:  # kombu/redis raise several kinds; all mean "not published"
            raise BrokerUnavailable(f"could not publish {task} to {queue}: {exc}") from exc

    def judge(self, submission_id: str, pipeline: str, countdown: float | None = None) -> None:
        """Queue the submission for each pipeline the choice runs at once (both queues for "both"; a
        cascade's first stage)."""
        for route in routes(pipeline):
            self._send(route.task, [submission_id, route.part], route.queue, countdown=countdown)

    def judge_part(self, submission_id: str, part: str, countdown: float | None = None) -> None:
        """Queue one pipeline's part of a submission: a batch member to retry, a cascade's next stage, or
        what the sweeper finds lost."""
        (route,) = routes(part)
        self._send(route.task, [submission_id, part], route.queue, countdown=countdown)

    def audit(self, job_id: str) -> None:
        self._send(AUDIT_CHUNK, [job_id], AUDIT)

    def deliver(self, delivery_id: int, countdown: float | None = None) -> None:
        self._send(DELIVER_WEBHOOK, [delivery_id], WEBHOOKS, countdown=countdown)

    @cached_property
    def broker(self) -> BrokerState:
        return broker_state(self.settings, self.celery)

    def ping(self) -> bool:
        return self.broker.ping()

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each queue (not counting those a worker holds unacknowledged)."""
        return self.broker.queue_depths()

    def lost_data_since(self) -> float | None:
        """When the broker started, if it has lost its queued work since the sweeper last marked it
        (Unix time); None if it has not."""
        return self.broker.lost_data_since()

    def mark_broker(self) -> None:
        self.broker.mark()


class BrokerState(Protocol):
    """What the sweeper, ``/readyz`` and ``/metrics`` read from the broker, whichever it is."""

    def ping(self) -> bool: ...

    def queue_depths(self) -> dict[str, int]: ...

    def lost_data_since(self) -> float | None: ...

    def mark(self) -> None: ...


def broker_state(settings: Settings, celery: Celery) -> BrokerState:
    if is_amqp(settings.broker_url):
        return RabbitState(celery, settings.broker_connect_timeout_s)
    return RedisState(settings.broker_url, settings.broker_connect_timeout_s)


class RedisState:
    """Redis as broker: a list per queue, and a marker key that vanishes with the queues."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.redis = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=max(timeout_s, 2.0))

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def queue_depths(self) -> dict[str, int]:
        with self.redis.pipeline(transaction=False) as pipe:
            for name in QUEUES:
                pipe.llen(name)
            return dict(zip(QUEUES, (int(n) for n in pipe.execute()), strict=True))

    def lost_data_since(self) -> float | None:
        info = self.redis.info("server")
        marker = self.redis.get(BROKER_MARKER)
        if marker is not None and marker.decode() == info["run_id"]:
            return None
        return float(self.redis.time()[0]) - float(info["uptime_in_seconds"])

    def mark(self) -> None:
        self.redis.set(BROKER_MARKER, self.redis.info("server")["run_id"])


class RabbitState:
    """RabbitMQ as broker, over AMQP itself (the management plugin need not be enabled): a passive
    declare answers a queue's ready count without creating it. Durable quorum queues keep their
    messages across a restart, so nothing is ever lost and there is nothing to mark."""

    def __init__(self, celery: Celery, timeout_s: float) -> None:
        self.celery = celery
        self.timeout_s = timeout_s

    def _connection(self) -> Connection:
        return self.celery.connection_for_write(connect_timeout=self.timeout_s)

    def ping(self) -> bool:
        try:
            with self._connection() as connection:
                connection.ensure_connection(max_retries=1)
        except Exception:  # amqp and socket errors alike: not reachable
            return False
        return True

    def queue_depths(self) -> dict[str, int]:
        depths: dict[str, int] = {}
        with self._connection() as connection:
            connection.ensure_connection(max_retries=1)
            channel = connection.channel()
            try:
                for name in QUEUES:
                    try:
                        _, ready, _ = channel.queue_declare(queue=name, passive=True)
                    except ChannelError:  # not declared yet (no worker has started): nothing waits in it
                        channel = connection.channel()
                        ready = 0
                    depths[name] = int(ready)
            finally:
                channel.close()
        return depths

    def lost_data_since(self) -> float | None:
        return None  # never lost: durable quorum queues

    def mark(self) -> None:
        pass
