"""ClinicalTrials.gov API v2 JSON -> TrialRecord.

Reads ``GET /api/v2/studies/{nctId}`` bodies and ``/studies`` pages (``{"studies": [...]}``,
including ``fields=``-filtered partial records). Structure and enums follow the official
OpenAPI spec (ctg-oas-v2 2.0.5). Unknown fields are ignored; the only required field is
``protocolSection.identificationModule.nctId``.

``field_paths`` values are paths inside the study object (for a page, inside its entry of
``studies``), e.g. ``protocolSection.statusModule.overallStatus``.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import MissingFieldError, ParseError
from pipeline.models import Arm, Design, Identifier, Intervention, Outcome, TrialRecord
from pipeline.registries.payload import decode_json
from pipeline.registries._json import JsonReader
from pipeline.registries.record import RecordFields
from pipeline.ids import trial_id_type
from pipeline.registries.vocab import normalize_country, normalize_status, parse_partial_date, parse_phases

PS = "protocolSection"
ID = f"{PS}.identificationModule"
STATUS = f"{PS}.statusModule"
DESIGN = f"{PS}.designModule"
ENROLLMENT_PATH = f"{DESIGN}.enrollmentInfo.count"
ARMS = f"{PS}.armsInterventionsModule"
OUTCOMES = f"{PS}.outcomesModule"
LOCATIONS = f"{PS}.contactsLocationsModule.locations"

# The CT.gov values the parser maps onto ours, declared once: parse_study reads them here, and the
# DuckDB ingest engine (pipeline.store.ingest_sql) generates its SQL from them, so that the two
# cannot map a value differently.
ENROLLMENT_TYPES = {"ACTUAL": "actual", "ESTIMATED": "estimated"}
"""``enrollmentInfo.type`` -> ``TrialRecord.enrollment_type``; any other type gives none."""
ENROLLMENT_SCOPE = "whole_trial"
"""The scope of a CT.gov enrollment: one figure, for the whole trial."""
SECONDARY_ID_TYPES = {"EUDRACT_NUMBER": "EUDRACT", "CTIS": "EU_CT"}
"""``secondaryIdInfos[].type`` with a name of our own; the others keep the registry's name
(typed by their form when they have the form of a trial number)."""
UNTYPED_ID_TYPE = "OTHER"
"""The type of a secondary id with no type and no trial-number form."""
SPONSOR_ID_TYPE = "SPONSOR_PROTOCOL"
"""The type of ``orgStudyIdInfo.id``, the sponsor's own protocol number."""
ALIAS_ID_TYPE = "NCT"
"""The type of an ``nctIdAliases`` entry (an NCT number the trial was also registered under)."""
OUTCOME_KINDS = {"primaryOutcomes": "primary", "secondaryOutcomes": "secondary"}
"""The lists of ``outcomesModule``, in order, and the ``Outcome.kind`` of their entries."""


def _studies_of(payload: Any, path: str) -> list[dict[str, Any]]:
    """The studies of a decoded CT.gov response: a page's ``studies``, or a single study as a page of one.

    A page's paging fields are checked too: a ``nextPageToken`` that is no string or a
    ``totalCount`` that is no integer means the body is not what the API sends.
    """
    if isinstance(payload, dict) and "studies" in payload:
        studies = payload["studies"]
        if not isinstance(studies, list) or not all(isinstance(s, dict) for s in studies):
            raise ParseError(path, "'studies' is not a list of study objects")
        token = payload.get("nextPageToken")
        total = payload.get("totalCount")
        if token is not None and not isinstance(token, str):
            raise ParseError(path, f"'nextPageToken' is {type(token).__name__}, expected a string")
        if total is not None and (not isinstance(total, int) or isinstance(total, bool)):
            raise ParseError(path, f"'totalCount' is {type(total).__name__}, expected an integer")
        return studies
    if isinstance(payload, dict) and PS in payload:
        return [payload]
    raise ParseError(path, "not a ClinicalTrials.gov study nor a page of studies "
                           "(no 'protocolSection' or 'studies' key)")


