"""One home per fact: no long string (a description, a URL, a label, a message) is written out
in two modules of the package."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIN_CHARS = 30


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string expressions that stand alone: docstrings, attribute docstrings."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def _long_strings(path: Path) -> set[str]:
    """Every string literal and f-string text of at least MIN_CHARS characters (whitespace folded),
    docstrings aside; an f-string's fields count as {}."""
    tree = ast.parse(path.read_text("utf-8"))
    docs = _docstrings(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        else:
            continue
        text = " ".join(text.split())
        if len(text) >= MIN_CHARS:
            found.add(text)
    return found


def test_no_long_string_is_written_in_two_modules():
    where: dict[str, set[str]] = defaultdict(set)
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        for text in _long_strings(path):
            where[text].add(str(path.relative_to(REPO)))
    twice = {text: sorted(paths) for text, paths in where.items() if len(paths) > 1}
    assert twice == {}


def test_the_check_finds_a_string_written_twice(tmp_path):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text('"""A docstring that is long enough to count."""\n'
                                     'X = f"the page states no {kind} figure at all"\n')
    assert _long_strings(tmp_path / "a.py") == _long_strings(tmp_path / "b.py") == {
        "the page states no {} figure at all"}
