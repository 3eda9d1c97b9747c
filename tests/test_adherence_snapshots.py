"""The panel's adherence served from the snapshots the worklist sweep writes.

Same story as tests/test_adherence (clock at 2026-11-25 15:00 UTC, 10:00 in New York): Maria
takes Metformin twice a day and missed some; Mr. Chen took half his Donepezil doses. Both are
on Riverside Primary Care A, Priya's team.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select

from backend import db
from backend.models import AdherenceDay, AdherenceSnapshot, Enrollment, Patient
from backend.services import sweep
from tests.conftest import Api, Clock, World, assert_error
from tests.test_adherence import _week_of_doses
from tests.test_medications import add_med, log, ny

TEAM = "Riverside Primary Care A"


def _story(api: Api, world: World) -> dict[str, Any]:
    maria_med = _week_of_doses(api, world)
    chen_med = add_med(api, world.chen, name="Donepezil", start_date="2026-11-20")
    for day in range(20, 25):
        when = datetime(2026, 11, day, 16, 0, tzinfo=UTC)
        r = log(api, world.chen, chen_med["id"], "david", f"chen-{day}-am", when)
        assert r.status_code == 201, r.get_json()
    return maria_med


def _sweep(world: World, at: datetime) -> None:
    sweep.sweep(db.session(), at, [world.maria, world.chen])
    db.session.commit()


def _panel(api: Api, world: World, days: int = 30) -> list[dict[str, Any]]:
    team = world.teams[TEAM].id
    r = api.get(f"/care-teams/{team}/adherence?days={days}", as_="priya")
    assert r.status_code == 200, r.get_json()
    return list(r.get_json())


def _live(api: Api, patient_id: int, days: int) -> dict[str, Any]:
    r = api.get(f"/patients/{patient_id}/adherence?days={days}", as_="priya")
    assert r.status_code == 200, r.get_json()
    return dict(r.get_json()["overall"])


def _tally(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("patient_id", "display_name", "computed_at")}


def _snapshots(days: int | None = None) -> dict[tuple[int, int], AdherenceSnapshot]:
    db.session.expire_all()
    stmt = select(AdherenceSnapshot)
    if days is not None:
        stmt = stmt.where(AdherenceSnapshot.days == days)
    return {(s.patient_id, s.days): s for s in db.session.scalars(stmt)}


@contextmanager
def _statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _computes(statements: list[str]) -> bool:
    """Whether these statements computed adherence (read the dose log) or stored snapshots."""
    return any("dose_logs" in s or "INSERT INTO adherence_snapshots" in s for s in statements)


def test_the_panel_equals_the_live_computation_from_snapshots_and_without(
    api: Api, world: World, clock: Clock
) -> None:
    _story(api, world)
    for days in (7, 30, 90):
        cold = _panel(api, world, days)  # no snapshot yet: computed live, stored
        assert [r["patient_id"] for r in cold] == [world.chen, world.maria]
        for row in cold:
            assert _tally(row) == _live(api, row["patient_id"], days)
            assert row["computed_at"] == "2026-11-25T15:00:00+00:00"

    clock.advance(minutes=5)
    _sweep(world, clock.at)  # replaces the panel's own (older) snapshots
    clock.advance(minutes=5)
    for days in (7, 30):
        warm = _panel(api, world, days)
        assert [r["computed_at"] for r in warm] == ["2026-11-25T15:05:00+00:00"] * 2
        for row in warm:
            # no dose settled or was logged since: the snapshot is the live number
            assert _tally(row) == _live(api, row["patient_id"], days)
    # 90 days is not swept: the panel's own snapshot from 15:00 is still fresh
    assert {r["computed_at"] for r in _panel(api, world, 90)} == {"2026-11-25T15:00:00+00:00"}
    assert _panel(api, world, 7)[0]["dose_adherence"] == 0.5  # Mr. Chen, worst first


def test_a_sweep_writes_snapshots_and_the_panel_reads_only_them(
    api: Api, world: World, clock: Clock
) -> None:
    _story(api, world)
    _sweep(world, clock.at)
    stored = _snapshots()
    assert sorted(stored) == sorted((p, d) for p in (world.maria, world.chen) for d in (7, 30))
    maria = stored[(world.maria, 7)]
    assert maria.computed_at == clock.at
    assert (maria.scheduled, maria.taken, maria.missed, maria.pending) == (12, 8, 3, 1)
    assert (maria.dose_adherence, maria.pdc) == (0.6667, 0.5)
    assert stored[(world.chen, 30)].pdc == 0.0

    api.get("/me", as_="priya")  # first sign-in of the hour records last_seen; not counted
    with _statements() as warm:
        rows = _panel(api, world, 30)
    assert not _computes(warm), warm
    assert [r["patient_id"] for r in rows] == [world.chen, world.maria]
    assert {r["computed_at"] for r in rows} == {"2026-11-25T15:00:00+00:00"}

    # 90 days is not swept: the first view computes and stores it, the next one reads it
    with _statements() as cold:
        _panel(api, world, 90)
    assert _computes(cold)
    assert set(_snapshots(90)) == {(world.maria, 90), (world.chen, 90)}
    with _statements() as again:
        _panel(api, world, 90)
    assert not _computes(again)


def test_a_dose_logged_corrected_or_undone_invalidates_that_patients_snapshots(
    api: Api, world: World, clock: Clock
) -> None:
    med = _story(api, world)
    _sweep(world, clock.at - timedelta(minutes=10))
    before = {r["patient_id"]: r for r in _panel(api, world, 7)}

    # Maria logs yesterday's evening dose, late, from her phone's offline queue
    r = log(api, world.maria, med["id"], "maria", "adh-24-1930", ny(19, 30, 24))
    assert r.status_code == 201, r.get_json()
    assert {k for k in _snapshots() if k[0] == world.maria} == set()
    assert {k for k in _snapshots() if k[0] == world.chen} == {(world.chen, 7), (world.chen, 30)}

    after = {r["patient_id"]: r for r in _panel(api, world, 7)}
    assert after[world.maria]["taken"] == before[world.maria]["taken"] + 1
    assert _tally(after[world.maria]) == _live(api, world.maria, 7)
    assert after[world.maria]["computed_at"] == "2026-11-25T15:00:00+00:00"  # live, then stored
    assert after[world.chen] == before[world.chen]  # Mr. Chen's snapshot still serves
    assert _snapshots(7)[(world.maria, 7)].computed_at == clock.at

    # a correction (taken -> skipped) and an undo invalidate too
    dose = r.get_json()
    fixed = api.patch(
        f"/patients/{world.maria}/doses/{dose['id']}", as_="maria", json={"status": "skipped"}
    )
    assert fixed.status_code == 200, fixed.get_json()
    assert (world.maria, 7) not in _snapshots()
    assert _panel(api, world, 7)[1]["skipped"] == before[world.maria]["skipped"] + 1
    assert (world.maria, 7) in _snapshots()
    gone = api.delete(f"/patients/{world.maria}/doses/{dose['id']}", as_="maria")
    assert gone.status_code == 204
    assert (world.maria, 7) not in _snapshots()
    assert _tally(_panel(api, world, 7)[1]) == _tally(before[world.maria])

    # a medicine paused changes what is scheduled: invalidated as well
    _panel(api, world, 7)
    paused = api.patch(
        f"/patients/{world.maria}/medications/{med['id']}", as_="priya", json={"status": "paused"}
    )
    assert paused.status_code == 200, paused.get_json()
    assert (world.maria, 7) not in _snapshots()
    assert _panel(api, world, 7)[1]["scheduled"] == 0


def test_stale_snapshots_are_recomputed_and_refreshed(api: Api, world: World, clock: Clock) -> None:
    _story(api, world)
    _sweep(world, clock.at)
    clock.advance(minutes=20)  # exactly FRESH_FOR: still served
    assert {r["computed_at"] for r in _panel(api, world)} == {"2026-11-25T15:00:00+00:00"}

    clock.advance(minutes=1)
    with _statements() as stale:
        rows = _panel(api, world)
    assert _computes(stale)
    assert {r["computed_at"] for r in rows} == {"2026-11-25T15:21:00+00:00"}
    for row in rows:
        assert _tally(row) == _live(api, row["patient_id"], 30)
    assert {s.computed_at for s in _snapshots(30).values()} == {clock.at}
    with _statements() as fresh:
        _panel(api, world)
    assert not _computes(fresh)

    # an older writer does not overwrite a newer snapshot
    _sweep(world, clock.at - timedelta(minutes=30))
    assert {s.computed_at for s in _snapshots(30).values()} == {clock.at}
    # a snapshot for a later instant (a sweep run ahead) is not served as of now
    _sweep(world, clock.at + timedelta(hours=6))
    later = _panel(api, world, 7)
    assert {r["computed_at"] for r in later} == {"2026-11-25T15:21:00+00:00"}
    for row in later:
        assert _tally(row) == _live(api, row["patient_id"], 7)


def test_other_teams_and_bad_periods_are_refused_even_with_snapshots(
    api: Api, world: World, clock: Clock
) -> None:
    _story(api, world)
    _sweep(world, clock.at)
    team = world.teams[TEAM].id
    body = assert_error(api.get(f"/care-teams/{team}/adherence", as_="omar"), 404)
    assert "Mar" not in body["message"] and "Chen" not in body["message"]
    assert_error(api.get(f"/care-teams/{team}/adherence", as_="maria"), 404)
    assert_error(api.get("/care-teams/987654/adherence", as_="priya"), 404)
    bad = assert_error(api.get(f"/care-teams/{team}/adherence?days=14", as_="priya"), 422)
    assert "days" in bad["errors"]["query"]
    assert_error(api.get(f"/care-teams/{team}/adherence?days=x", as_="priya"), 422)
    assert_error(api.get(f"/care-teams/{team}/adherence?page=0", as_="priya"), 422)


def test_pages_of_the_panel_from_snapshots_keep_worst_first(
    api: Api, world: World, clock: Clock
) -> None:
    _story(api, world)
    _sweep(world, clock.at)
    team = world.teams[TEAM].id
    first = api.get(f"/care-teams/{team}/adherence?days=7&page_size=1", as_="priya")
    second = api.get(f"/care-teams/{team}/adherence?days=7&page=2&page_size=1", as_="priya")
    assert [r["patient_id"] for r in first.get_json()] == [world.chen]
    assert [r["patient_id"] for r in second.get_json()] == [world.maria]
    assert '"total": 2' in first.headers["X-Pagination"]


def test_the_sweep_stores_a_batch_in_one_statement_per_period(
    api: Api, world: World, clock: Clock
) -> None:
    _story(api, world)
    team = world.teams[TEAM].id
    ids = [world.maria, world.chen]
    for i in range(6):
        creator = world.users["priya"].id
        p = Patient(display_name=f"Panel {i}", created_by_user_id=creator, time_zone="UTC")
        db.session.add(p)
        db.session.flush()
        db.session.add(Enrollment(care_team_id=team, patient_id=p.id))
        db.session.commit()
        add_med(api, p.id, name=f"Med {i}")
        ids.append(p.id)
    with _statements() as seen:
        sweep.sweep(db.session(), clock.at, ids)
        db.session.commit()
    inserts = [s for s in seen if s.startswith("INSERT INTO adherence_snapshots")]
    assert len(inserts) == 2  # 7 days (missed_doses), 30 days (low_adherence)
    assert len(_snapshots()) == 2 * len(ids)
    assert len(_panel(api, world)) == len(ids)


def test_after_a_missed_sweep_the_panel_counts_from_the_days_the_sweep_kept(
    api: Api, world: World, clock: Clock
) -> None:
    _story(api, world)
    _sweep(world, clock.at)
    db.session.expire_all()
    kept = db.session.scalars(
        select(AdherenceDay.patient_id).where(AdherenceDay.scheduled > 0).distinct()
    ).all()
    assert sorted(kept) == sorted([world.maria, world.chen])

    clock.advance(minutes=45)  # the next two sweeps did not run: the snapshots are stale
    with _statements() as cold:
        rows = _panel(api, world, 30)
    assert _computes(cold)
    assert {r["computed_at"] for r in rows} == {"2026-11-25T15:45:00+00:00"}
    for row in rows:
        assert _tally(row) == _live(api, row["patient_id"], 30)
