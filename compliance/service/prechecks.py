"""Tell the driver now: a photo checked before it is uploaded, for what a retake fixes.

The same fields as an upload, validated by the same rules (``intake.check_upload``, the driver and
vehicle being the carrier's); the photo is decoded with the same limits and judged by the fast
precheck (``compliance.multistage.precheck``) with the carrier's thresholds. Nothing of the photo
is kept: no blob, no submission; only the driver's precheck counters are counted up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from compliance.photos import Photo
from compliance.pipelines import get_prechecker
from compliance.prechecks import PrecheckCode, PrecheckFindings, SitePosition, position_problem, problems
from compliance.service.intake import Upload, check_upload
from compliance.settings import Settings
from compliance.store import Store, prechecks, registry
from compliance.store.prechecks import PrecheckCounts


@dataclass(frozen=True, slots=True)
class PrecheckResult:
    problems: tuple[PrecheckCode, ...]
    findings: PrecheckFindings
    counts: PrecheckCounts

    @property
    def ok(self) -> bool:
        return not self.problems


def site_position(session: Session, carrier_id: int, site: str | None) -> SitePosition | None:
    """The registered site's position (WGS-84), where the upload names a registered site that has
    one; free text (a carrier with no sites) or a site without a position asks for none. An
    unknown code, where the carrier registers sites, raises ``UnknownSite`` as an upload does."""
    if not site:
        return None
    registry.check_site(session, carrier_id, site)  # an unknown code is refused as an upload refuses it
    found = registry.find_site(session, carrier_id, site)
    if found is None or found.latitude is None or found.longitude is None:
        return None
    return SitePosition(found.latitude, found.longitude, found.radius_m)


def photo_has_position(photo: Photo) -> bool:
    """Whether the photo's EXIF records a GPS position (an unreadable GPS block records none)."""
    return photo.exif.has_position


def precheck(store: Store, settings: Settings, photo: Photo, upload: Upload) -> PrecheckResult:
    """Validate the fields as an upload's, find the problems a retake fixes, count the precheck for
    the driver. Raises ``InvalidUpload`` or a store lookup error exactly as an upload would."""
    check_upload(upload)
    with store.sessions() as s:
        parties = registry.resolve_upload(
            s, upload.carrier, upload.driver, vehicle_id=upload.vehicle_id, plate=upload.plate
        )
        carrier = registry.get_carrier(s, parties.carrier_id)
        thresholds = registry.effective_thresholds(carrier, settings.thresholds)
        site = site_position(s, parties.carrier_id, upload.site)
    findings = get_prechecker(settings).check(photo.image)
    found = problems(findings, thresholds, position=position_problem(site, photo_has_position(photo)))
    with store.sessions() as s, s.begin():
        counts = prechecks.record_precheck(
            s, carrier_id=parties.carrier_id, driver_id=parties.driver_id, at=datetime.now(UTC)
        )
    return PrecheckResult(found, findings, counts)
