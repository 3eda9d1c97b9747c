"""Crisis guidance shown with an answer that raised a safety flag (PHQ-9 item 9 above 0, or
any rule that raises ``safety``).

The default is the US text (988 Suicide & Crisis Lifeline, which answers in English and
Spanish). An organization outside the US, or with its own crisis line, sets its own text per
language (``organizations.crisis_guidance``, ``carecompanion team crisis-guidance``). Once an
organization has set any text, its patients never see the US default: a patient whose
language it has no text in gets its English text (or its first), because the right number
in the wrong language beats the wrong number in the right one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Organization

CRISIS_GUIDANCE = {
    "en": (
        "If you are thinking about hurting yourself, you are not alone. Call or text 988 "
        "(Suicide & Crisis Lifeline) any time, or call 911 if you are in danger now. "
        "Your care team has been told about your answer."
    ),
    "es": (
        "Si está pensando en hacerse daño, no está solo. Llame o envíe un mensaje de texto al "
        "988 (Línea de Prevención del Suicidio y Crisis; oprima 2 para español) a cualquier "
        "hora, o llame al 911 si está en peligro ahora. Su equipo de atención conoce su "
        "respuesta."
    ),
}


def _primary(language: str) -> str:
    return language.split("-")[0].lower()


def crisis_guidance(language: str, organization: Mapping[str, Any] | None = None) -> str:
    """The guidance in the patient's language (a BCP 47 tag), from the organization's texts
    when it has any (see the module doc), else the US default; English when not available."""
    texts = {_primary(k): v for k, v in (organization or {}).items() if isinstance(v, str) and v}
    if texts:
        first = next(iter(texts.values()))
        return texts.get(_primary(language), texts.get("en", first))
    return CRISIS_GUIDANCE.get(_primary(language), CRISIS_GUIDANCE["en"])


MAX_GUIDANCE_LENGTH = 1000


def set_organization_guidance(
    db: Session, org_name: str, language: str | None, text: str | None, *, clear: bool = False
) -> dict[str, str]:
    """Set (or with ``clear`` remove) an organization's text in a language; returns its texts.

    Without ``text`` and ``clear`` it only reads them. ValueError for an unknown organization
    or a bad value."""

    organization = db.scalar(select(Organization).where(Organization.name == org_name))
    if organization is None:
        raise ValueError(f"no organization named {org_name!r}")
    texts = dict(organization.crisis_guidance or {})
    if language is not None and not re.fullmatch(r"[A-Za-z]{2,3}", language):
        raise ValueError("language: a two- or three-letter code such as en or es")
    key = None if language is None else language.lower()
    if clear:
        if key is None:
            texts = {}
        else:
            texts.pop(key, None)
    elif text is not None and key is not None:
        text = text.strip()
        if not text or len(text) > MAX_GUIDANCE_LENGTH:
            raise ValueError(f"text: 1 to {MAX_GUIDANCE_LENGTH} characters")
        texts[key] = text
    organization.crisis_guidance = texts or None
    db.flush()
    return texts
