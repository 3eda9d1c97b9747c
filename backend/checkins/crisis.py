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

from collections.abc import Mapping
from typing import Any

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
