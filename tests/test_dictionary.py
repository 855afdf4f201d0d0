from pipeline.outputs.dictionary import SCHEMAS_DIR, data_dictionary, render_schemas, stale_files
from pipeline.load.tables import ALL_TABLES


def test_committed_schemas_are_up_to_date():
    assert stale_files(SCHEMAS_DIR) == [], "schemas/ is stale: run `python -m pipeline schemas`"


def test_data_dictionary_documents_every_column_of_every_table():
    text = data_dictionary()
    for table in ALL_TABLES:
        assert f"### {table.name}\n" in text
        for column in table.columns:
            assert f"| `{column.name}` | {column.type} |" in text


def test_every_column_has_a_description():
    assert [(t.name, c.name) for t in ALL_TABLES for c in t.columns if not c.description.strip()] == []


def test_json_schemas_are_generated_for_the_public_models():
    names = set(render_schemas())
    assert {"TrialRecord.schema.json", "ExtractedDocument.schema.json", "ReconciliationRow.schema.json",
            "SnapshotEntry.schema.json", "data-dictionary.md", "ddl.sql"} <= names
