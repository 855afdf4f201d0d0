CREATE TABLE IF NOT EXISTS "documents" (
  "document_id" VARCHAR NOT NULL,
  "source_url" VARCHAR,
  "title" VARCHAR,
  "sha256" VARCHAR,
  "extracted_at" TIMESTAMPTZ,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "document_trials" (
  "document_id" VARCHAR NOT NULL,
  "row_number" INTEGER,
  "trial_id" VARCHAR,
  "phase" VARCHAR,
  "condition" VARCHAR,
  "status" VARCHAR,
  "enrollment" INTEGER,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "document_claims" (
  "document_id" VARCHAR NOT NULL,
  "claim_id" VARCHAR,
  "section" VARCHAR,
  "sentence" VARCHAR,
  "trial_ids" VARCHAR[],
  "ref_numbers" INTEGER[],
  "field" VARCHAR,
  "fields" VARCHAR[],
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "document_ongoing" (
  "document_id" VARCHAR NOT NULL,
  "position" INTEGER,
  "title" VARCHAR,
  "status" VARCHAR,
  "countries" VARCHAR[],
  "country_codes" VARCHAR[],
  "more_countries" INTEGER,
  "trial_id" VARCHAR,
  "trial_id_source" VARCHAR,
  "resolve_score" DOUBLE,
  "unresolved_reason" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "document_references" (
  "document_id" VARCHAR NOT NULL,
  "ref_number" INTEGER,
  "url" VARCHAR,
  "trial_id" VARCHAR,
  "trial_id_source" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "document_glossary" (
  "document_id" VARCHAR NOT NULL,
  "term" VARCHAR,
  "definition" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "page_trials" (
  "document_id" VARCHAR NOT NULL,
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR,
  "title" VARCHAR,
  "title_source" VARCHAR,
  "mentioned_in" VARCHAR[],
  "ctgov_id" VARCHAR,
  "ctis_id" VARCHAR,
  "euctr_id" VARCHAR,
  "record_registries" VARCHAR[],
  "record_status" VARCHAR,
  "missing_reason" VARCHAR,
  "missing_detail" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "page_trial_ids" (
  "document_id" VARCHAR NOT NULL,
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR,
  "registry_id" VARCHAR,
  "link" VARCHAR,
  "link_source" VARCHAR,
  "link_evidence" VARCHAR,
  "has_record" BOOLEAN,
  "used" BOOLEAN,
  "snapshot_path" VARCHAR,
  "provenance" VARCHAR,
  "missing_reason" VARCHAR,
  "missing_detail" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "trials" (
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR NOT NULL,
  "title" VARCHAR,
  "official_title" VARCHAR,
  "sponsor" VARCHAR,
  "phases" VARCHAR[],
  "phase_raw" VARCHAR,
  "status" VARCHAR,
  "status_normalized" VARCHAR,
  "enrollment" INTEGER,
  "enrollment_type" VARCHAR,
  "enrollment_scope" VARCHAR,
  "start_date" VARCHAR,
  "start_date_precision" VARCHAR,
  "completion_date" VARCHAR,
  "completion_date_precision" VARCHAR,
  "last_updated" VARCHAR,
  "study_type" VARCHAR,
  "allocation" VARCHAR,
  "masking" VARCHAR,
  "age_groups" VARCHAR[],
  "snapshot_path" VARCHAR,
  "snapshot_sha256" VARCHAR,
  "provenance" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "trial_conditions" (
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR NOT NULL,
  "condition" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "trial_interventions" (
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR NOT NULL,
  "type" VARCHAR,
  "name" VARCHAR,
  "other_names" VARCHAR[],
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "trial_outcomes" (
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR NOT NULL,
  "kind" VARCHAR,
  "measure" VARCHAR,
  "time_frame" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "trial_countries" (
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR NOT NULL,
  "country" VARCHAR,
  "country_name" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "trial_enrollments" (
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR NOT NULL,
  "scope" VARCHAR,
  "country" VARCHAR,
  "country_name" VARCHAR,
  "enrollment" INTEGER,
  "enrollment_type" VARCHAR,
  "headline" BOOLEAN,
  "field_path" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "trial_identifiers" (
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR NOT NULL,
  "other_id" VARCHAR,
  "id_type" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "snapshots" (
  "path" VARCHAR NOT NULL,
  "registry" VARCHAR,
  "trial_id" VARCHAR,
  "url" VARCHAR,
  "fetched_at" TIMESTAMPTZ,
  "sha256" VARCHAR,
  "http_status" INTEGER,
  "etag" VARCHAR,
  "last_modified" VARCHAR,
  "provenance" VARCHAR,
  "source_urls" VARCHAR[],
  "stale" BOOLEAN,
  "file_size" BIGINT,
  "file_mtime_ns" BIGINT,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "trial_links" (
  "trial_id" VARCHAR NOT NULL,
  "other_id" VARCHAR,
  "other_registry" VARCHAR,
  "strength" VARCHAR,
  "evidence" VARCHAR,
  "note" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "reconciliation" (
  "document_id" VARCHAR NOT NULL,
  "claim_id" VARCHAR,
  "comparison" VARCHAR,
  "statement" VARCHAR,
  "trial_id" VARCHAR,
  "field" VARCHAR,
  "stated_value" VARCHAR,
  "registry_value" VARCHAR,
  "registry" VARCHAR,
  "compared_registry" VARCHAR,
  "compared_value" VARCHAR,
  "verdict" VARCHAR,
  "rule" VARCHAR,
  "detail" VARCHAR,
  "score" DOUBLE,
  "evidence_snapshot" VARCHAR,
  "evidence_sha256" VARCHAR,
  "evidence_provenance" VARCHAR,
  "evidence_record" VARCHAR,
  "evidence_field_path" VARCHAR,
  "evidence_link" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "load_errors" (
  "snapshot" VARCHAR,
  "registry" VARCHAR,
  "trial_id" VARCHAR,
  "error" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "pipeline_runs" (
  "run_id" VARCHAR NOT NULL,
  "started_at" TIMESTAMPTZ,
  "finished_at" TIMESTAMPTZ,
  "status" VARCHAR,
  "documents" INTEGER,
  "records" INTEGER,
  "load_errors" INTEGER,
  "reconciliation_rows" INTEGER,
  "mismatches" INTEGER,
  "parsed" INTEGER,
  "reused" INTEGER,
  "work_done" BOOLEAN,
  "fingerprint" VARCHAR,
  "snapshots_fingerprint" VARCHAR
);

CREATE TABLE IF NOT EXISTS "run_registry_counts" (
  "registry" VARCHAR,
  "new" INTEGER,
  "changed" INTEGER,
  "unchanged" INTEGER,
  "failed" INTEGER,
  "removed" INTEGER,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "trial_history" (
  "trial_id" VARCHAR NOT NULL,
  "registry" VARCHAR NOT NULL,
  "field" VARCHAR NOT NULL,
  "value" VARCHAR,
  "valid_from" TIMESTAMPTZ NOT NULL,
  "valid_to" TIMESTAMPTZ,
  "snapshot_sha256" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "reconciliation_history" (
  "document_id" VARCHAR NOT NULL,
  "claim_id" VARCHAR,
  "trial_id" VARCHAR,
  "field" VARCHAR,
  "registry" VARCHAR,
  "rule" VARCHAR,
  "verdict" VARCHAR,
  "stated_value" VARCHAR,
  "registry_value" VARCHAR,
  "compared_value" VARCHAR,
  "valid_from" TIMESTAMPTZ NOT NULL,
  "valid_to" TIMESTAMPTZ,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "record_cache" (
  "snapshot_path" VARCHAR NOT NULL,
  "sha256" VARCHAR NOT NULL,
  "records_json" VARCHAR,
  "parser_version" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "record_keys" (
  "snapshot_path" VARCHAR NOT NULL,
  "sha256" VARCHAR NOT NULL,
  "keys_json" VARCHAR,
  "key_version" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS "document_basis" (
  "document_id" VARCHAR NOT NULL,
  "document_sha256" VARCHAR,
  "basis" VARCHAR,
  "trial_id" VARCHAR,
  "snapshot_path" VARCHAR,
  "snapshot_sha256" VARCHAR,
  "run_id" VARCHAR NOT NULL
);

CREATE OR REPLACE VIEW v_reconciliation_summary AS
SELECT document_id, trial_id,
       count(*) FILTER (WHERE verdict = 'match')        AS match,
       count(*) FILTER (WHERE verdict = 'partial')      AS partial,
       count(*) FILTER (WHERE verdict = 'mismatch')     AS mismatch,
       count(*) FILTER (WHERE verdict = 'unverifiable') AS unverifiable,
       count(*) AS total
FROM reconciliation
GROUP BY document_id, trial_id
ORDER BY document_id, trial_id;

CREATE OR REPLACE VIEW v_trial_records AS
SELECT i.document_id, i.trial_id, p.title AS trial_title, i.registry, i.registry_id, i.link, i.link_evidence,
       t.title AS record_title, t.status, t.status_normalized, t.phases, t.enrollment, t.enrollment_type,
       t.enrollment_scope, t.start_date, t.completion_date, t.provenance, t.snapshot_path
FROM page_trial_ids i
JOIN page_trials p USING (document_id, trial_id)
JOIN trials t ON t.registry = i.registry AND t.trial_id = i.registry_id
WHERE i.used
ORDER BY i.document_id, i.trial_id, i.registry;

CREATE OR REPLACE VIEW v_trial_enrollments AS
SELECT i.document_id, i.trial_id, i.registry, i.registry_id, i.link, e.scope, e.country, e.country_name,
       e.enrollment, e.enrollment_type, e.headline, e.field_path
FROM page_trial_ids i
LEFT JOIN trial_enrollments e ON e.registry = i.registry AND e.trial_id = i.registry_id
WHERE i.used
ORDER BY i.document_id, i.trial_id, i.registry, e.headline DESC NULLS LAST, e.scope, e.country;

CREATE OR REPLACE VIEW v_findings AS
SELECT document_id, trial_id, field, verdict, statement, stated_value, registry, registry_value, detail,
       evidence_record, evidence_snapshot, evidence_provenance, evidence_field_path, evidence_link,
       claim_id, rule
FROM reconciliation
WHERE comparison = 'page_vs_registry' AND verdict IN ('mismatch', 'partial') AND registry_value IS NOT NULL
ORDER BY document_id, verdict, trial_id, claim_id, registry;
