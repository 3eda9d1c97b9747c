"""Instants in requests: a mistyped year is a 422 naming the field, never an overflow (500)
in the date arithmetic behind it (windows, answer deadlines, zone conversions)."""

from __future__ import annotations

from tests.conftest import Api, World, assert_error

DAILY = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["10:30"]}}


def test_a_mistyped_year_is_a_422_not_an_overflow(api: Api, world: World) -> None:
    url = f"/patients/{world.maria}/checkin-schedules"
    made = api.post(url, as_="priya", json={"template": "PHQ-2", "timing": DAILY})
    assert made.status_code == 201, made.get_json()
    occurrences = f"{url}/{made.get_json()['id']}/occurrences"
    for query in (
        {"from": "9999-12-31T00:00:00Z"},
        {"to": "0001-01-01T00:00:00Z"},
        {"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T00:00:00Z"},
        {"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"},
    ):
        field = next(iter(query))
        err = assert_error(api.get(occurrences, as_="priya", query_string=query), 422)
        assert field in err["errors"]["query"]
    late = {"template": "PHQ-2", "timing": DAILY, "starts_at": "0001-01-01T00:00:00Z"}
    err = assert_error(api.post(url, as_="priya", json=late), 422)
    assert err["errors"]["json"]["starts_at"] == [
        "Between the years 1900 and 2199; check the year."
    ]
    listed = api.get(url, as_="priya").get_json()
    assert [s["id"] for s in listed] == [made.get_json()["id"]]  # nothing more was stored
