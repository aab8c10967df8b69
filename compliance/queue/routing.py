"""Which tasks and queues judge a submission, by the pipeline it is judged with.

A pipeline that runs on CPUs goes to the ``multistage`` queue as a single-photo task; one the
registry marks ``batched`` goes to the GPU queue, ``mllm``, as a batched task. "both" is the two at once: each
queue's worker runs its own pipeline and records its judgments, and whichever finishes second
decides from the two (``compliance.service.verdicts.decide_from_stored``). "cascade" is queued at its
first stage only, the baseline on the CPU queue: the CPU worker queues the MLLM's part itself, for
the photos it cannot settle (``compliance.service.verdicts.decide_cascade_from_stored``).
"""

from __future__ import annotations

from typing import NamedTuple

from compliance.pipeline import CASCADE
from compliance.pipelines import is_batched, pipeline_names
from compliance.queue.app import JUDGE, JUDGE_BATCH, MLLM, MULTISTAGE


class Route(NamedTuple):
    task: str
    queue: str
    part: str  # the pipeline this task runs: the choice itself, or one half of "both"


def routes(choice: str) -> tuple[Route, ...]:
    """One route per pipeline the choice runs at once (two for "both"; a cascade's first stage)."""
    names = pipeline_names(choice)
    return tuple(
        Route(JUDGE_BATCH, MLLM, name) if is_batched(name) else Route(JUDGE, MULTISTAGE, name)
        for name in (names[:1] if choice == CASCADE else names)
    )
