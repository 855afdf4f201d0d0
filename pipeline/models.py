"""The domain records that flow through the pipeline, stage by stage.

Document side (what a page *states*): :class:`SourceDocument`, :class:`StatedTrial`,
:class:`Claim`, :class:`OngoingTrial`, :class:`Reference`, :class:`GlossaryEntry`, gathered in
:class:`ExtractedDocument`.

Registry side (what a registry *records*): :class:`TrialRecord` and its parts, parsed from a
snapshot described by a :class:`SnapshotEntry`.

The JSON Schemas in ``schemas/`` are generated from these models, and a field's description is
also that of every output column holding it: :mod:`pipeline.load.tables` derives those columns'
types and descriptions from the fields (``python -m pipeline schemas`` regenerates the DDL and the
data dictionary from them). Write a field's description here, once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

R = TypeVar("R", bound=BaseModel)


class Record(BaseModel):
    """Base of every record: immutable, and strict about unknown fields in our own data."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SharedParts:
    """Equal parts of many frozen records held once: a site's run keeps hundreds of thousands of
    comparisons (and tens of thousands of records) alive at once, and most of their memory was
    parts that repeat.

    Pydantic gives every instance its own ``__pydantic_fields_set__`` (the names of the fields
    given explicitly): 600 to 700 bytes for a comparison and as much for its evidence, half of a
    comparison's memory, though a few distinct sets cover them all. Sharing one set among the
    records that set the same fields changes nothing they answer: they are frozen, and a copy
    (``model_copy``) copies the set before adding to it. Nested records equal by value (two
    comparisons read from the same place) and equal strings (a trial's number, a field path) are
    kept once too: neither ever changes.
    """

    def __init__(self) -> None:
        self._fields_sets: dict[frozenset[str], set[str]] = {}
        self._records: dict[tuple[BaseModel, frozenset[str]], BaseModel] = {}
        self._strings: dict[str, str] = {}

    def record(self, record: R) -> R:
        """``record``, with its fields set, strings and nested records shared with those seen before (in place)."""
        fields_set = record.__pydantic_fields_set__
        shared = self._fields_sets.setdefault(frozenset(fields_set), fields_set)
        if shared is not fields_set:
            object.__setattr__(record, "__pydantic_fields_set__", shared)
        values: dict[str, Any] = record.__dict__
        # Writing the instance dict bypasses the frozen check: each value put there is equal to the one it replaces.
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = self._strings.setdefault(value, value)
            elif isinstance(value, Record):
                values[name] = self._nested(value)
            elif isinstance(value, list) and value and isinstance(value[0], Record):
                values[name] = [self._nested(item) for item in value]
        return record

    def _nested(self, record: BaseModel) -> BaseModel:
        # Keyed by the fields set too: equal records that set different fields would dump differently.
        try:
            key = (record, frozenset(record.__pydantic_fields_set__))
            seen = self._records.get(key)
        except TypeError:  # a record holding a list has no hash: shared in its parts only
            return self.record(record)
        return seen if seen is not None else self._records.setdefault(key, self.record(record))


# ---------------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------------

Registry = Literal["ctgov", "ctis", "euctr", "cteu"]
"""ctgov = ClinicalTrials.gov API v2, ctis = EU CTIS public API, euctr = EU Clinical Trials
Register, cteu = clinicaltrials.eu consumer pages."""

Provenance = Literal["captured", "captured text", "reconstructed"]
"""captured: bytes written by the registry itself; captured text: a text capture of a web page;
reconstructed: built by us in the registry's native format from public facts (never captured)."""

ClaimField = Literal[
    "phase", "condition", "intervention", "primary_endpoint", "design", "population", "status",
    "enrollment", "countries",
]


class Phase(StrEnum):
    """Trial phase on ClinicalTrials.gov's vocabulary (the finest of the registries')."""

    EARLY_PHASE1 = "EARLY_PHASE1"
    PHASE1 = "PHASE1"
    PHASE2 = "PHASE2"
    PHASE3 = "PHASE3"
    PHASE4 = "PHASE4"
    NA = "NA"


class TrialStatus(StrEnum):
    """Overall recruitment status on one vocabulary across registries.

    The mapping from each registry's labels and codes lives in :mod:`pipeline.registries.vocab`
    (``STATUS_MAP``) and is printed in the data dictionary.
    """

    NOT_YET_RECRUITING = "NOT_YET_RECRUITING"  # authorised or approved, not started
    RECRUITING = "RECRUITING"
    ENROLLING_BY_INVITATION = "ENROLLING_BY_INVITATION"
    ACTIVE_NOT_RECRUITING = "ACTIVE_NOT_RECRUITING"  # ongoing, recruitment ended
    ONGOING = "ONGOING"  # ongoing, recruitment state not told (EU CTR "Ongoing", CTIS "Authorised")
    SUSPENDED = "SUSPENDED"  # temporarily halted
    TERMINATED = "TERMINATED"  # ended early
    COMPLETED = "COMPLETED"  # ended as planned
    WITHDRAWN = "WITHDRAWN"  # withdrawn, revoked, not authorised: never ran
    UNKNOWN = "UNKNOWN"


