"""One driver: their licence photo, its replacements, the verdicts to check again because they
were decided against a licence photo since replaced, and how often their app prechecked photos."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from compliance.dashboard.security import NotFound, SignedIn, Viewer
from compliance.dashboard.submissions import image_response
from compliance.dashboard.templating import render
from compliance.store.errors import UnknownDriver
from compliance.store.models import Driver
from compliance.store.pages import licence_recheck
from compliance.store.prechecks import precheck_counts
from compliance.store.registry import get_carrier, get_driver, row_id
from compliance.verdicts import Outcome

router = APIRouter()

# Prechecks since the last upload from which the page flags them: a driver app checks a photo or
# two before an upload; more is a driver struggling with the photo, or someone trying variations.
MANY_PRECHECKS = 5


def scoped_driver(session: Session, viewer: Viewer, driver_id: str) -> Driver:
    """The driver if the viewer may see them; "not found" otherwise, exactly as for no driver."""
    found = row_id(driver_id)
    if found is None:
        raise NotFound("driver")
    try:
        return get_driver(session, found, carrier_id=viewer.carrier_id)
    except UnknownDriver:
        raise NotFound("driver") from None


@router.get("/drivers/{driver_id}")
def driver_page(request: Request, driver_id: str, viewer: SignedIn) -> Response:
    settings = request.app.state.settings
    store = request.app.state.store
    with request.app.state.read_sessions() as s:
        driver = scoped_driver(s, viewer, driver_id)
        recheck = licence_recheck(
            s, carrier_id=driver.carrier_id, driver_id=driver.id, days=settings.licence_recheck_days
        )
        context = {
            "driver": driver,
            "carrier": get_carrier(s, driver.carrier_id),
            "has_licence": bool(driver.licence_sha256) and store.blobs.exists(driver.licence_sha256),
            "recheck": recheck,
            "days": settings.licence_recheck_days,
            "passes": recheck.counts.get(Outcome.PASS, 0),
            "prechecks": precheck_counts(s, driver.id),
            "many_prechecks": MANY_PRECHECKS,
        }
        return render(request, "driver.html", context)


@router.get("/drivers/{driver_id}/licence")
def driver_licence(request: Request, driver_id: str, viewer: SignedIn) -> Response:
    with request.app.state.read_sessions() as s:
        sha = scoped_driver(s, viewer, driver_id).licence_sha256
    return image_response(request, sha, "licence photo")
