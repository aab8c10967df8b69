"""The worker process's Celery app: ``celery -A workers.main worker -Q multistage`` works as well as
``compliance worker --queue multistage`` (which also loads the queue's models before the first task).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_init

from compliance.settings import get_settings
from workers.app import MLLM, MULTISTAGE, make_celery
from workers.tasks import register_tasks, reset_runtime

settings = get_settings()
app = make_celery(settings)
register_tasks(app, settings)

log = logging.getLogger("compliance.workers")

# Pipelines to load in each worker process before it takes a task; set by ``compliance worker``.
PRELOAD: list[str] = []
PIPELINE_OF_QUEUE = {MULTISTAGE: "multistage", MLLM: "mllm"}


@worker_process_init.connect
def _process_started(**_: Any) -> None:
    reset_runtime()
    preload()


def preload() -> None:
    from compliance.pipelines import get_pipeline

    for name in PRELOAD:
        try:
            loaded = load_models(get_pipeline(name, settings))
        except Exception as exc:  # weights missing, no GPU: say so; its tasks fail (and retry) until fixed
            log.error("pipeline %s could not load its models: %s: %s", name, type(exc).__name__, exc)
        else:
            log.info("pipeline %s ready (%d models loaded)", name, loaded)


def load_models(obj: object, depth: int = 6, seen: set[int] | None = None) -> int:
    """Load every lazy model reachable from ``obj`` (anything with ``load()`` and ``loaded``), so the
    first task does not pay for it: minutes for an MLLM on a cold GPU."""
    seen = seen if seen is not None else set()
    if depth < 0 or id(obj) in seen or isinstance(obj, (str, bytes, int, float, type)):
        return 0
    seen.add(id(obj))
    count = 0
    if callable(getattr(obj, "load", None)) and hasattr(obj, "loaded"):
        if not obj.loaded:  # type: ignore[attr-defined]
            obj.load()  # type: ignore[attr-defined]
            count += 1
    if isinstance(obj, (list, tuple)):
        children: list[object] = list(obj)
    elif hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    else:
        children = [getattr(obj, slot, None) for slot in getattr(type(obj), "__slots__", ())]
    for child in children:
        count += load_models(child, depth - 1, seen)
    return count
