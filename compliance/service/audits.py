"""Batch audits run in chunks: each chunk re-judges a few pending items of a job and keeps their
verdicts before and after. The audit queue's task and ``compliance audit --inline`` both call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from compliance.judging import Store, rejudge
from compliance.pipelines import get_pipelines
from compliance.service.transient import TRANSIENT_ERRORS
from compliance.settings import Settings
from compliance.store import audit_jobs


@dataclass
class Chunk:
    more: bool  # items are still pending
    judged: int = 0
    # Submissions re-judged: the caller announces their current verdicts (only new ones go out).
    rejudged: list[str] = field(default_factory=list)


def run_chunk(
    store: Store,
    settings: Settings,
    job_id: str,
    *,
    limit: int | None = None,
    on_item: Callable[[str], None] | None = None,
) -> Chunk:
    actor = f"audit:{job_id}"
    with store.sessions() as s, s.begin():
        job = audit_jobs.get_audit_job(s, job_id)
        pipeline_name = job.pipeline
        pending = audit_jobs.pending_items(s, job_id, limit=limit or settings.audit_chunk)
    chunk = Chunk(more=True)
    if pending:
        pipelines = get_pipelines(pipeline_name, settings)
    for submission_id in pending:
        with store.sessions() as s:
            before = audit_jobs.current_outcome(s, submission_id)
        try:
            rejudge(store, settings, submission_id, pipelines, actor=actor)
        except TRANSIENT_ERRORS:
            raise  # the task retries the chunk; the item stays pending
        except Exception as exc:  # one photo's failure is kept on its item; the job goes on
            with store.sessions() as s, s.begin():
                audit_jobs.record_item(
                    s, job_id, submission_id, before=before, after=None, error=f"{type(exc).__name__}: {exc}"
                )
        else:
            with store.sessions() as s, s.begin():
                after = audit_jobs.current_outcome(s, submission_id)
                audit_jobs.record_item(s, job_id, submission_id, before=before, after=after)
            chunk.rejudged.append(submission_id)
        chunk.judged += 1
        if on_item is not None:
            on_item(submission_id)
    with store.sessions() as s, s.begin():
        chunk.more = not audit_jobs.finish_if_complete(s, job_id)
    return chunk