EnrollmentType = Literal["actual", "estimated"]
EnrollmentScope = Literal["whole_trial", "eea", "member_state", "rest_of_world"]
DatePrecision = Literal["year", "month", "day"]


# ---------------------------------------------------------------------------------------------
# Document side
# ---------------------------------------------------------------------------------------------


class SourceDocument(Record):
    """One page about a drug's trials, as captured."""

    document_id: str = Field(description="Stable id of the document, e.g. 'aldesleukin'.")
    source_url: str = Field(description="Where the page lives (file:// for a local file).")
    title: str = Field(description="The page's heading, usually the drug's name.")
    sha256: str = Field(description="sha256 of the document's bytes.")
    extracted_at: datetime = Field(description="When the facts were extracted (UTC).")


class StatedTrial(Record):
    """One row of the page's summary table, every cell as stated."""

    document_id: str
    row_number: int = Field(description="1-based position of the row in the table.")
    trial_id: str = Field(description="NCT########, YYYY-NNNNNN-NN-NN (EU CT) or EudraCT number.")
    phase: str = Field(description="Phase cell as stated, e.g. 'Phase 1/2'.")
    condition: str = Field(description="Condition cell as stated.")
    status: str = Field(description="Status cell as stated, e.g. 'Authorised'.")
    enrollment: int | None = Field(description="Enrollment cell as an integer.")


class Claim(Record):
    """One narrative sentence that names a trial or cites a reference."""

    document_id: str
    claim_id: str = Field(description="Stable id within the document ('c001', ...).")
    section: str = Field(description="Heading of the section the sentence stands in.")
    sentence: str = Field(description="The sentence, citation markers included.")
    trial_ids: list[str] = Field(description="Trial ids the sentence names, in order.")
    ref_numbers: list[int] = Field(description="Reference numbers the sentence cites, in order.")
    field: ClaimField | None = Field(
        default=None, description="Main field the sentence speaks about, where told."
    )
    fields: list[ClaimField] = Field(
        default_factory=list, description="Every field the sentence speaks about (field is the first)."
    )


class OngoingTrial(Record):
    """One entry of the page's 'ongoing trials' list."""

    document_id: str
    position: int = Field(description="1-based position in the list.")
    title: str = Field(description="Title as shown.")
    status: str = Field(description="Status as shown.")
    countries: list[str] = Field(description="Countries shown, as written on the page.")
    more_countries: int = Field(default=0, description="The '+N' count of countries not shown.")
    trial_id: str | None = Field(
        default=None, description="The trial the entry is about, where the page itself says so."
    )


class Reference(Record):
    """One numbered reference URL."""

    document_id: str
    ref_number: int = Field(description="Reference number.")
    url: str = Field(description="Reference URL.")
    trial_id: str | None = Field(
        default=None,
        description="The trial the reference points at, told by its URL or by the sentences citing it.",
    )
    trial_id_source: Literal["url", "citing_sentence"] | None = Field(
        default=None, description="'url' or 'citing_sentence': how trial_id was told."
    )


class GlossaryEntry(Record):
    document_id: str
    term: str = Field(description="Term.")
    definition: str = Field(description="Definition as stated.")


class ExtractedDocument(Record):
    """Every stated fact of one document."""

    document: SourceDocument
    trials: list[StatedTrial]
    claims: list[Claim]
    ongoing: list[OngoingTrial]
    references: list[Reference]
    glossary: list[GlossaryEntry]


# ---------------------------------------------------------------------------------------------
# Snapshots
# ---------------------------------------------------------------------------------------------


class SnapshotEntry(Record):
    """One manifest line: a stored response (or reconstruction) and where it came from."""

    path: str = Field(description="Path of the file relative to the snapshots folder.")
    registry: Registry | Literal["document"] = Field(description="ctgov, ctis, euctr, cteu or document.")
    trial_id: str | None = Field(default=None, description="Trial the snapshot is about, if any.")
    url: str = Field(description="URL the bytes were (or would be) fetched from.")
    fetched_at: datetime | None = Field(
        default=None, description="When fetched (captured) or built (reconstructed), UTC."
    )
    sha256: str = Field(description="sha256 of the file.")
    http_status: int | None = Field(default=None, description="HTTP status of the response, when fetched.")
    etag: str | None = Field(default=None, description="ETag header, where given.")
    last_modified: str | None = Field(default=None, description="Last-Modified header, where given.")
    content_type: str | None = None
    provenance: Provenance = Field(description="captured, captured text or reconstructed.")
    source_urls: list[str] = Field(
        default_factory=list, description="Public pages a reconstruction was built from."
    )
    stale: bool = Field(default=False, description="The last refresh failed; this is older data.")


