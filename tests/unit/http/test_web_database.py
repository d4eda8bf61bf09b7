"""A gunicorn worker keeps a PostgreSQL connection open per thread (no reconnect churn)."""

from __future__ import annotations

import dataclasses

from feedline.http.app import web_database
from feedline.settings import load


def settings(threads: int, pool_min: int):
    s = load()
    return dataclasses.replace(
        s,
        web=dataclasses.replace(s.web, threads=threads),
        postgres=dataclasses.replace(s.postgres, pool_min=pool_min),
    )


def test_pool_keeps_one_connection_per_thread():
    assert web_database(settings(threads=4, pool_min=1))._settings.pool_min == 4


def test_a_larger_pool_min_is_kept():
    assert web_database(settings(threads=1, pool_min=3))._settings.pool_min == 3
