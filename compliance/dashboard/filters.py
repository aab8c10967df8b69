"""The filter every list, report and export takes from its query string, checked at this edge.

A value that cannot be read is a clear message on the page, never a silent "everything".
Dates are calendar days in the reports' zone; ``until`` is inclusive, as people read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from compliance.dashboard.language import N_, gettext
from compliance.dashboard.security import Viewer
from compliance.reports.period import ReportZone
from compliance.service.intake import InvalidUpload, refuse_control_characters
from compliance.store import registry
from compliance.store.models import EARLIEST, LATEST, SubmissionStatus
from compliance.store.pages import SORT_KEYS, SubmissionFilter
from compliance.verdicts import Outcome, ReasonCode

# The query-string names, in the order links carry them.
FIELDS = (
    "carrier",
    "since",
    "until",
    "status",
    "outcome",
    "reason",
    "driver",
    "plate",
    "site",
    "reviewed",
    "agree",
    "sort",
    "order",
)
_YES_NO = {"yes": True, "no": False}
# The fields as the form names them, in the messages about them.
FIELD_NAMES = {
    "carrier": N_("carrier"),
    "since": N_("since"),
    "until": N_("until"),
    "status": N_("status"),
    "outcome": N_("verdict"),
    "reason": N_("reason"),
    "driver": N_("driver"),
    "plate": N_("plate"),
    "site": N_("site"),
    "reviewed": N_("reviewed"),
    "agree": N_("pipelines"),
    "sort": N_("sort"),
    "order": N_("order"),
    "pipeline": N_("pipeline"),
}


def field_name(name: str) -> str:
    return gettext(FIELD_NAMES.get(name, name))


def reason_codes() -> list[str]:
    return [r.value for r in ReasonCode]


@dataclass
class Filters:
    """What was asked for (to fill the form and links again) and what it means (``where``)."""

    raw: dict[str, str]
    where: SubmissionFilter
    since_day: date | None
    until_day: date | None
    sort: str = "created_at"
    descending: bool = True
    errors: list[str] = field(default_factory=list)
    carrier_code: str | None = None

    def query(self, **changes: str | None) -> str:
        """The query string of these filters with ``changes`` (None drops a name)."""
        values = {**self.raw, **changes}
        return urlencode({k: v for k in FIELDS if (v := values.get(k))})


def parse_day(text: str, name: str, errors: list[str]) -> date | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        errors.append(
            gettext("%(field)s: %(text)s is not a date such as 2026-11-27", field=field_name(name), text=repr(text))
        )
        return None
    if not EARLIEST.year <= day.year < LATEST.year:
        errors.append(
            gettext(
                "%(field)s: %(text)s is outside the days the store holds (%(first)s-%(last)s)",
                field=field_name(name),
                text=repr(text),
                first=EARLIEST.year,
                last=LATEST.year - 1,
            )
        )
        return None
    return day


def read_filters(
    params: QueryParams,
    viewer: Viewer,
    session: Session,
    zone: ReportZone,
    *,
    default_days: int | None = None,
) -> Filters:
    """``default_days``: with no dates given, the last that many days (today included)."""
    raw = {k: params.get(k, "").strip() for k in FIELDS}
    errors: list[str] = []
    for name in ("carrier", "driver", "plate", "site"):
        try:
            refuse_control_characters(**{name: raw[name]})
        except InvalidUpload:
            errors.append(gettext("%(field)s holds a control character", field=field_name(name)))
            raw[name] = ""

    carrier_id: int | None = None
    carrier_code: str | None = viewer.carrier_code
    if raw["carrier"] and viewer.all_carriers:
        found = registry.find_carrier(session, raw["carrier"])
        if found is None:
            errors.append(gettext("carrier: no carrier %(code)s", code=repr(raw["carrier"])))
        else:
            carrier_id, carrier_code = found.id, found.code
    carrier_id = viewer.carrier_filter(carrier_id)

    since_day = parse_day(raw["since"], "since", errors) if raw["since"] else None
    until_day = parse_day(raw["until"], "until", errors) if raw["until"] else None
    if default_days is not None and not raw["since"] and not raw["until"]:
        until_day = zone.today()
        since_day = until_day - timedelta(days=default_days - 1)
    if since_day and until_day and until_day < since_day:
        errors.append(gettext("until is before since"))

    def one_of(name: str, allowed: list[str]) -> str | None:
        value = raw[name]
        if value and value not in allowed:
            errors.append(
                gettext(
                    "%(field)s: %(value)s is not one of %(allowed)s",
                    field=field_name(name),
                    value=repr(value),
                    allowed=", ".join(allowed),
                )
            )
            return None
        return value or None

    status = one_of("status", [s.value for s in SubmissionStatus])
    outcome = one_of("outcome", [o.value for o in Outcome])
    reason = one_of("reason", reason_codes())
    reviewed = one_of("reviewed", list(_YES_NO))
    agree = one_of("agree", list(_YES_NO))
    sort = one_of("sort", list(SORT_KEYS)) or "created_at"
    order = one_of("order", ["desc", "asc"]) or "desc"

    driver_id = find_driver_id(raw["driver"], carrier_id, session, errors) if raw["driver"] else None
    vehicle_id = find_vehicle_id(raw["plate"], carrier_id, session, errors) if raw["plate"] else None

    where = SubmissionFilter(
        carrier_id=carrier_id,
        status=status,
        outcome=outcome,
        reason=reason,
        driver_id=driver_id,
        vehicle_id=vehicle_id,
        site=raw["site"] or None,
        since=zone.start_of(since_day) if since_day else None,
        until=zone.start_of(until_day + timedelta(days=1)) if until_day else None,
        reviewed=_YES_NO[reviewed] if reviewed else None,
        pipelines_agree=_YES_NO[agree] if agree else None,
    )
    if default_days is not None:
        raw["since"] = since_day.isoformat() if since_day else ""
        raw["until"] = until_day.isoformat() if until_day else ""
    return Filters(
        raw=raw,
        where=where,
        since_day=since_day,
        until_day=until_day,
        sort=sort,
        descending=order == "desc",
        errors=errors,
        carrier_code=carrier_code,
    )


def find_driver_id(text: str, carrier_id: int | None, session: Session, errors: list[str]) -> int | None:
    """A driver by id (``#12``, or digits) or by the carrier's reference, within the scope."""
    found = registry.find_driver_ids(session, text, carrier_id)
    if len(found) == 1:
        return found[0]
    errors.append(
        gettext("driver: no driver %(text)s", text=repr(text))
        if not found
        else gettext("driver: %(text)s names drivers of several carriers; pick one", text=repr(text))
    )
    return None


def find_vehicle_id(text: str, carrier_id: int | None, session: Session, errors: list[str]) -> int | None:
    found = registry.find_vehicle_ids(session, text, carrier_id)
    if len(found) == 1:
        return found[0]
    errors.append(
        gettext("plate: no registered vehicle %(text)s", text=repr(text))
        if not found
        else gettext("plate: %(text)s is registered by several carriers", text=repr(text))
    )
    return None
