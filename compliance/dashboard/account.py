"""Signing in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from compliance.dashboard.security import check_csrf, safe_next, sign_in, sign_out, signed_in
from compliance.dashboard.templating import render
from compliance.store import users

router = APIRouter()


@router.get("/login")
def login_page(request: Request, next: str = "/dashboard/") -> Response:
    if signed_in(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next)})


@router.post("/login", dependencies=[Depends(check_csrf)])
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/dashboard/",
) -> Response:
    throttle = request.app.state.sign_in_throttle
    name = username.strip().lower()
    # The client's address as the server sees it: behind a proxy listed in COMPLIANCE_TRUSTED_PROXIES,
    # the one that proxy reports.
    keys = throttle.keys(name, request.client.host if request.client else None)
    if throttle.blocked(*keys):
        return render(
            request,
            "login.html",
            {"next": safe_next(next), "username": username, "error": "Too many failed attempts: wait a while."},
            status_code=429,
        )
    store = request.app.state.store
    with store.sessions() as s, s.begin():
        user = users.authenticate(s, name, password) if name and password else None
    if user is None:
        throttle.failed(*keys)
        return render(
            request,
            "login.html",
            {"next": safe_next(next), "username": username, "error": "Wrong name or password."},
            status_code=401,
        )
    throttle.succeeded(keys[0])
    sign_in(request, user)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(check_csrf)])
def logout(request: Request) -> Response:
    sign_out(request)
    return RedirectResponse("/dashboard/login", status_code=303)
