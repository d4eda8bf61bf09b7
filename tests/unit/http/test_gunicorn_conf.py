"""The access logger writes gunicorn's own lines, from only the atoms the format names."""

from __future__ import annotations

import datetime
import io
import logging

from gunicorn.config import Config
from gunicorn.glogging import Logger

from feedline.http import gunicorn_conf


class Resp:
    status = "201 Created"
    sent = 123
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


class Req:
    headers = [("HOST", "127.0.0.1:8000"), ("AUTHORIZATION", "Bearer secret-token")]


ENVIRON = {
    "REQUEST_METHOD": "POST",
    "RAW_URI": '/v1/shards?q="x"',
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "PATH_INFO": "/v1/shards",
    "HTTP_AUTHORIZATION": "Bearer secret-token",
}


def line(logger_class: type, fmt: str) -> str:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", fmt)
    logger = logger_class(cfg)
    out = io.StringIO()
    logger.access_log.handlers = [logging.StreamHandler(out)]
    logger.access(Resp, Req, ENVIRON, datetime.timedelta(seconds=1, microseconds=2500))
    return out.getvalue()


def test_the_product_format_logs_what_gunicorn_would():
    fmt = gunicorn_conf.access_log_format
    ours = line(gunicorn_conf.AccessLogger, fmt)
    assert ours == line(Logger, fmt)
    assert ours == '127.0.0.1 "POST /v1/shards?q=\\"x\\" HTTP/1.1" 201 123 1002ms\n'
    assert "secret-token" not in ours


def test_a_format_naming_other_atoms_gets_gunicorns_full_set():
    fmt = '%(h)s "%(r)s" %(s)s %(a)s %({cache-control}o)s %(D)s'
    assert line(gunicorn_conf.AccessLogger, fmt) == line(Logger, fmt)
    assert "no-store" in line(gunicorn_conf.AccessLogger, fmt)
