"""The official Spanish (USA) wording of the PHQ and GAD-7 screeners, reproduced unchanged.

The PHQ-9 and GAD-7 were "developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt
Kroenke and colleagues, with an educational grant from Pfizer Inc. No permission required to
reproduce, translate, display or distribute" (the forms' own notice; the Spanish forms say
"Elaborado por los doctores Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke y colegas,
mediante una subvención educativa otorgada por Pfizer Inc. No se requiere permiso para
reproducir, traducir, presentar o distribuir."). The texts below are those forms' items and
answer choices, word for word: clinical wording is never ours to write. Provenance: the
PHQ-9 from a copy of the "PHQ-9 Spanish for the USA" form as published on the PHQ screeners'
site (phqscreeners.com), the GAD-7 from three independent reproductions of the Spanish (USA)
GAD-7 form that agree word for word; neither was compared with phqscreeners.com itself (no
network here) -- do that before relying on it clinically.

The PHQ-2 is the PHQ-9's first two items, so it takes their wording. No official Spanish
*titles* of the PHQ-2 and GAD-7 were found: they keep their names. The built-in SOCIAL-NEEDS
and POST-DISCHARGE templates are our own words, not a published instrument, and no official
translation exists for them: they stay English only (``language: en``).

Keys: the item's LOINC code (the screeners' item ids); answers by their score 0-3.
"""

from __future__ import annotations

from typing import Any

SOURCE = (
    "Official Spanish (USA) version of the PHQ-9 / GAD-7 (Spitzer, Williams, Kroenke et al.; "
    "educational grant from Pfizer Inc.; no permission required to reproduce or translate)"
)

# The four frequency answers of both forms, by score.
ANSWERS = ("Ningún día", "Varios días", "Más de la mitad de los días", "Casi todos los días")

PHQ9_TITLE = "Cuestionario sobre la salud del paciente-9 (PHQ-9)"
PHQ9 = {
    "44250-9": "Poco interés o placer en hacer cosas",
    "44255-8": "Se ha sentido decaído(a), deprimido(a) o sin esperanzas",
    "44259-0": "Ha tenido dificultad para quedarse o permanecer dormido(a), o ha dormido demasiado",
    "44254-1": "Se ha sentido cansado(a) o con poca energía",
    "44251-7": "Sin apetito o ha comido en exceso",
    "44258-2": "Se ha sentido mal con usted mismo(a) \u2013 o que es un fracaso o que ha quedado "
    "mal con usted mismo(a) o con su familia",
    "44252-5": "Ha tenido dificultad para concentrarse en ciertas actividades, tales como leer "
    "el periódico o ver la televisión",
    "44253-3": "¿Se ha movido o hablado tan lento que otras personas podrían haberlo notado? o "
    "lo contrario \u2013 muy inquieto(a) o agitado(a) que ha estado moviéndose mucho más de lo "
    "normal",
    "44260-8": "Pensamientos de que estaría mejor muerto(a) o de lastimarse de alguna manera",
}
GAD7 = {
    "69725-0": "Se ha sentido nervioso(a), ansioso(a) o con los nervios de punta",
    "68509-9": "No ha sido capaz de parar o controlar su preocupación",
    "69733-4": "Se ha preocupado demasiado por motivos diferentes",
    "69734-2": "Ha tenido dificultad para relajarse",
    "69735-9": "Se ha sentido tan inquieto(a) que no ha podido quedarse quieto(a)",
    "69689-8": "Se ha molestado o irritado fácilmente",
    "69736-7": "Ha tenido miedo de que algo terrible fuera a pasar",
}
# code -> (title, item texts)
SCREENERS: dict[str, tuple[str, dict[str, str]]] = {
    "PHQ-9": (PHQ9_TITLE, PHQ9),
    "PHQ-2": ("PHQ-2", {k: PHQ9[k] for k in ("44250-9", "44255-8")}),
    "GAD-7": ("GAD-7", GAD7),
}


def screener_translation(code: str, items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``es`` translation of a built-in screener's definition (its items with their
    options by score), or None when there is no official one."""
    found = SCREENERS.get(code)
    if found is None:
        return None
    title, texts = found
    if any(i["id"] not in texts for i in items):
        return None  # a form we do not have word for word: no translation at all
    return {
        "title": title,
        "source": SOURCE,
        "items": {
            i["id"]: {
                "text": texts[i["id"]],
                "answers": {o["code"]: ANSWERS[o["value"]] for o in i["options"]},
            }
            for i in items
        },
    }
