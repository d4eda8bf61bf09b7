"""Check cached Redis entries against PostgreSQL, once the read path caches objects.

The cache is allowed to be absent (a miss is never a difference); a cached entry that
disagrees with the source of truth is stale. Which keys exist and what they hold is the
read path's contract (feedline/cache_keys.py and its cache module); until that module is
in place there is nothing to check and this returns no differences.
"""

from __future__ import annotations

from typing import Any

from feedline.verify.model import Difference
from feedline.verify.source import Expected


def check_user(client: Any, expected: Expected) -> tuple[int, list[Difference]]:
    """Return how many cache entries of ``expected``'s partitions were checked, and diffs."""
    return 0, []
