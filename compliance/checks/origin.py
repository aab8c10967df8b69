"""Checks on where and how the photo was taken, from its EXIF as read at intake.

What each does is a per-carrier setting (``Thresholds.location_outside_site`` and the rest: off,
review or fail); off, a check gives no result. None applies where the EXIF was not read (an
ad-hoc check, a submission stored before it was kept) or, for position, where the upload names no
registered site with a position.
"""

from __future__ import annotations

from compliance import geo
from compliance.checks.base import CheckContext, failed, passed, review
from compliance.photos import edited_by
from compliance.verdicts import CheckResult, ReasonCode


def _by_mode(mode: str, check: str, reason: ReasonCode, detail: str) -> CheckResult:
    return failed(check, reason, detail) if mode == "fail" else review(check, reason, detail)


class TakenAtSite:
    """The photo's GPS position within the registered site's radius (LOCATION_OUTSIDE_SITE)."""

    name = "location"

    def run(self, ctx: CheckContext) -> CheckResult | None:
        mode = ctx.thresholds.location_outside_site
        exif, site = ctx.exif, ctx.site
        if mode == "off" or site is None or exif is None or not exif.read or not exif.has_position:
            return None
        assert exif.latitude is not None and exif.longitude is not None
        distance = geo.distance_m(geo.Position(exif.latitude, exif.longitude), site.position)
        where = f"taken {distance:.0f} m from site {site.code} (radius {site.radius_m:.0f} m)"
        if distance > site.radius_m:
            return _by_mode(mode, self.name, ReasonCode.LOCATION_OUTSIDE_SITE, where)
        return passed(self.name, where)


class PositionRecorded:
    """The site has a position and the photo recorded none (LOCATION_MISSING; off by default, as
    chat apps strip EXIF). A GPS block that is there but unreadable is unknown, never a pass: it is
    a REVIEW whenever the position is checked at all."""

    name = "location_recorded"

    def run(self, ctx: CheckContext) -> CheckResult | None:
        exif, site = ctx.exif, ctx.site
        if site is None or exif is None or not exif.read or exif.has_position:
            return None
        mode = ctx.thresholds.location_missing
        if exif.gps_malformed:
            if mode == "off" and ctx.thresholds.location_outside_site == "off":
                return None
            return _by_mode(
                mode,
                self.name,
                ReasonCode.LOCATION_MISSING,
                f"the photo's GPS block is unreadable: distance to site {site.code} unknown",
            )
        if mode == "off":
            return None
        return _by_mode(
            mode,
            self.name,
            ReasonCode.LOCATION_MISSING,
            f"the photo recorded no position: distance to site {site.code} unknown",
        )


class NotEdited:
    """EXIF Software names a known editor (PHOTO_EDITED; off by default, a REVIEW when opted in)."""

    name = "editing"

    def run(self, ctx: CheckContext) -> CheckResult | None:
        exif = ctx.exif
        if ctx.thresholds.photo_edited == "off" or exif is None or not exif.read:
            return None
        editor = edited_by(exif.software)
        if editor is not None:
            return review(self.name, ReasonCode.PHOTO_EDITED, f"EXIF Software {exif.software!r} names {editor}")
        return passed(self.name, f"EXIF Software {exif.software!r}" if exif.software else "no EXIF Software")


class FromCamera:
    """The photo carries a camera make or model (NO_CAMERA_EXIF: screenshots and re-saved images
    carry none; off by default, a REVIEW when opted in)."""

    name = "camera_exif"

    def run(self, ctx: CheckContext) -> CheckResult | None:
        exif = ctx.exif
        if ctx.thresholds.no_camera_exif == "off" or exif is None or not exif.read:
            return None
        if not exif.has_camera:
            return review(self.name, ReasonCode.NO_CAMERA_EXIF, "the photo carries no camera make or model")
        return passed(self.name, f"camera {exif.camera_make or '?'} {exif.camera_model or '?'}")