def parse_ctgov(data: bytes, *, path: str) -> list[TrialRecord]:
    """Parse a CT.gov single-study body or ``/studies`` page.

    Raises:
        ParseError: not JSON, or not a study or page of studies.
        MissingFieldError: a study without ``protocolSection.identificationModule.nctId``
            (for a page the field path starts with ``studies[i].``).
    """
    payload = decode_json(data, path=path)
    studies = _studies_of(payload, path)
    if isinstance(payload, dict) and "studies" in payload:
        return [_parse_study(study, path=path, where=f"studies[{i}].") for i, study in enumerate(studies)]
    return [_parse_study(studies[0], path=path, where="")]


def parse_study(study: dict[str, Any], *, path: str) -> TrialRecord:
    """Parse one decoded CT.gov study object.

    Args:
        study: the study (``{"protocolSection": ..., ...}``).
        path: the snapshot it came from, for error messages.

    Raises:
        MissingFieldError: ``protocolSection.identificationModule.nctId`` is absent.
        ParseError: a field the record needs has the wrong type.
    """
    return _parse_study(study, path=path, where="")


class _Study(JsonReader):
    """Typed reads from a study object; a wrong type raises ParseError naming the field."""

    def integer(self, dotted: str) -> int | None:
        value = self.get(dotted)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong(dotted, "an integer", value)
        return value


def _parse_study(study: Any, *, path: str, where: str) -> TrialRecord:
    if not isinstance(study, dict):
        raise ParseError(path, f"{where or 'the body'} is not a study object")
    s = _Study(study, path, where)
    nct_id = s.text(f"{ID}.nctId")
    if nct_id is None:
        raise MissingFieldError(path, f"{where}{ID}.nctId")

    read = RecordFields("ctgov", nct_id, f"{ID}.nctId")
    put, fields = read.put, read.values

    put("title", s.text(f"{ID}.briefTitle"), f"{ID}.briefTitle")
    put("official_title", s.text(f"{ID}.officialTitle"), f"{ID}.officialTitle")
    put("acronym", s.text(f"{ID}.acronym"), f"{ID}.acronym")
    put("sponsor", s.text(f"{PS}.sponsorCollaboratorsModule.leadSponsor.name"),
        f"{PS}.sponsorCollaboratorsModule.leadSponsor.name")

    phases_raw = s.texts(f"{DESIGN}.phases")
    if phases_raw:
        put("phases", parse_phases(phases_raw), f"{DESIGN}.phases")
        fields["phase_raw"] = ", ".join(phases_raw)

    status_raw = s.text(f"{STATUS}.overallStatus")
    if status_raw:
        put("status", normalize_status(status_raw, "ctgov"), f"{STATUS}.overallStatus")
        fields["status_raw"] = status_raw

    count = s.integer(ENROLLMENT_PATH)
    if count is not None:
        put("enrollment", count, ENROLLMENT_PATH)
        fields["enrollment_scope"] = ENROLLMENT_SCOPE
        enrollment_type = ENROLLMENT_TYPES.get(s.text(f"{DESIGN}.enrollmentInfo.type") or "")
        put("enrollment_type", enrollment_type, f"{DESIGN}.enrollmentInfo.type")

    put("start_date", parse_partial_date(s.text(f"{STATUS}.startDateStruct.date")),
        f"{STATUS}.startDateStruct.date")
    put("completion_date", parse_partial_date(s.text(f"{STATUS}.completionDateStruct.date")),
        f"{STATUS}.completionDateStruct.date")
    put("last_updated", parse_partial_date(s.text(f"{STATUS}.lastUpdatePostDateStruct.date")),
        f"{STATUS}.lastUpdatePostDateStruct.date")

    put("conditions", s.texts(f"{PS}.conditionsModule.conditions"), f"{PS}.conditionsModule.conditions")
    put("keywords", s.texts(f"{PS}.conditionsModule.keywords"), f"{PS}.conditionsModule.keywords")
    put("interventions", _interventions(s), f"{ARMS}.interventions")
    put("arms", _arms(s), f"{ARMS}.armGroups")
    outcome_keys = [f"{OUTCOMES}.{k}" for k in OUTCOME_KINDS if s.objects(f"{OUTCOMES}.{k}")]
    put("outcomes", _outcomes(s), ", ".join(outcome_keys))
    put("countries", _countries(s), f"{LOCATIONS}[].country")
    identifiers, id_paths = _identifiers(s, nct_id)
    put("identifiers", identifiers, ", ".join(id_paths))
    design, design_path = _design(s)
    if design != Design():
        put("design", design, design_path)
    put("age_groups", s.texts(f"{PS}.eligibilityModule.stdAges"), f"{PS}.eligibilityModule.stdAges")
    put("brief_summary", s.text(f"{PS}.descriptionModule.briefSummary"), f"{PS}.descriptionModule.briefSummary")

    return read.record()


