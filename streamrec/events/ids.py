"""The id rules: one pattern for every id a client names, shared by the writes and the reads.

``POST /v1/events`` (``serving.bodies``), the service's path and query parameters
(``serving.params``) and the OpenAPI document (``serving.openapi``) all take their rule from here,
so an id that can be written can be read back and an id refused on one side is refused on both.

- ids (``user_id``, ``video_id``, ``device``): 1-128 characters of ASCII letters, digits and
  ``_ . : @ -``, starting with a letter or digit: nothing a path, a log line or a page could
  take for syntax (no ``/``, spaces, control characters, ``<``).
- regions: 1-32 characters of ASCII letters, digits, ``_`` and ``-``, starting with a letter or
  digit.
- ``event_id`` is a UUID (checked where it is parsed).
"""

from __future__ import annotations

import re

ID_MAX_LEN = 128
REGION_MAX_LEN = 32
#: The pattern as text (no anchors): for documents such as the OpenAPI description.
ID_REGEX = rf"[A-Za-z0-9][A-Za-z0-9_.:@-]{{0,{ID_MAX_LEN - 1}}}"
REGION_REGEX = rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{REGION_MAX_LEN - 1}}}"
ID_PATTERN = re.compile(ID_REGEX, re.ASCII)
REGION_PATTERN = re.compile(REGION_REGEX, re.ASCII)
#: What a refused id is told.
ID_RULE = f"must be 1-{ID_MAX_LEN} characters of letters, digits and _.:@- starting with a letter or digit"
REGION_RULE = f"must be 1-{REGION_MAX_LEN} characters of letters, digits, _ and - starting with a letter or digit"


def is_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def is_region(value: str) -> bool:
    return REGION_PATTERN.fullmatch(value) is not None
