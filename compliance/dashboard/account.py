"""Signing in and out, and the header's language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from compliance.dashboard.language import LANGUAGES, SESSION_KEY, gettext
from compliance.dashboard.security import BadRequest, check_csrf, safe_next, sign_in, sign_out, signed_in
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
            {
                "next": safe_next(next),
                "username": username,
                "error": gettext("Too many failed attempts: wait a while."),
            },
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
            {"next": safe_next(next), "username": username, "error": gettext("Wrong name or password.")},
            status_code=401,
        )
    throttle.succeeded(keys[0])
    chosen = request.session.get(SESSION_KEY)
    sign_in(request, user)
    if chosen in LANGUAGES:  # the switch's choice on the sign-in page outlives the new session
        request.session[SESSION_KEY] = chosen
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(check_csrf)])
def logout(request: Request) -> Response:
    sign_out(request)
    return RedirectResponse("/dashboard/login", status_code=303)


@router.post("/language", dependencies=[Depends(check_csrf)])
def choose_language(
    request: Request,
    lang: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/dashboard/",
) -> Response:
    """The header's switch: saved on the signed-in user (every browser of theirs), and in the session."""
    if lang not in LANGUAGES:
        raise BadRequest(gettext("choose one of: %(languages)s", languages=", ".join(LANGUAGES)))
    viewer = signed_in(request)
    if viewer is not None:
        with request.app.state.store.sessions() as s, s.begin():
            users.set_language(s, viewer.id, lang, actor=viewer.username)
    request.session[SESSION_KEY] = lang
    return RedirectResponse(safe_next(next), status_code=303)