# ---------------------------------------------------------------------------------------------
# Registry side
# ---------------------------------------------------------------------------------------------


class PartialDate(Record):
    """A date as precise as the registry gives it: '2023', '2023-03' or '2023-03-30'."""

    value: str
    precision: DatePrecision = Field(description="year, month or day.")
    raw: str | None = Field(default=None, description="The registry's own text, when it differs.")


class Intervention(Record):
    type: str | None = Field(default=None, description="DRUG, BIOLOGICAL, ... where given.")
    name: str = Field(description="Intervention name.")
    other_names: list[str] = Field(default_factory=list, description="Other names given by the registry.")
    description: str | None = None


class Arm(Record):
    label: str | None = Field(default=None, description="The arm's label; None where the record gives only its description.")
    type: str | None = None
    description: str | None = None
    intervention_names: list[str] = Field(default_factory=list)


class Outcome(Record):
    kind: Literal["primary", "secondary"] = Field(description="primary or secondary.")
    measure: str = Field(description="Outcome measure.")
    time_frame: str | None = Field(default=None, description="Time frame, where given.")
    description: str | None = None


class EnrollmentFigure(Record):
    """One enrollment figure a record gives, at the scope it counts (the trial, the EEA, one
    member state, the rest of the world)."""

    scope: EnrollmentScope = Field(description="whole_trial, eea, member_state or rest_of_world (outside the EEA).")
    country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2 code of the member state, for scope member_state.")
    figure: int = Field(description="The figure.")
    enrollment_type: EnrollmentType | None = Field(default=None, description="actual or estimated (planned).")
    field_path: str | None = Field(default=None, description="Where the figure is in the native record.")


class Identifier(Record):
    other_id: str = Field(description="The other identifier.")
    id_type: str = Field(
        description="NCT, EU_CT, EUDRACT, SPONSOR_PROTOCOL, or the registry's own type name."
    )
    source: str | None = Field(default=None, description="Where the registry says it comes from.")


class Design(Record):
    study_type: str | None = Field(default=None, description="INTERVENTIONAL, OBSERVATIONAL, ...")
    allocation: str | None = Field(default=None, description="RANDOMIZED, NON_RANDOMIZED, NA.")
    masking: str | None = Field(default=None, description="NONE (open label), SINGLE, DOUBLE, ...")
    intervention_model: str | None = None
    primary_purpose: str | None = None


class TrialRecord(Record):
    """What one registry records about one trial, normalized, with the raw values beside."""

    trial_id: str = Field(description="The registry's id of the record (NCT, EU CT or EudraCT number).")
    registry: Registry = Field(description="ctgov, ctis, euctr or cteu.")
    title: str | None = Field(default=None, description="Brief or public title.")
    official_title: str | None = Field(default=None, description="Official or scientific title.")
    acronym: str | None = None
    sponsor: str | None = Field(default=None, description="Lead sponsor.")
    phases: list[Phase] = Field(
        default_factory=list, description="Phases on CT.gov's vocabulary (PHASE1, PHASE2, ..., NA).")
    phase_raw: str | None = Field(default=None, description="The registry's phase value(s), as given.")
    status: TrialStatus | None = Field(
        default=None, description="Status on one vocabulary across registries (see the status mapping).")
    status_raw: str | None = Field(default=None, description="The registry's status label or code, as given.")
    enrollment: int | None = Field(default=None, description="Enrollment figure.")
    enrollment_type: EnrollmentType | None = Field(default=None, description="actual or estimated.")
    enrollment_scope: EnrollmentScope | None = Field(default=None, description="whole_trial, eea or member_state.")
    enrollment_figures: list[EnrollmentFigure] = Field(
        default_factory=list,
        description="Every figure the record gives at a scope other than the headline enrollment's "
        "(per member state, EEA, rest of world, whole trial).",
    )
    start_date: PartialDate | None = Field(
        default=None, description="Start date, as precise as given (YYYY, YYYY-MM or YYYY-MM-DD).")
    completion_date: PartialDate | None = Field(default=None, description="Completion date, as precise as given.")
    last_updated: PartialDate | None = Field(
        default=None, description="Last update of the record, as precise as given.")
    conditions: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    interventions: list[Intervention] = Field(default_factory=list)
    arms: list[Arm] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list, description="ISO 3166-1 alpha-2 codes.")
    identifiers: list[Identifier] = Field(default_factory=list)
    design: Design = Field(default_factory=Design)
    age_groups: list[str] = Field(
        default_factory=list, description="CHILD, ADULT, OLDER_ADULT (CT.gov vocabulary)."
    )
    brief_summary: str | None = None
    field_paths: dict[str, str] = Field(
        default_factory=dict,
        description="For each of our fields, the path of the value in the native record.",
    )


