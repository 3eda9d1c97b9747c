"""Route x persona matrix: every route under a patient, every persona, 0 leaks; and its
audit column: who is in the patient's access log for each cell (the push column, what a
caregiver stops being told as permissions go, is ``tests/test_push_policy.py``).

The expectations below restate the permission model independently of backend/access.py,
so a change in the policy that nobody meant shows up here. A new route that takes a
patient id and has no entry in MATRIX fails ``test_every_patient_route_is_in_the_matrix``.

Feature modules add their routes in ``tests/matrix_<feature>.py``: a module-level
``ENTRIES: dict[(rule, method), Entry]`` and optionally ``prepare(world) -> dict[str, int]``
giving ids for the rule's other parameters, keyed ``"<param>:<patient>"`` (e.g.
``"plan_id:maria"``); ``patient`` is ``maria`` or ``chen``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from backend import db
from backend.clock import now
from backend.models import AccessLogEntry, CaregiverGrant, Invitation, User
from backend.models.caregiving import hash_code
from tests.conftest import Api, World, assert_error
from tests.matrix import ALLOWED, CLINICAL, EVERYTHING, Entry

PERSONAS = list(ALLOWED)
PATIENTS = ["maria", "chen", "nobody"]


@dataclass
class Setup:
    world: World
    ids: dict[str, int]

    def patient(self, key: str) -> int:
        return 987654 if key == "nobody" else getattr(self.world, key)


def _grant_holder(patient: str) -> str:
    return {"maria": "ana", "chen": "lin"}.get(patient, "")


MATRIX: dict[tuple[str, str], Entry] = {
    ("/patients/<int:patient_id>", "GET"): Entry("view_patient", (200,)),
    ("/patients/<int:patient_id>", "PATCH"): Entry(
        "edit_patient", (200,), body=lambda p: {"communication_needs": "Speak slowly."}
    ),
    ("/patients/<int:patient_id>/invitations", "GET"): Entry("manage_access", (200,)),
    ("/patients/<int:patient_id>/invitations", "POST"): Entry(
        "manage_access",
        (201,),
        body=lambda p: {"relationship": "friend", "permissions": ["view_medications"]},
    ),
    ("/patients/<int:patient_id>/invitations/<int:invitation_id>", "DELETE"): Entry(
        "manage_access", (204,)
    ),
    ("/patients/<int:patient_id>/link-code", "POST"): Entry(
        "manage_access",
        (201, 409),
        body=lambda p: {},
        expect_for=lambda p: (409,) if p == "maria" else (201,),
    ),
    ("/patients/<int:patient_id>/caregivers", "GET"): Entry("manage_access", (200,)),
    ("/patients/<int:patient_id>/caregivers/<int:grant_id>", "PATCH"): Entry(
        "manage_access", (200,), body=lambda p: {"permissions": ["view_medications"]}
    ),
    ("/patients/<int:patient_id>/caregivers/<int:grant_id>", "DELETE"): Entry(
        "manage_access", (204,), also=lambda who, p: who == _grant_holder(p), refused=404
    ),
    ("/patients/<int:patient_id>/care-team", "GET"): Entry("view_care_team", (200,)),
    ("/patients/<int:patient_id>/access-log", "GET"): Entry("view_access_log", (200,)),
}


FEATURES = [
    importlib.import_module(f"tests.{m.name}")
    for m in pkgutil.iter_modules([str(Path(__file__).parent)])
    if m.name.startswith("matrix_")
]
for _feature in FEATURES:
    MATRIX.update(_feature.ENTRIES)


def _prepare(world: World) -> dict[str, int]:
    """Extra people: Lin (Mr. Chen's granddaughter), Rita (revoked), Lena (lapsed)."""
    s = db.session
    users = {}
    for uid in ("lin", "rita", "lena"):
        users[uid] = User(firebase_uid=uid, email=f"{uid}@example.org", display_name=uid.title())
        s.add(users[uid])
    s.flush()
    world.users.update(users)
    lin = CaregiverGrant(
        patient_id=world.chen,
        caregiver_user_id=users["lin"].id,
        relationship="grandchild",
        permissions=["view_appointments"],
        granted_by_user_id=world.users["david"].id,
    )
    rita = CaregiverGrant(
        patient_id=world.maria,
        caregiver_user_id=users["rita"].id,
        relationship="friend",
        permissions=sorted(EVERYTHING & CLINICAL),
        granted_by_user_id=world.users["maria"].id,
    )
    lena = CaregiverGrant(
        patient_id=world.maria,
        caregiver_user_id=users["lena"].id,
        relationship="neighbour",
        permissions=["view_medications"],
        granted_by_user_id=world.users["maria"].id,
        ends_at=now(),
    )
    s.add_all([lin, rita, lena])
    s.flush()
    rita.end(world.users["maria"].id, "revoked")
    ids = {"grant_id:chen": lin.id}
    ana = s.query(CaregiverGrant).filter_by(caregiver_user_id=world.users["ana"].id).one()
    ids["grant_id:maria"] = ana.id
    for key, pid in (("maria", world.maria), ("chen", world.chen)):
        inv = Invitation(
            patient_id=pid,
            created_by_user_id=world.users["maria"].id,
            code_hash=hash_code(f"matrix-{key}"),
            relationship="friend",
            permissions=["view_medications"],
            expires_at=now().replace(year=2027),
        )
        s.add(inv)
        s.flush()
        ids[f"invitation_id:{key}"] = inv.id
    s.commit()
    for module in FEATURES:
        if hasattr(module, "prepare"):
            ids.update(module.prepare(world))
            s.commit()
    return ids


def _sub(patient: str) -> str:
    return patient if patient != "nobody" else "maria"


def _path(rule: str, setup: Setup, patient: str) -> str:
    sub = _sub(patient)

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        return str(setup.patient(patient) if name == "patient_id" else setup.ids[f"{name}:{sub}"])

    return re.sub(r"<int:(\w+)>", value, rule)


def _expected(entry: Entry, persona: str, patient: str) -> tuple[int, ...]:
    allowed = ALLOWED[persona].get(patient)
    if allowed is None:
        return (404,)
    if entry.action in allowed or (entry.also and entry.also(persona, patient)):
        return entry.expect_for(patient) if entry.expect_for else entry.ok
    return (entry.refused,)


CASES = [
    pytest.param(rule, method, persona, patient, id=f"{method} {rule} {persona}->{patient}")
    for (rule, method) in MATRIX
    for persona in PERSONAS
    for patient in PATIENTS
]


def test_every_patient_route_is_in_the_matrix(app: Flask) -> None:
    routes = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if "patient_id" in rule.arguments
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    missing = routes - set(MATRIX)
    assert not missing, f"routes without a matrix entry: {sorted(missing)}"
    assert not set(MATRIX) - routes, "matrix entries for routes that no longer exist"


@pytest.mark.parametrize(("rule", "method", "persona", "patient"), CASES)
def test_matrix(api: Api, world: World, rule: str, method: str, persona: str, patient: str) -> None:
    setup = Setup(world, _prepare(world))
    entry = MATRIX[(rule, method)]
    kw: dict[str, Any] = {}
    if entry.body is not None:
        kw["json"] = entry.body(patient)
    if entry.headers is not None:
        kw["headers"] = entry.headers(_sub(patient), setup.ids)
    response = api.request(method, _path(rule, setup, patient), as_=persona, **kw)
    expected = _expected(entry, persona, patient)
    assert response.status_code in expected, (
        f"{persona} {method} {rule} on {patient}: got {response.status_code}, "
        f"expected {expected}: {response.get_data(as_text=True)[:300]}"
    )
    if response.status_code == 404:
        body = assert_error(response, 404)
        # The same words whether it exists or not: the patient's, or (refused=404) the
        # record's own "no such" answer.
        if ALLOWED[persona].get(patient) is None:
            assert body["message"] == "No such patient."
        else:
            assert body["message"].startswith("No such ")
        text = response.get_data(as_text=True)
        for name in ("Mar\\u00eda", "María", "Wei Chen"):
            assert name not in text
    elif response.status_code >= 400:
        assert_error(response, response.status_code)
    _audit_column(response, entry, persona, patient, setup)


def _audit_column(response: Any, entry: Entry, persona: str, patient: str, setup: Setup) -> None:
    """The access log: a use of the record by anyone but its patient, allowed or refused
    with 403, is in the patient's log once per action, under one label; the patient's own
    use, and a 404 to someone with no relation, are not."""
    db.session.expire_all()
    rows = db.session.scalars(
        select(AccessLogEntry).where(AccessLogEntry.request_id == response.headers["X-Request-ID"])
    ).all()
    unlogged_refusal = response.status_code == entry.refused and not entry.refusal_logged
    if persona == patient or ALLOWED[persona].get(patient) is None or unlogged_refusal:
        assert rows == [], f"{persona}'s use of {patient} logged: {[r.action for r in rows]}"
        return
    assert rows, f"{persona}'s {response.status_code} on {patient}'s record is not in the log"
    assert {r.patient_id for r in rows} == {setup.patient(patient)}
    assert len({r.actor_role for r in rows}) == 1, [r.actor_role for r in rows]
    actions = [r.action for r in rows]
    assert len(actions) == len(set(actions)), f"logged twice: {actions}"
    assert {r.status for r in rows} == {response.status_code}
