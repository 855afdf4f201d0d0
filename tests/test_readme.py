"""README's reliability section names the tests that hold each promise: each one must exist."""

from __future__ import annotations

import re

from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
TESTS = {path.name: path.read_text(encoding="utf-8") for path in (REPO / "tests").glob("test_*.py")}


def test_every_test_the_readme_names_with_its_file_is_defined_there():
    named = set(re.findall(r"(test_\w+\.py)::(test_\w+)", README))
    assert named
    missing = [f"{file}::{name}" for file, name in sorted(named)
               if not re.search(rf"^def {name}\(", TESTS.get(file, ""), flags=re.MULTILINE)]
    assert missing == []


def test_every_test_the_readme_names_alone_is_defined_in_some_test_file():
    named = set(re.findall(r"`(test_\w+)`", README))
    missing = [name for name in sorted(named)
               if not any(re.search(rf"^def {name}\(", text, flags=re.MULTILINE) for text in TESTS.values())]
    assert missing == []
