"""Calendar days in the reports' time zone, and the SQL that buckets a timestamp by them.

The zone is read as a fixed offset (its offset today) so that SQLite, which knows no zones, and
PostgreSQL count the same days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from compliance.store.models import utcnow


@dataclass(frozen=True, slots=True)
class ReportZone:
    offset: timedelta

    @classmethod
    def named(cls, name: str, *, at: datetime | None = None) -> ReportZone:
        moment = at or utcnow()
        offset = moment.astimezone(ZoneInfo(name)).utcoffset() or timedelta(0)
        return cls(offset)

    @property
    def tzinfo(self) -> timezone:
        return timezone(self.offset)

    @property
    def minutes(self) -> int:
        return int(self.offset.total_seconds() // 60)

    def today(self) -> date:
        return utcnow().astimezone(self.tzinfo).date()

    def start_of(self, day: date) -> datetime:
        """The first instant of ``day`` in this zone, as an aware time."""
        return datetime(day.year, day.month, day.day, tzinfo=self.tzinfo)

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.tzinfo)

    def day_of(self, column: sa.ColumnElement[datetime], dialect: str) -> sa.ColumnElement[str]:
        """``column``'s calendar day in this zone as 'YYYY-MM-DD', computed by the database."""
        if dialect == "sqlite":
            # SQLite keeps naive UTC text; date() shifts it by the offset.
            return sa.func.date(column, f"{self.minutes:+d} minutes", type_=sa.String)
        if dialect == "postgresql":
            shifted = sa.func.timezone("UTC", column) + sa.literal_column(f"interval '{self.minutes} minutes'")
            return sa.func.to_char(shifted, "YYYY-MM-DD", type_=sa.String)
        raise NotImplementedError(f"reports support SQLite and PostgreSQL, not {dialect}")
