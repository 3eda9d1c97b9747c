"""The dispatcher as tests run it: with the domain's re-checks, and with the worker's wiring.

``CHECKED``: the reminder domain's relevance checks with the neutral default texts.
``WIRED``: exactly what the worker hands the dispatcher (checks and localized texts).
"""

from backend.reminders.relevance import CHECKS
from notifications.dispatch import DispatchConfig
from notifications.worker import wired

CHECKED = DispatchConfig(checks=CHECKS)
WIRED = wired()
