"""Crontab strings (``'*/5 * * * *'``) for ``cron()``: read by croniter, the optional extra ``cron``.

croniter only parses here: the expression becomes the field sets of the keyword form (minute, hour, day, month,
weekday, and second when a sixth field is given), and pool/worker/cron.py's own search computes the ticks. So a
crontab job follows the same rules as ``cron(f, minute=...)``: the worker's timezone, one tick per wall time
at a DST fall-back, a spring-forward gap's wall times moved past the gap, the fence and the catch-up window.

Cron's one twist is kept: when both day of month and day of week are restricted, a day matching either fires
(``0 0 1 * mon``: the 1st, and every Monday). That is two field sets, and the next tick is the earlier of
their two answers. Extensions a field set cannot say (``L``, ``W``, ``#``, a seventh year field) are refused, and
so is croniter's random ``R``: drawn at each parse, it would give every worker process a schedule of its own.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["InvalidCrontab", "crontab_fields"]

_FIELDS: Final = ("minute", "hour", "day", "month", "weekday", "second")
# croniter's random field (``R``, ``R(0-30)``, ``R/5``), drawn anew at every parse
_RANDOM: Final = re.compile(r"^r(\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)


class InvalidCrontab(ValueError):
    """A crontab string that cannot be used; its message is one line. ``pool worker`` and ``pool start``
    exit 2 with it when the settings are loaded."""


def crontab_fields(expression: str) -> list[dict[str, set[int] | None]]:
    """The keyword fields (``next_cron``'s, weekday 0 = Monday) of ``expression``, None meaning any value: one
    set of fields, or two when day of month and day of week are both restricted (either may match)."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidCrontab(f"crontab={expression!r} must be a non-empty string like '*/5 * * * *'")
    try:
        from croniter import croniter
    except ImportError:
        raise InvalidCrontab("crontab strings need croniter: pip install 'pool-queue[cron]'") from None
    if any(_RANDOM.match(item) for field in expression.split() for item in field.split(",")):
        # croniter draws the value once per parse: each process, and each restart, would tick at other times
        raise InvalidCrontab(
            f"crontab {expression!r}: random values ('R') are not supported: each worker would draw its own "
            "schedule; write the value"
        )
    try:
        parsed: Any = croniter(expression)
    except (ValueError, KeyError, TypeError) as exc:  # croniter's errors are ValueErrors; a few slip as others
        if expression.strip().startswith("@"):  # croniter knows @hourly ... @yearly only, and says "5 columns"
            raise InvalidCrontab(
                f"crontab {expression!r} is not supported: the macros are @hourly, @daily, @midnight, @weekly, "
                "@monthly, @yearly and @annually"
            ) from None
        reason = " ".join(str(exc).split())  # its message quotes the expression, newlines and all: one line
        raise InvalidCrontab(f"crontab {expression!r} is not valid: {reason}") from None
    expanded: list[list[Any]] = parsed.expanded
    if len(expanded) > len(_FIELDS) or getattr(parsed, "nth_weekday_of_month", None):
        raise InvalidCrontab(f"crontab {expression!r}: a year field and 'day#n' are not supported")
    fields: dict[str, set[int] | None] = {"second": {0}}
    for name, values in zip(_FIELDS, expanded, strict=False):
        if values == ["*"]:
            fields[name] = None
        elif all(isinstance(value, int) for value in values):
            fields[name] = {int(v) for v in values}
        else:
            raise InvalidCrontab(f"crontab {expression!r}: {name} {values!r}: 'L' and 'W' are not supported")
    weekdays = fields["weekday"]
    if weekdays is not None:
        fields["weekday"] = {(day + 6) % 7 for day in weekdays}  # cron's 0 (and 7) = Sunday; Python's 0 = Monday
    if fields["day"] is not None and fields["weekday"] is not None:
        return [{**fields, "weekday": None}, {**fields, "day": None}]
    return [fields]
