"""Where an imported FHIR resource went: (patient, kind, source system, source id) -> our row.

A FHIR import is idempotent by these links: a resource seen before is found by its source
identity and compared by ``content_hash`` (unchanged: nothing is written; changed: our row
is updated); a new one creates a row and a link. A patient's links of kind ``patient`` hold
the identifiers by which a later bundle is matched to the same patient.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime

# What a link points at: a patient, a medicine, an appointment, or a care plan (which
# holds the imported goals, activities and conditions as items).
LINK_KINDS = ("patient", "medication", "appointment", "care_plan", "condition")


class FhirLink(Base):
    __tablename__ = "fhir_links"
    __table_args__ = (UniqueConstraint("patient_id", "kind", "source_system", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    # A business identifier's system and value, or for a resource without one its fullUrl
    # (urn:uuid) or ``<Type>/<id>`` as the source knows it.
    source_system: Mapped[str] = mapped_column(String(300))
    source_id: Mapped[str] = mapped_column(String(300))
    target_id: Mapped[int] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
