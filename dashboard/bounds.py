"""The range of days and times a request may ask about.

Periods are computed around the requested times (a week before ``to``, the previous period
for a trend, the next local midnight), so a time near year 1 or 9999 made date arithmetic
overflow into a 500. No lift happens before 1970 or after 9000; anything outside is a 422.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated

from pydantic import AfterValidator

EARLIEST = date(1970, 1, 1)
LATEST = date(9000, 1, 1)


def check_day(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"give a day between {EARLIEST} and {LATEST}")
    return value


def check_moment(value: datetime) -> datetime:
    aware = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    try:
        day = aware.astimezone(timezone.utc).date()
    except OverflowError:  # year 1 or 9999 moved past the calendar by its offset
        raise ValueError(f"give a time between {EARLIEST} and {LATEST}") from None
    check_day(day)
    return value


Day = Annotated[date, AfterValidator(check_day)]
Moment = Annotated[datetime, AfterValidator(check_moment)]
