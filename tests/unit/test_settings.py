"""FEEDLINE_ENV=production refuses development secrets, in one line naming the setting."""

from __future__ import annotations

import pytest

from feedline import settings as settings_mod
from feedline.errors import ConfigError

STRONG = "x" * 40


def production(monkeypatch, **env: str) -> settings_mod.Settings:
    monkeypatch.setenv("FEEDLINE_ENV", "production")
    monkeypatch.setenv("FEEDLINE_CURSOR_SECRET", STRONG)
    monkeypatch.setenv("FEEDLINE_PG_PASSWORD", "a-real-password")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_mod.load()


def test_development_accepts_the_defaults(monkeypatch):
    monkeypatch.delenv("FEEDLINE_ENV", raising=False)
    settings_mod.load().require_production_ready()


def test_production_with_real_secrets_starts(monkeypatch):
    production(monkeypatch).require_production_ready()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FEEDLINE_CURSOR_SECRET", settings_mod.DEV_CURSOR_SECRET),
        ("FEEDLINE_CURSOR_SECRET", ""),
        ("FEEDLINE_CURSOR_SECRET", "short"),
        ("FEEDLINE_CURSOR_SECRET_PREVIOUS", "short"),
        ("FEEDLINE_PG_PASSWORD", settings_mod.DEV_PG_PASSWORD),
        ("FEEDLINE_PG_PASSWORD", ""),
    ],
)
def test_production_refuses_weak_or_default_secrets(monkeypatch, name, value):
    settings = production(monkeypatch, **{name: value})
    with pytest.raises(ConfigError) as refused:
        settings.require_production_ready()
    message = str(refused.value)
    assert name in message and "\n" not in message
    assert value not in message or value == ""


def test_unknown_environment_is_refused(monkeypatch):
    monkeypatch.setenv("FEEDLINE_ENV", "prod")
    with pytest.raises(ConfigError, match="FEEDLINE_ENV"):
        settings_mod.load()


def test_pipeline_refuses_to_start_in_one_line(monkeypatch, capsys):
    from feedline.pipeline.__main__ import main

    production(monkeypatch, FEEDLINE_CURSOR_SECRET="short")
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("feedline pipeline: FEEDLINE_CURSOR_SECRET") and "\n" not in err


def test_web_refuses_to_start_in_one_line(monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("FEEDLINE_ENV", "production")
    monkeypatch.setenv("FEEDLINE_CURSOR_SECRET", STRONG)
    monkeypatch.setenv("FEEDLINE_PG_PASSWORD", settings_mod.DEV_PG_PASSWORD)
    monkeypatch.setenv("FEEDLINE_WEB_PORT", "1")  # never reached: config refuses first
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:feedline.http.gunicorn_conf",
            "feedline.http.app:get_app()"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines == [lines[0]] and lines[0].startswith("feedline web: FEEDLINE_PG_PASSWORD")


@pytest.mark.parametrize(
    ("uses", "name"),
    [
        (("owner",), "FEEDLINE_PG_OWNER_PASSWORD"),
        (("replication",), "FEEDLINE_PG_REPLICATION_PASSWORD"),
        (("owner", "app", "replication"), "FEEDLINE_PG_OWNER_PASSWORD"),
    ],
)
def test_each_process_is_held_to_the_passwords_it_uses(monkeypatch, uses, name):
    settings = production(monkeypatch)  # app secrets set, owner/replication left default
    settings.require_production_ready()  # the web and the pipeline need neither
    with pytest.raises(ConfigError, match=name):
        settings.require_production_ready(uses=uses)


def test_migrate_refuses_the_default_owner_password(monkeypatch, capsys):
    from feedline.cli import main

    production(monkeypatch)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert "FEEDLINE_PG_OWNER_PASSWORD" in err and "\n" not in err


def test_production_keeps_the_ops_listener_on_loopback(monkeypatch):
    with pytest.raises(ConfigError, match="FEEDLINE_OPS_HOST"):
        production(monkeypatch, FEEDLINE_OPS_HOST="0.0.0.0").require_production_ready()  # noqa: S104
    production(monkeypatch, FEEDLINE_OPS_HOST="::1").require_production_ready()
    allowed = production(monkeypatch, FEEDLINE_OPS_HOST="10.1.2.3", FEEDLINE_OPS_ALLOW_REMOTE="1")
    allowed.require_production_ready()


def test_the_ops_port_must_differ_from_the_api_port(monkeypatch):
    monkeypatch.setenv("FEEDLINE_OPS_PORT", "8000")
    monkeypatch.setenv("FEEDLINE_WEB_PORT", "8000")
    with pytest.raises(ConfigError, match="FEEDLINE_OPS_PORT"):
        settings_mod.load()
