"""Turn database rows into JSON-ready dicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from feedline.db import Cursor


def one(cur: Cursor) -> dict[str, Any] | None:
    """Fetch the next row as a dict named by column, or None when there is none."""
    row = cur.fetchone()
    if row is None:
        return None
    names = [col.name for col in cur.description]
    return {name: _jsonable(value) for name, value in zip(names, row, strict=True)}


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
