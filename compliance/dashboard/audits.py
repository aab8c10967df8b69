"""Batch audits: the page's place in the dashboard. Starting a job, its progress and its diff come
with the audit-job service (``audit_jobs``, POST /v1/audits) and are wired in when it lands."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from compliance.dashboard.security import SignedIn
from compliance.dashboard.templating import render

router = APIRouter()


@router.get("/audits")
def audits_page(request: Request, viewer: SignedIn) -> Response:
    return render(request, "audits.html")
