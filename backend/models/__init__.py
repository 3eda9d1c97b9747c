"""Domain models, one module per subject; importing this package registers them all."""

from backend.models.adherence import AdherenceDay, AdherenceSnapshot
from backend.models.appointment import Appointment, AppointmentEvent
from backend.models.audit import AccessLogEntry
from backend.models.calendar_feed import CalendarFeed
from backend.models.caregiving import (
    ALL_PERMISSIONS,
    CaregiverGrant,
    Invitation,
    Permission,
    RedemptionAttempt,
)
from backend.models.careplan import CarePlan, CarePlanRevision
from backend.models.careteam import (
    CareTeam,
    CareTeamChange,
    CareTeamMember,
    Enrollment,
    Organization,
    TeamRole,
)
from backend.models.checkin import CheckinResponse, CheckinTemplate
from backend.models.checkin_schedule import CheckinSchedule
from backend.models.device import Device
from backend.models.dose_givers import DoseGivers
from backend.models.escalation import DoseAcknowledgement, EscalationChain
from backend.models.fhir_link import FhirLink
from backend.models.medication import DoseLog, Medication
from backend.models.message import Message, MessageThread, ThreadRead
from backend.models.outbox import Delivery, Reminder
from backend.models.patient import Patient
from backend.models.sign_in import SignedOutSession
from backend.models.today_cache import TodayCacheRow, watch_sessions
from backend.models.transition import Discharge, Encounter, MedicationChange, TransitionTask
from backend.models.user import User
from backend.models.worklist import WorkItem, WorkItemEvent

__all__ = [
    "ALL_PERMISSIONS",
    "AccessLogEntry",
    "AdherenceDay",
    "AdherenceSnapshot",
    "Appointment",
    "AppointmentEvent",
    "CalendarFeed",
    "CarePlan",
    "CarePlanRevision",
    "CareTeam",
    "CareTeamChange",
    "CareTeamMember",
    "CaregiverGrant",
    "CheckinResponse",
    "CheckinSchedule",
    "CheckinTemplate",
    "Delivery",
    "Device",
    "Discharge",
    "DoseAcknowledgement",
    "DoseGivers",
    "DoseLog",
    "Encounter",
    "Enrollment",
    "EscalationChain",
    "FhirLink",
    "Invitation",
    "Medication",
    "MedicationChange",
    "Message",
    "MessageThread",
    "Organization",
    "Patient",
    "Permission",
    "RedemptionAttempt",
    "Reminder",
    "SignedOutSession",
    "TeamRole",
    "ThreadRead",
    "TodayCacheRow",
    "TransitionTask",
    "User",
    "WorkItem",
    "WorkItemEvent",
]

# Every session bumps a changed patient's today view version when it commits.
watch_sessions()
