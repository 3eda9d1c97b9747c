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
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import STATUS, TRANSP, Calendar, Event, Timezone, vDuration

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
    """The calendar's bytes; ``window`` bounds the VTIMEZONE rules (the events' span).

    Each part is written by icalendar: the calendar's own properties, one VTIMEZONE per
    zone, each VEVENT; the parts are joined as the library joins subcomponents. A VEVENT's
    bytes depend only on its (frozen) :class:`CalEvent` and a VTIMEZONE's only on its zone
    and span, so both are cached: a feed fetched again re-serializes only what changed
    (icalendar takes ~1 ms per event; the cache makes a 1,300-event feed several times
    cheaper, see benchmarks/calendar_feed.py).
    """
    items = list(events)
    first, last = window
    for item in items:
        first = min(first, item.start.date())
        last = max(last, item.end.date())
    frame = Calendar.new(prodid=PRODID, name=name, uid=uid, refresh_interval=REFRESH)
    frame["REFRESH-INTERVAL"].params["VALUE"] = "DURATION"  # RFC 7986 §5.7 requires it
    frame.add("calscale", "GREGORIAN")
    frame.add("method", "PUBLISH")
    frame.add("x-published-ttl", vDuration(REFRESH))  # Outlook's and older clients' hint
    head = frame.to_ical()
    assert head.endswith(_END)
    zones = sorted({item.zone for item in items})
    parts = [head[: -len(_END)]]
    parts += [_timezone_ical(zone, first - timedelta(days=1), last) for zone in zones]
    parts += [_event_ical(item) for item in items]
    parts.append(_END)
    return b"".join(parts)


_END = b"END:VCALENDAR\r\n"


@lru_cache(maxsize=256)
def _timezone_ical(zone: str, first: date, last: date) -> bytes:
    return Timezone.from_tzid(zone, first_date=first, last_date=last).to_ical()


@lru_cache(maxsize=50_000)  # ~300 bytes each: ~15 MB at most per process
def _event_ical(item: CalEvent) -> bytes:
    return _event(item).to_ical()


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
