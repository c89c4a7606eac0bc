"""Schemathesis hooks of the contract test (loaded by ``SCHEMATHESIS_HOOKS``).

JSON Schema cannot compare two fields, so one rule of ``serving.bodies`` lives only in the event
schema's description: a watch position is at most the title's ``duration_sec``. Generated events
that break it are left out, in both modes (a negative case that breaks it besides what it was
made to break proves nothing more).
"""

from __future__ import annotations

from typing import Any

import schemathesis


def _past_the_end(event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    position, duration = event.get("position_sec"), event.get("duration_sec")
    numbers = (int, float)
    return (isinstance(position, numbers) and isinstance(duration, numbers) and not isinstance(position, bool)
            and not isinstance(duration, bool) and position > duration)


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    events = body.get("events") if isinstance(body, dict) and "events" in body else body
    listed = events if isinstance(events, list) else [events]
    return not any(_past_the_end(e) for e in listed)