class TrialLink(Record):
    """Two registry numbers of one trial, and why we believe they are the same trial."""

    trial_id: str = Field(description="The number the document uses (NCT or EU CT).")
    other_id: str = Field(description="The other registry's number for the same trial.")
    other_registry: Registry = Field(description="Where other_id's record lives.")
    strength: Literal["confirmed", "candidate"] = Field(
        description="confirmed: a source states the link; candidate: plausible, not stated anywhere."
    )
    evidence: str = Field(description="Source URL, or the snapshot field path, that gives the link.")
    note: str | None = Field(default=None, description="Remarks.")


MissingReason = Literal[
    "no_registry_entry_known", "press_only", "unconfirmed_mirror_only", "not_fetched", "fetch_failed",
]
"""Why a trial of the page has no registry record. The first three are kept with the
snapshots (``snapshots/missing_records.json``), from what the searches for the record found:
no registry entry or mirror showing the number; only press or patient sites; only a
registry-derived page that does not show the number. ``not_fetched`` (no snapshot in the store
and no known reason) and ``fetch_failed`` (a snapshot exists but could not be used) are told by
the run itself."""


class MissingRecord(Record):
    """Why a trial has no record in a registry, from what the searches for it found."""

    trial_id: str = Field(description="The number the page uses.")
    registry: Registry = Field(description="The registry whose record for the number is missing.")
    reason: MissingReason
    detail: str = Field(min_length=1, description="What was searched and found, in words.")
    facts_file: str | None = Field(default=None, description="The facts file (relative to ../shared) it rests on.")


# ---------------------------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------------------------

Verdict = Literal["match", "partial", "mismatch", "unverifiable"]

Comparison = Literal["page_vs_registry", "page_vs_page", "registry_vs_registry"]
"""What a reconciliation row compares: a stated fact with a registry record, the page with
itself (e.g. its table with its narrative), or one registry's record with another's."""


class Evidence(Record):
    """Where a registry value was read: enough to open the snapshot and find it again."""

    snapshot_path: str | None = Field(default=None, description="Snapshot path of the registry value.")
    snapshot_sha256: str | None = Field(default=None, description="sha256 of that snapshot.")
    provenance: Provenance | None = None
    registry_trial_id: str | None = Field(default=None, description="Id of the registry record used.")
    field_path: str | None = Field(default=None, description="Path of the value in the native record.")
    link: str | None = Field(
        default=None, description="How the record was reached (link), if not by the same id.")


class ReconciliationRow(Record):
    """One stated fact compared with one registry value."""

    document_id: str
    claim_id: str = Field(description="Claim id, or table:<row>:<field>, ongoing:<n>, ref:<n>, cross:<trial>.")
    trial_id: str | None = Field(description="Trial the fact is about.")
    field: str = Field(description="Field compared.")
    stated_value: str | None = Field(description=(
        "What the page states; null in registry-vs-registry rows (claim id 'cross:<trial>'), where "
        "the page states nothing and compared_value holds the other registry's value."))
    registry_value: str | None = Field(description="What the registry records.")
    registry: str | None = Field(description="Registry compared against ('document': the page against itself).")
    compared_registry: str | None = Field(default=None, description=(
        "Registry-vs-registry rows only: the registry of the record registry_value is compared with "
        "(the record with the page's number, else the first by registry); null in every other row."))
    compared_value: str | None = Field(default=None, description=(
        "Registry-vs-registry rows only: the value of the compared_registry record; null in every other row."))
    verdict: Verdict = Field(description="match, partial, mismatch or unverifiable.")
    rule: str = Field(description="Name of the comparison, e.g. 'phase.set_equal'.")
    detail: str | None = Field(default=None, description="Why, in words (e.g. 'registry figure is 95 lower').")
    score: float | None = Field(default=None, description="Similarity score, where a fuzzy rule was used.")
    evidence: Evidence = Field(default_factory=Evidence)

    @property
    def comparison(self) -> Comparison:
        """What the row compares: the page with a registry, the page with itself, or two registries."""
        if self.rule.startswith("cross."):
            return "registry_vs_registry"
        if self.registry == "document":
            return "page_vs_page"
        return "page_vs_registry"

    @property
    def is_finding(self) -> bool:
        """A fact of the page that a registry record contradicts (mismatch or partial, with the
        registry's value to show for it)."""
        return (self.comparison == "page_vs_registry" and self.verdict in ("mismatch", "partial")
                and self.registry_value is not None)
