"""Days and times far outside any lift are refused (422), not computed into an overflow.

Found by the page fuzz test: a week before ``to=0001-01-01`` or the day after 9999-12-31
raised OverflowError inside the period arithmetic, a 500 on every database.
"""

from __future__ import annotations

import pytest

from tests.support.web import add_token, add_user, dashboard_client

OUT_OF_RANGE = [
    "/api/v1/metrics?to=0001-01-01T00:00:00Z",
    "/api/v1/metrics?to=9999-12-31T23:59:59Z",
    "/api/v1/metrics?to=0001-01-01T00:00:00%2B14:00",
    "/api/v1/metrics?from=9999-12-31T23:59:59-12:00",
    "/api/v1/metrics.csv?to=0001-01-01T00:00:00Z",
    "/api/v1/metrics/daily?last=9999-12-31",
    "/api/v1/metrics/daily?last=0001-01-01",
    "/api/v1/lifts?from=0001-01-01T00:00:00Z",
    "/lifts?from=0001-01-01&to=9999-12-31",
    "/lifts?site=s1&to=9999-12-31",
]
IN_RANGE = [
    "/api/v1/metrics?from=1970-01-01T00:00:00Z&to=1970-02-01T00:00:00Z",
    "/api/v1/metrics/daily?last=2030-06-30",
    "/api/v1/lifts?from=2025-01-01T00:00:00",
    "/lifts?from=2025-01-01&to=2025-01-31",
]


def test_days_and_times_out_of_range_are_refused(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "admin", "admin")
        headers = {"Authorization": f"Bearer {add_token(client, 'admin')}"}
        for url in OUT_OF_RANGE:
            assert client.get(url, headers=headers).status_code == 422, url
        for url in IN_RANGE:
            assert client.get(url, headers=headers).status_code == 200, url


@pytest.mark.parametrize("url", ["/?days=0", "/teams/s1/red?days=93"])
def test_page_periods_stay_bounded(sqlite_url: str, url: str) -> None:
    with dashboard_client(sqlite_url) as client:
        add_user(client, "admin", "admin")
        headers = {"Authorization": f"Bearer {add_token(client, 'admin')}"}
        assert client.get(url, headers=headers).status_code == 422
