"""Where the pipeline's own files live: the package, the repository around it, and the defaults inside it.

One home for these paths, so moving a module never moves a default.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent

DEFAULT_SNAPSHOTS_DIR = REPO_DIR / "snapshots"
DEFAULT_BASELINE_DIR = REPO_DIR / "baseline"
SCHEMAS_DIR = REPO_DIR / "schemas"
DEFAULT_OUTPUT_DIR = Path("output")
"""Where ``run``, ``ingest``, ``changes`` and ``serve`` write by default: relative to the working
directory, as outputs belong to whoever runs the command (the inputs above ship with the repository)."""
