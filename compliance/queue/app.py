"""The Celery application, configured for crash safety from ``Settings``.

Publishers (the API, the sweeper, the CLI) and workers build the same app from the same settings;
publishers send tasks by name, so they never import the models that workers load.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import celeryd_init
from kombu import Exchange, Queue

from compliance.settings import Settings

# Queues, by the hardware that serves them.
MULTISTAGE = "multistage"  # CPU workers: the multistage pipeline
MLLM = "mllm"  # GPU workers: the MLLM, batched
AUDIT = "audit"  # batch audit jobs, chunk by chunk
WEBHOOKS = "webhooks"  # verdicts POSTed to carriers; I/O only
QUEUES = (MULTISTAGE, MLLM, AUDIT, WEBHOOKS)

# Task names: the contract between publishers and workers.
JUDGE = "compliance.judge"
JUDGE_BATCH = "compliance.judge_batch"
AUDIT_CHUNK = "compliance.audit_chunk"
DELIVER_WEBHOOK = "compliance.deliver_webhook"


def is_amqp(broker_url: str) -> bool:
    """RabbitMQ (``amqp://``, ``amqps://``, ``pyamqp://``) rather than Redis."""
    return broker_url.split("://", 1)[0].lower() in {"amqp", "amqps", "pyamqp"}


def _amqp_queues() -> list[Queue]:
    # Quorum queues: replicated over the cluster's nodes and kept on disk, so a restart loses nothing.
    # Topic exchanges, because Celery's native delayed delivery (how countdowns reach a quorum queue)
    # routes through topic exchanges and skips direct ones.
    return [
        Queue(name, Exchange(name, type="topic"), routing_key=name, queue_arguments={"x-queue-type": "quorum"})
        for name in QUEUES
    ]


def _amqp_config() -> dict[str, Any]:
    return {
        # A publish returns once RabbitMQ has the message (on a quorum of nodes), never before.
        "broker_transport_options": {"confirm_publish": True},
        "task_queues": _amqp_queues(),
        # Countdowns and retry backoffs wait in RabbitMQ's delay queues (quorum too), not in a worker's
        # memory; the worker declares them and binds the queues above (worker_detect_quorum_queues).
        "broker_native_delayed_delivery_queue_type": "quorum",
        "worker_detect_quorum_queues": True,
        "task_default_exchange_type": "topic",
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    common = _common_config(settings)
    if is_amqp(settings.broker_url):
        return {**common, **_amqp_config()}
    return common


def _common_config(settings: Settings) -> dict[str, Any]:
    transport = {
        # Redis redelivers a task not acked within this long; longer than any task (see Settings).
        "visibility_timeout": settings.broker_visibility_timeout_s,
        # How often a worker looks for tasks whose holder died (unacked past the visibility timeout):
        # a tenth of it, so a lost task comes back within ~1.1x the timeout, not kombu's fixed 100 s.
        "unacked_restore_interval": min(60, max(1, settings.broker_visibility_timeout_s // 10)),
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": settings.broker_connect_timeout_s,
        "socket_timeout": max(5.0, settings.broker_connect_timeout_s),
        "socket_keepalive": True,
        "retry_on_timeout": True,
        "health_check_interval": 25,
    }
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        # Workers keep reconnecting while the broker is away, however long.
        "broker_connection_max_retries": None,
        "task_default_queue": MULTISTAGE,
        "task_queues": [Queue(name, routing_key=name) for name in QUEUES],
        "task_create_missing_queues": False,
        "task_serializer": "json",
        "accept_content": ["json"],
        # The database holds every result; the broker holds only the work.
        "task_ignore_result": True,
        "result_backend": None,
        # Ack after the task, and put it back if the process running it dies (SIGKILL, OOM).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        # One task at a time per process, so a crash loses (re-delivers) at most that one.
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        # A task that lost its broker connection finishes: its result goes to the database anyway.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "enable_utc": True,
    }


def make_celery(settings: Settings, *, publisher: bool = False) -> Celery:
    """The app; ``publisher`` for processes that only send tasks (API, sweeper, CLI): a broker that is
    down fails a publish at once instead of after kombu's reconnect loop, so an upload never waits."""
    app = Celery("compliance", set_as_current=False)
    config = celery_config(settings)
    if publisher:
        config["broker_transport_options"] = {**config["broker_transport_options"], "max_retries": 0}
        config["broker_connection_timeout"] = settings.broker_connect_timeout_s
    app.conf.update(config)
    if not publisher and is_amqp(settings.broker_url):

        def declare(instance: Any, **_: Any) -> None:
            if instance.app is app:
                declare_queues(app)

        celeryd_init.connect(declare, weak=False)
    return app


def declare_queues(app: Celery) -> None:
    """Declare every queue and its exchange, not only those this worker consumes: at start Celery binds
    the delay exchanges to every queue's exchange, and a binding to an exchange that does not exist
    yet fails, so a countdown to that queue would be dropped (a CPU worker started before any GPU
    worker, say). A broker that is not up yet: the queues are declared by the next worker or publish."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
            channel = connection.default_channel
            for queue in app.amqp.queues.values():
                queue.bind(channel).declare()
    except Exception as exc:  # amqp and socket errors alike; the worker itself retries its connection
        logging.getLogger("compliance.queue").warning("could not declare the queues: %s", exc)
