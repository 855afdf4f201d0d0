"""Typed reads from a decoded JSON record, shared by the JSON registry parsers (CT.gov, CTIS).

A registry's reader subclasses :class:`JsonReader` and overrides what its registry sends
differently (CTIS, for one, sends numbers where strings are expected and comma-separated
strings where lists are).
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import ParseError


class JsonReader:
    """Typed reads from one record; a wrong type raises ParseError naming the field.

    Every read takes a dotted path inside the record, or, with ``node``, inside that part of it;
    ``base`` is then the part's own path, so that an error names the field in the whole record.
    """

    def __init__(self, record: dict[str, Any], path: str, where: str) -> None:
        """Read ``record``.

        Args:
            record: the decoded record.
            path: the snapshot it came from, for error messages.
            where: the record's place in the payload (e.g. ``"studies[3]."``), prefixed to
                every field named in an error; empty for a payload of one record.
        """
        self.record = record
        self.path = path
        self.where = where

    def get(self, dotted: str, node: Any = None) -> Any:
        """The value at ``dotted`` (in ``node``, else the record), or None where any step is missing."""
        node = self.record if node is None else node
        for key in dotted.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    def wrong(self, dotted: str, expected: str, value: Any) -> ParseError:
        """The error for a field ``dotted`` that holds ``value`` where ``expected`` was due."""
        return ParseError(self.path, f"{self.where}{dotted} is {type(value).__name__}, expected {expected}")

    def text(self, dotted: str, node: Any = None, base: str = "") -> str | None:
        """A string, stripped; None when absent or blank.

        Raises:
            ParseError: the value is not a string.
        """
        value = self.get(dotted, node)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.wrong(f"{base}{dotted}", "a string", value)
        return value.strip() or None

    def texts(self, dotted: str, node: Any = None, base: str = "") -> list[str]:
        """A list of strings, stripped, blanks dropped; empty when absent.

        Raises:
            ParseError: the value is not a list of strings.
        """
        value = self.get(dotted, node)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.wrong(f"{base}{dotted}", "a list of strings", value)
        return [v.strip() for v in value if v.strip()]

    def objects(self, dotted: str) -> list[dict[str, Any]]:
        """A list of objects; empty when absent.

        Raises:
            ParseError: the value is not a list of objects.
        """
        value = self.get(dotted)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.wrong(dotted, "a list of objects", value)
        return value

    def each(self, dotted: str) -> list[tuple[str, dict[str, Any]]]:
        """Each object of the list at ``dotted`` with its own path (``"a.b[2]."``), the ``base``
        to read inside it with; empty when absent.

        Raises:
            ParseError: the value is not a list of objects.
        """
        return [(f"{dotted}[{i}].", item) for i, item in enumerate(self.objects(dotted))]
