"""Which tasks and queues judge a submission, by the pipeline it is judged with.

The seam for new pipelines: a pipeline that runs on CPUs goes to ``multistage`` as a single-photo
task; one that batches on a GPU goes to ``mllm`` as a batched task. "both" is the two at once: each
queue's worker runs its own pipeline and records its judgments, and whichever finishes second
decides from the two (``compliance.judging.decide_from_stored``).
"""

from __future__ import annotations

from typing import NamedTuple

from compliance.pipelines import pipeline_names
from workers.app import JUDGE, JUDGE_BATCH, MLLM, MULTISTAGE

# Pipelines judged by GPU workers in batches; every other one by CPU workers, one photo a task.
BATCHED = frozenset({"mllm"})


class Route(NamedTuple):
    task: str
    queue: str
    part: str  # the pipeline this task runs: the choice itself, or one half of "both"


def routes(choice: str) -> tuple[Route, ...]:
    """One route per pipeline the choice runs (two for "both")."""
    return tuple(
        Route(JUDGE_BATCH, MLLM, name) if name in BATCHED else Route(JUDGE, MULTISTAGE, name)
        for name in pipeline_names(choice)
    )
