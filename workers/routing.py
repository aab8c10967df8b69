"""Which task and queue judge a submission, by the pipeline it is judged with.

The seam for new pipelines: a pipeline that runs on CPUs goes to ``multistage`` as a single-photo
task; one that batches on a GPU goes to ``mllm`` as a batched task. The combined "both" mode (each
pipeline's judgments kept, one combined verdict) is wired here and in ``workers.tasks`` by the
integrator: route "both" to the ``mllm`` queue, whose batch task then also runs the multistage
pipeline on each photo before deciding.
"""

from __future__ import annotations

from typing import NamedTuple

from workers.app import JUDGE, JUDGE_BATCH, MLLM, MULTISTAGE

# Pipelines judged by GPU workers in batches; every other one by CPU workers, one photo a task.
BATCHED = frozenset({"mllm"})


class Route(NamedTuple):
    task: str
    queue: str


def route(pipeline: str) -> Route:
    if pipeline in BATCHED:
        return Route(JUDGE_BATCH, MLLM)
    return Route(JUDGE, MULTISTAGE)
