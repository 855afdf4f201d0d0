"""Write ``tests/fixtures/reconcile/rows-before.json``: the reconciliation rows of the embedded page
and of every test page, against the embedded snapshot store.

``tests/test_reconcile_rows_unchanged.py`` compares today's rows with them, so a change to how
records are found (an index, a store) cannot change a verdict unnoticed. Regenerate them only
when a rule is meant to change a verdict, from the code that holds that rule:

    .venv/bin/python tests/capture_rows.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pipeline import stages  # noqa: E402
from pipeline.store.snapshots import SnapshotStore  # noqa: E402

FIXTURE = HERE / "fixtures" / "reconcile" / "rows-before.json"
PAGES = (
    HERE.parent / "snapshots" / "documents" / "aldesleukin.txt",
    HERE / "fixtures" / "documents" / "aldesleukin-shuffled.txt",
    HERE / "fixtures" / "documents" / "ravoleukin-tabs.txt",
    HERE / "fixtures" / "documents" / "zelvotamab.txt",
)


def current_rows() -> dict[str, list[dict[str, object]]]:
    """Page file name -> its reconciliation rows (JSON-ready), against the embedded store."""
    store = SnapshotStore()
    records = stages.load_records(store)
    out = {}
    for page in PAGES:
        [doc] = stages.extract_documents([stages.document_source(page, store)])
        out[page.name] = [row.model_dump(mode="json") for row in stages.reconcile_documents([doc], records)]
    return out


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(current_rows(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}")
