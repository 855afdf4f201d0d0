"""A registry's raw payload: whether it is HTML, and JSON decoded with errors naming the input.

Kept apart from :mod:`pipeline.registries` (which dispatches to the parsers) so that the parsers
can use it without importing the package that imports them.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from pipeline.errors import ParseError

_HTML_START = re.compile(rb"^\s*(?:<!doctype\s+html|<html|<head|<body|<!--|<\?xml|<[a-z][a-z0-9]*[\s>])",
                         re.IGNORECASE)


def looks_like_html(data: bytes) -> bool:
    """Whether ``data`` is (or starts like) an HTML or XML page rather than JSON or text."""
    return bool(_HTML_START.match(data.lstrip(b"\xef\xbb\xbf")[:1024]))


def decode_json(data: bytes, *, path: str) -> Any:
    """Decode a JSON payload with orjson.

    Raises:
        ParseError: the payload is HTML ("expected JSON, got HTML"), empty, or malformed (the
            message gives line, column and character position).
    """
    if looks_like_html(data):
        raise ParseError(path, "expected JSON, got HTML")
    body = data.removeprefix(b"\xef\xbb\xbf")
    if not body.strip():
        raise ParseError(path, "expected JSON, got an empty body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseError(
            path, f"malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}"
        ) from exc
