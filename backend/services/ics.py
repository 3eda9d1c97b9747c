"""An RFC 5545 calendar from plain events, written by the icalendar library (no Flask, no
database): one VTIMEZONE per zone used, each event in its own zone (DTSTART;TZID=...), so a
calendar shows 09:00 at the clinic as 09:00 there across daylight-saving changes.

The output depends only on its input (no random UID, DTSTAMP from the record's last
change), so the same feed gives the same bytes and an ETag can say "unchanged".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import STATUS, TRANSP, Calendar, Event, vDuration

PRODID = "-//care-companion//calendar feed//EN"
# How often a calendar app should fetch again; most (Google's included) decide themselves.
REFRESH = timedelta(hours=1)


@dataclass(frozen=True)
class CalEvent:
    uid: str
    start: datetime  # aware
    end: datetime
    zone: str  # IANA
    summary: str
    stamp: datetime  # the record's last change, UTC
    sequence: int = 0
    cancelled: bool = False
    busy: bool = True  # a dose time does not block the day (TRANSP:TRANSPARENT)
    location: str | None = None
    description: str | None = None


def build(uid: str, name: str, events: Iterable[CalEvent], window: tuple[date, date]) -> bytes:
    """The calendar's bytes; ``window`` bounds the VTIMEZONE rules (the events' span)."""
    cal = Calendar.new(prodid=PRODID, name=name, uid=uid, refresh_interval=REFRESH)
    cal["REFRESH-INTERVAL"].params["VALUE"] = "DURATION"  # RFC 7986 §5.7 requires it
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-published-ttl", vDuration(REFRESH))  # Outlook's and older clients' refresh hint
    first, last = window
    for item in events:
        cal.add_component(_event(item))
        first = min(first, item.start.date())
        last = max(last, item.end.date())
    cal.add_missing_timezones(first_date=first - timedelta(days=1), last_date=last)
    return cal.to_ical()


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    """The instant on the zone's wall clock; in UTC when that wall-clock time happens twice
    and this is its second occurrence (the hour after a fall-back), which a TZID time cannot
    name: RFC 5545 §3.3.5 reads a repeated local time as its first occurrence."""
    local = instant.astimezone(zone)
    return instant.astimezone(UTC) if local.fold else local


def _event(item: CalEvent) -> Event:
    zone = ZoneInfo(item.zone)
    event = Event.new(
        uid=item.uid,
        start=_local(item.start, zone),
        end=_local(item.end, zone),
        stamp=item.stamp,
        last_modified=item.stamp,
        summary=item.summary,
        sequence=item.sequence,
        status=STATUS.CANCELLED if item.cancelled else STATUS.CONFIRMED,
        transparency=TRANSP.OPAQUE if item.busy else TRANSP.TRANSPARENT,
        location=item.location,
        description=item.description,
    )
    return event