def _interventions(s: _Study) -> list[Intervention]:
    out = []
    for base, item in s.each(f"{ARMS}.interventions"):
        name = s.text("name", item, base)
        if not name:
            continue
        out.append(Intervention(
            type=s.text("type", item, base),
            name=name,
            other_names=s.texts("otherNames", item, base),
            description=s.text("description", item, base),
        ))
    return out


def _arms(s: _Study) -> list[Arm]:
    out = []
    for base, item in s.each(f"{ARMS}.armGroups"):
        arm = Arm(
            label=s.text("label", item, base),
            type=s.text("type", item, base),
            description=s.text("description", item, base),
            intervention_names=s.texts("interventionNames", item, base),
        )
        # An arm with neither a label nor a description says nothing to compare with.
        if arm.label or arm.description:
            out.append(arm)
    return out


def _outcomes(s: _Study) -> list[Outcome]:
    out = []
    for key, kind in OUTCOME_KINDS.items():
        for base, item in s.each(f"{OUTCOMES}.{key}"):
            measure = s.text("measure", item, base)
            if not measure:
                continue
            out.append(Outcome(
                kind=kind,  # type: ignore[arg-type]
                measure=measure,
                time_frame=s.text("timeFrame", item, base),
                description=s.text("description", item, base),
            ))
    return out


def _countries(s: _Study) -> list[str]:
    codes = set()
    for base, item in s.each(LOCATIONS):
        name = s.text("country", item, base)
        code = normalize_country(name) if name else None
        if code:
            codes.add(code)
    return sorted(codes)


def _identifiers(s: _Study, nct_id: str) -> tuple[list[Identifier], list[str]]:
    """Every id of the study but its own NCT number, and the paths they were read from.

    Typed ids keep CT.gov's type (EUDRACT_NUMBER and CTIS renamed EUDRACT and EU_CT); an id
    of another type, or of none, that has the form of a trial number is typed by that form
    (a REGISTRY id "NCT01234567" is an NCT alias), the registry's type kept as its source.
    """
    out: list[Identifier] = []
    paths: list[str] = []
    org_id = s.text(f"{ID}.orgStudyIdInfo.id")
    if org_id:
        out.append(Identifier(other_id=org_id, id_type=SPONSOR_ID_TYPE,
                              source=s.text(f"{ID}.organization.fullName")))
        paths.append(f"{ID}.orgStudyIdInfo.id")
    secondary = s.each(f"{ID}.secondaryIdInfos")
    for base, item in secondary:
        other_id = s.text("id", item, base)
        if not other_id:
            continue
        native_type = s.text("type", item, base)
        form = trial_id_type(other_id)
        if native_type in SECONDARY_ID_TYPES:
            id_type, source = SECONDARY_ID_TYPES[native_type], s.text("domain", item, base)
        elif form:
            id_type, source = form, native_type or s.text("domain", item, base)
        else:
            id_type, source = native_type or UNTYPED_ID_TYPE, s.text("domain", item, base)
        out.append(Identifier(other_id=other_id, id_type=id_type, source=source))
    if secondary:
        paths.append(f"{ID}.secondaryIdInfos")
    aliases = [a for a in s.texts(f"{ID}.nctIdAliases") if a != nct_id]
    out.extend(Identifier(other_id=alias, id_type=ALIAS_ID_TYPE, source="nctIdAliases") for alias in aliases)
    if aliases:
        paths.append(f"{ID}.nctIdAliases")
    unique: dict[tuple[str, str], Identifier] = {}
    for identifier in out:
        unique.setdefault((identifier.other_id, identifier.id_type), identifier)
    return list(unique.values()), paths


def _design(s: _Study) -> tuple[Design, str]:
    info = f"{DESIGN}.designInfo"
    model = s.text(f"{info}.interventionModel") or s.text(f"{info}.observationalModel")
    design = Design(
        study_type=s.text(f"{DESIGN}.studyType"),
        allocation=s.text(f"{info}.allocation"),
        masking=s.text(f"{info}.maskingInfo.masking"),
        intervention_model=model,
        primary_purpose=s.text(f"{info}.primaryPurpose"),
    )
    return design, f"{DESIGN}.studyType, {info}"
