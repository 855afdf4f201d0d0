"""Rows for the page's numbered references (claim ids ``ref:<n>``).

Does each URL point at the registry record of the trial whose sentences cite it?

* ``clinicaltrials.gov/study/<NCT>``, a CTIS or EU CTR address: the number in the URL must be
  a citing trial's (or linked to one): ``reference.points_at_trial``.
* ``clinicaltrials.gov/study/<EU CT number>``: ClinicalTrials.gov only holds NCT numbers, so no
  such record exists: ``reference.registry_url`` mismatch. The trial is still reconciled
  against CTIS through its other claims.
* clinicaltrials.eu trial pages: not a registry; unverifiable unless a ``cteu`` snapshot of
  the page exists, whose record then tells which trial it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.constants import registry_page_url
from pipeline.ids import ID_PATTERNS, registry_of, trial_id_type
from pipeline.models import Evidence, ExtractedDocument, Reference, ReconciliationRow, Verdict
from pipeline.reconcile.ongoing import cteu_slug
from pipeline.reconcile.records import LoadedRecord, RecordIndex

_CTGOV = re.compile(r"clinicaltrials\.gov/(?:study|ct2/show|show)/([A-Za-z0-9-]+)", re.IGNORECASE)
_CTIS = re.compile(r"(?:euclinicaltrials\.eu/.*[?&]EUCT=|ctis\.eu/trial/)(" + ID_PATTERNS["EU_CT"] + ")", re.IGNORECASE)
_EUCTR = re.compile(r"clinicaltrialsregister\.eu/ctr-search/(?:trial|search)/(" + ID_PATTERNS["EUDRACT"] + ")",
                    re.IGNORECASE)


def url_target(url: str) -> tuple[str, str] | None:
    """(registry the URL is an address in, trial number or slug it names), or None."""
    if m := _CTGOV.search(url):
        ident = m.group(1)
        return "ctgov", ident.upper() if ident.upper().startswith("NCT") else ident
    if m := _CTIS.search(url):
        return "ctis", m.group(1)
    if m := _EUCTR.search(url):
        return "euctr", m.group(1)
    if slug := cteu_slug(url):
        return "cteu", slug
    return None


def citing_trials(doc: ExtractedDocument, ref: Reference) -> list[str]:
    """The trials named by the sentences that cite ``ref`` (or the extractor's, told that way)."""
    ids: list[str] = []
    for claim in doc.claims:
        if ref.ref_number in claim.ref_numbers:
            ids += [t for t in claim.trial_ids if t not in ids]
    if not ids and ref.trial_id and ref.trial_id_source == "citing_sentence":
        ids.append(ref.trial_id)
    return ids


def reference_rows(doc: ExtractedDocument, index: RecordIndex) -> list[ReconciliationRow]:
    """One row per reference."""
    return [_reference_row(doc, ref, index) for ref in doc.references]


def _same_trial(url_id: str, citing: Sequence[str], index: RecordIndex) -> str | None:
    """The citing trial that is ``url_id`` itself or reaches a record of it by a confirmed link."""
    for trial in citing:
        if trial.upper() == url_id.upper():
            return trial
        if any(r.record.trial_id.upper() == url_id.upper() for r in index.reach(trial) if r.reach != "candidate"):
            return trial
    return None


def _row(ref: Reference, trial_id: str | None, registry: str | None, verdict: Verdict, rule: str, detail: str,
         registry_value: str | None = None, evidence: Evidence | None = None) -> ReconciliationRow:
    return ReconciliationRow(
        document_id=ref.document_id, claim_id=f"ref:{ref.ref_number}", trial_id=trial_id, field="url",
        stated_value=ref.url, registry_value=registry_value, registry=registry, verdict=verdict, rule=rule,
        detail=detail, evidence=evidence or Evidence(),
    )


def _record_evidence(loaded: LoadedRecord) -> Evidence:
    return Evidence(snapshot_path=loaded.entry.path, snapshot_sha256=loaded.entry.sha256,
                    provenance=loaded.entry.provenance, registry_trial_id=loaded.record.trial_id,
                    field_path=loaded.record.field_paths.get("trial_id"))


def _reference_row(doc: ExtractedDocument, ref: Reference, index: RecordIndex) -> ReconciliationRow:
    citing = citing_trials(doc, ref)
    cited_by = f"cited by sentences about {', '.join(citing)}" if citing else "cited by no sentence naming a trial"
    target = url_target(ref.url)
    first = citing[0] if citing else ref.trial_id
    if target is None:
        return _row(ref, first, None, "unverifiable", "reference.points_at_trial",
                    f"not the address of a registry record; {cited_by}")
    registry, ident = target
    if registry == "ctgov" and (kind := trial_id_type(ident)) != "NCT":
        home = registry_of(ident)
        detail = "an EU CT number under a ClinicalTrials.gov URL" if kind == "EU_CT" else (
            "a EudraCT number under a ClinicalTrials.gov URL" if kind == "EUDRACT"
            else "not an NCT number under a ClinicalTrials.gov URL")
        detail += f": ClinicalTrials.gov holds no record {ident}"
        if home == "ctis":
            detail += f"; its registry is CTIS ({registry_page_url('ctis', ident)})"
        detail += f"; {cited_by}"
        return _row(ref, first if first else ident, "ctgov", "mismatch", "reference.registry_url", detail)
    if registry == "cteu":
        return _cteu_row(ref, ident, citing, cited_by, index)
    records = [r for r in index.records if r.record.registry == registry and r.record.trial_id.upper() == ident.upper()]
    evidence = _record_evidence(records[0]) if records else None
    held = "" if records else f"; no {registry} snapshot of {ident}"
    if not citing:
        return _row(ref, ident, registry, "unverifiable", "reference.points_at_trial",
                    f"{cited_by}{held}", ident, evidence)
    same = _same_trial(ident, citing, index)
    if same is not None:
        how = "" if same.upper() == ident.upper() else f" (linked to {same})"
        return _row(ref, same, registry, "match", "reference.points_at_trial",
                    f"points at {ident}{how}; {cited_by}{held}", ident, evidence)
    return _row(ref, first, registry, "mismatch", "reference.points_at_trial",
                f"points at {ident}, not at a citing trial; {cited_by}{held}", ident, evidence)


def _cteu_row(ref: Reference, slug: str, citing: Sequence[str], cited_by: str, index: RecordIndex) -> ReconciliationRow:
    first = citing[0] if citing else ref.trial_id
    pages = [
        r for r in index.records
        if r.record.registry == "cteu" and (
            cteu_slug(r.entry.url) == slug or r.record.trial_id == slug
            or any(cteu_slug(i.other_id) == slug for i in r.record.identifiers))
    ]
    if not pages:
        return _row(ref, first, "cteu", "unverifiable", "reference.points_at_trial",
                    f"a clinicaltrials.eu page, not a registry record, and no snapshot of it; {cited_by}")
    page = min(pages, key=lambda r: r.entry.path)
    # The page's own trial number; only a page without one is identified by the numbers it names.
    ids = ([page.record.trial_id] if registry_of(page.record.trial_id) else
           [i.other_id for i in page.record.identifiers if registry_of(i.other_id)])
    evidence = _record_evidence(page)
    value = ", ".join(ids)
    for trial in citing:
        if any(_same_trial(i, [trial], index) for i in ids):
            return _row(ref, trial, "cteu", "match", "reference.points_at_trial",
                        f"the page is about {trial}; {cited_by}", value, evidence)
    if not citing or not ids:
        why = "the clinicaltrials.eu page names no trial number" if not ids else cited_by
        return _row(ref, first, "cteu", "unverifiable", "reference.points_at_trial", why, value or None, evidence)
    return _row(ref, first, "cteu", "mismatch", "reference.points_at_trial",
                f"the page is about {value}, not a citing trial; {cited_by}", value, evidence)
