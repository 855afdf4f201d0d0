"""Functions, classes and module constants of ``pipeline/`` that nothing in the package uses.

A quick, vulture-like check: a name defined in ``pipeline/`` counts as used when the package
refers to it anywhere else (a name, an attribute, an import, or a string that is exactly the name).
Each unused name is listed with how many files of ``tests/`` and ``devtools/`` mention it, so
that code only the tests call stands out. Dunder names and decorated validators (called by
pydantic) are listed too: judge each by reading it.

    python devtools/uncalled.py [REPO]
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

_WORD = re.compile(r"\w+")


def _references(paths: list[Path]) -> dict[str, set[Path]]:
    found: dict[str, set[Path]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Name):
                names = [node.id]
            elif isinstance(node, ast.Attribute):
                names = [node.attr]
            elif isinstance(node, ast.alias):
                names = [node.name.split(".")[-1], *([node.asname] if node.asname else [])]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _WORD.fullmatch(node.value):
                names = [node.value]
            for name in names:
                found.setdefault(name, set()).add(path)
    return found


def _definitions(paths: list[Path]) -> list[tuple[str, Path, int, list[str]]]:
    defined = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.append((node.name, path, node.lineno, [ast.unparse(d) for d in node.decorator_list]))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            defined.extend((t.id, path, node.lineno, []) for t in targets if isinstance(t, ast.Name))
    return defined


def uncalled(repo: Path) -> list[str]:
    """One line per name defined in ``pipeline/`` that the package never refers to."""
    def files(folder: str) -> list[Path]:
        return sorted((repo / folder).rglob("*.py"))

    package, tests, devtools = _references(files("pipeline")), _references(files("tests")), _references(files("devtools"))
    lines = []
    for name, path, line, decorators in _definitions(files("pipeline")):
        if re.fullmatch(r"__\w+__", name) or name in package:
            continue
        lines.append(f"{path.relative_to(repo)}:{line} {name}"
                     + (f" (decorated: {', '.join(decorators)})" if decorators else "")
                     + f"  tests: {len(tests.get(name, ()))} files, devtools: {len(devtools.get(name, ()))}")
    return lines


if __name__ == "__main__":
    print("\n".join(uncalled(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])))
