"""A dose's timeline, in one place: when it is due, late, missed, followed up and escalated.

All durations are from the dose's scheduled instant. The follow-up and escalation steps are
the default escalation chain (a patient may set their own, ``backend.reminders.escalation``);
a time-critical medicine has the shorter values.
"""

from __future__ import annotations

from datetime import timedelta

# The outbox kinds of one dose: the reminder, the patient's follow-up, the caregivers' alert.
DOSE_KINDS = ("dose", "dose_followup", "missed_dose_alert")

# The today view: a dose is 'due' from 30 minutes before, 'missed' 4 hours after.
# A dose shows as "due" from 30 minutes before its time; not logged 4 h after it, "missed".
DUE_BEFORE = timedelta(minutes=30)

MISSED_AFTER = timedelta(hours=4)

# A logged dose matches the scheduled slot taken from 2 h before to 8 h after it.
# A dose reported up to 2 h before or 8 h after a slot belongs to that slot (the nearest
# open one); outside that it is an extra dose. 8 h covers "took the morning pill at lunch".
MATCH_EARLY = timedelta(hours=2)

MATCH_LATE = timedelta(hours=8)

# A dose logged this long after its time is 'late' (adherence).
# Taken more than this after its time counts as late (time-critical medicines: 30 min).
LATE_AFTER = timedelta(hours=1)

LATE_AFTER_CRITICAL = timedelta(minutes=30)

# Default escalation chain: the patient again, then the caregivers.
FOLLOW_UP = timedelta(minutes=30)

ESCALATE = timedelta(minutes=60)

FOLLOW_UP_CRITICAL = timedelta(minutes=15)

ESCALATE_CRITICAL = timedelta(minutes=30)

# Lateness limits: after these the reminder is useless and expires instead of being sent.
DOSE_LATE = timedelta(hours=2)

DOSE_LATE_CRITICAL = timedelta(hours=1)

FOLLOW_UP_LATE = timedelta(hours=1)

ALERT_LATE = timedelta(hours=3)

# Planning: rows are written this far ahead; a re-plan looks this far back for doses whose
# later steps are still ahead.
HORIZON = timedelta(hours=48)
LOOKBACK = timedelta(hours=24)
