"""Check request bodies and fields before any SQL runs, so bad input is a 4xx, never a 500.

Malformed requests (wrong media type, too large, not UTF-8, not JSON) are 400/413/415;
well-formed JSON whose content breaks the contract (missing, unknown or mistyped fields,
values out of range) is 422.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import falcon

HANDLE_RE = re.compile(r"[a-z0-9_]{3,30}")
BODY_MAX_CHARS = 1000
# Positive bigint, as ASCII digits without sign, spaces, underscores or leading zeros.
ID_RE = re.compile(r"[1-9][0-9]{0,18}")
ID_MAX = 2**63 - 1

Field = Callable[[str, Any], Any]


def unprocessable(description: str) -> falcon.HTTPUnprocessableEntity:
    return falcon.HTTPUnprocessableEntity(title="Invalid field", description=description)


def handle(name: str, value: Any) -> str:
    """Accept a handle: 3..30 of lowercase ASCII letters, digits and underscores."""
    if not isinstance(value, str) or not HANDLE_RE.fullmatch(value):
        raise unprocessable(f"{name} must match ^[a-z0-9_]{{3,30}}$")
    return value


def text(name: str, value: Any) -> str:
    """Accept 1..1000 characters of text that PostgreSQL can store (no NUL, no surrogates)."""
    return bounded_text(name, value, 1, BODY_MAX_CHARS)


def bounded_text(name: str, value: Any, min_chars: int, max_chars: int) -> str:
    """Accept ``min_chars``..``max_chars`` characters of storable text (no NUL, no surrogates)."""
    if not isinstance(value, str):
        raise unprocessable(f"{name} must be a string")
    if not min_chars <= len(value) <= max_chars:
        raise unprocessable(f"{name} must be {min_chars}..{max_chars} characters")
    if "\x00" in value:
        raise unprocessable(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise unprocessable(f"{name} must be valid Unicode (no lone surrogates)") from None
    return value


def parse_id(raw: str) -> int | None:
    """Return ``raw`` as a positive bigint id, or None if it is not one."""
    if not ID_RE.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= ID_MAX else None


def check_media_type(content_type: str | None) -> None:
    """Require ``application/json`` (charset, if given, must be UTF-8) or raise 415."""
    media, params = falcon.parse_header(content_type or "")
    charset = params.get("charset", "utf-8").lower()
    if media.lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported media type",
            description="Send the body as application/json (UTF-8).",
        )


def decode_object(raw: bytes) -> dict[str, Any]:
    """Parse ``raw`` as one UTF-8 JSON object or raise 400/422."""
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise falcon.HTTPBadRequest(
            title="Malformed JSON", description="The body is not valid UTF-8 JSON."
        ) from None
    if not isinstance(doc, dict):
        raise unprocessable("The body must be a JSON object.")
    return doc


def check_fields(doc: Mapping[str, Any], fields: Mapping[str, Field]) -> dict[str, Any]:
    """Return the validated ``fields`` of ``doc``; all are required and no others allowed."""
    unknown = sorted(set(doc) - set(fields))
    if unknown:
        raise unprocessable(f"Unknown field(s): {', '.join(unknown)}")
    missing = [name for name in fields if name not in doc]
    if missing:
        raise unprocessable(f"Missing field(s): {', '.join(missing)}")
    return {name: check(name, doc[name]) for name, check in fields.items()}


def read_json(req: falcon.Request, max_bytes: int, fields: Mapping[str, Field]) -> dict[str, Any]:
    """Read, size-check, parse and validate a JSON request body."""
    check_media_type(req.content_type)
    length = req.content_length
    if length is not None and length > max_bytes:
        raise too_large(max_bytes)
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    return check_fields(decode_object(raw), fields)


def too_large(max_bytes: int) -> falcon.HTTPContentTooLarge:
    return falcon.HTTPContentTooLarge(
        title="Body too large", description=f"The body may be at most {max_bytes} bytes."
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class IdConverter(falcon.routing.BaseConverter):
    """Route converter ``{name:id}``: a positive bigint, or the route does not match (404)."""

    def convert(self, value: str) -> int | None:
        return parse_id(value)
