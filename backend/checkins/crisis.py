"""Crisis guidance shown with an answer that raised a safety flag (PHQ-9 item 9 above 0).

US numbers for now (988 Suicide & Crisis Lifeline, which answers in English and Spanish);
per-organization numbers come with organization settings.
"""

from __future__ import annotations

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


def crisis_guidance(language: str) -> str:
    """The guidance in the patient's language (a BCP 47 tag); English when not available."""
    return CRISIS_GUIDANCE.get(language.split("-")[0].lower(), CRISIS_GUIDANCE["en"])
