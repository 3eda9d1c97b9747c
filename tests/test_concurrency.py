"""Two people redeem the same code at the same moment: exactly one gets access."""

from __future__ import annotations

import threading

from flask import Flask

from tests.conftest import Api, World


def test_a_code_redeemed_twice_at_once_is_granted_once(ctx: Flask, api: Api, world: World) -> None:
    r = api.post(
        f"/patients/{world.maria}/invitations",
        as_="maria",
        json={"relationship": "friend", "permissions": ["view_medications"]},
    )
    code = r.get_json()["code"]
    barrier = threading.Barrier(4)
    results: dict[str, int] = {}

    def attempt(who: str) -> None:
        client = Api(ctx.test_client(), ctx, world)
        token_headers = {"Authorization": f"Bearer {client.token(who)}"}
        barrier.wait()
        resp = client.client.post("/invitations/redeem", json={"code": code}, headers=token_headers)
        results[who] = resp.status_code

    threads = [threading.Thread(target=attempt, args=(w,)) for w in ("p1", "p2", "p3", "p4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results.values()).count(201) == 1, results
    assert all(code in (201, 410, 409) for code in results.values()), results
    granted = api.get(f"/patients/{world.maria}/caregivers?status=active", as_="maria")
    assert len([g for g in granted.get_json() if g["relationship"] == "friend"]) == 1
