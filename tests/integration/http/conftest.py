"""Build the web app on the real PostgreSQL, and sign up users with unique handles.

The database is shared with other tests and engineers: every test makes its own users
(random handles) and never truncates anything. ``settings`` comes from tests/conftest.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import falcon
import falcon.testing
import pytest

from feedline.db import Database
from feedline.http.app import create_app
from feedline.http.deps import Deps
from feedline.settings import Settings


@dataclass(frozen=True)
class ApiUser:
    id: int
    handle: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# Every test user signs up with this password (12..128 characters; see http/passwords.py).
PASSWORD = "correct horse battery staple"


def unique_handle(prefix: str = "t") -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


@pytest.fixture(scope="session")
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.postgres)
    db.ping()
    yield db
    db.close()


@pytest.fixture(scope="session")
def app(settings: Settings, database: Database) -> falcon.App:
    return create_app(Deps(settings=settings, db=database))


@pytest.fixture
def client(app: falcon.App) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(app)


@pytest.fixture
def signup(client: falcon.testing.TestClient) -> Callable[[], ApiUser]:
    def make() -> ApiUser:
        handle = unique_handle()
        resp = client.simulate_post("/v1/users", json={"handle": handle, "password": PASSWORD})
        assert resp.status_code == 201, resp.text
        return ApiUser(resp.json["id"], handle, resp.json["token"])

    return make


@pytest.fixture
def query(database: Database) -> Callable[..., list[tuple[Any, ...]]]:
    """Run one SQL query on the real database and return all its rows."""

    def run(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        def work(cur):
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

        return database.run(work)

    return run
