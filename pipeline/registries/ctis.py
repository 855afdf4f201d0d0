"""EU CTIS public API JSON -> TrialRecord.

Two layouts are read (see ``/work/shared/samples/ctis``):

* the API of the relaunched portal (since 2024-06-17): ``ctNumber``, ``ctStatus`` (a numeric
  code), ``authorizedApplication{authorizedPartI, authorizedPartsII, memberStatesConcerned,
  eudraCt, ...}``;
* the older API: ``authorizedPartI``, ``authorizedPartsII``, ``memberStatesConcerned``,
  ``eudraCtInfo``, ``primarySponsor`` at the top level and ``ctStatus`` as a label.

Either may carry the search-overview keys (``trialPhase``, ``trialCountries``,
``totalNumberEnrolled``, ``ageGroup``, ``lastUpdated``, ...), which win where both exist.
A CTIS search response (``{"pagination": ..., "data": [items]}``) gives one record per item.

What the enrollment figure means: ``totalNumberEnrolled`` is, despite its name, the number of
participants *planned* in the EEA: it equals the sum of the member states'
``recruitmentSubjectCount`` in every sample (the rest of the world is ``rowSubjectCount``). So
the record's enrollment is that figure (or that sum when the overview key is absent) with
``enrollment_type="estimated"`` and ``enrollment_scope="eea"``.

Countries are the whole trial's: the member states concerned plus the rest-of-world countries
of ``authorizedPartI.rowCountriesInfo``.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import MissingFieldError, ParseError
from pipeline.ids import trial_id_type
from pipeline.models import Design, EnrollmentFigure, Identifier, Intervention, Outcome, PartialDate, TrialRecord
from pipeline.registries.payload import decode_json
from pipeline.registries._json import JsonReader
from pipeline.registries.record import RecordFields
from pipeline.registries.vocab import (
    ctis_status_label,
    normalize_country,
    normalize_status,
    parse_partial_date,
    parse_phases,
)

EMPTY_RECORD = "CTIS returned an empty record (trial not found)"

# The overview's age groups on CT.gov's stdAges vocabulary.
_AGE_GROUPS = {"0-17 years": "CHILD", "18-64 years": "ADULT", "65+ years": "OLDER_ADULT"}
# populationOfTrialSubjects.ageRanges[].ageRangeCategory, as the samples pair it with the
# overview's ageGroup (2 with "0-17 years"; 3 and 4 with "18-64 years" and "65+ years").
_AGE_RANGE_CODES = {"2": "CHILD", "3": "ADULT", "4": "OLDER_ADULT"}
_AGE_ORDER = ("CHILD", "ADULT", "OLDER_ADULT")


def parse_ctis(data: bytes, *, path: str) -> list[TrialRecord]:
    """Parse a CTIS ``retrieve`` body (either layout) or a ``search`` response.

    Raises:
        ParseError: HTML instead of JSON ("expected JSON, got HTML"), malformed JSON, an empty
            object ("CTIS returned an empty record (trial not found)"), or not a CTIS record.
        MissingFieldError: a record without ``ctNumber``.
    """
    payload = decode_json(data, path=path)
    if payload == {}:
        raise ParseError(path, EMPTY_RECORD)
    if isinstance(payload, dict) and isinstance(payload.get("data"), list) and "pagination" in payload:
        return [_parse_trial(item, path=path, where=f"data[{i}].") for i, item in enumerate(payload["data"])]
    if not isinstance(payload, dict):
        raise ParseError(path, f"expected a CTIS record object, got a JSON {type(payload).__name__}")
    return [_parse_trial(payload, path=path, where="")]


class _Trial(JsonReader):
    """Typed reads from a CTIS record; a wrong type raises ParseError naming the field."""

    def __init__(self, record: dict[str, Any], path: str, where: str) -> None:
        super().__init__(record, path, where)
        application = record.get("authorizedApplication")
        # The new layout nests the application; the old one has its parts at the top level.
        self.app_prefix = "authorizedApplication." if isinstance(application, dict) else ""
        self.part1 = f"{self.app_prefix}authorizedPartI"
        self.details = f"{self.part1}.trialDetails"
        self.info = f"{self.details}.trialInformation"

    def text(self, dotted: str, node: Any = None, base: str = "") -> str | None:
        """A string, or a number as its text (CTIS sends codes either way)."""
        value = self.get(dotted, node)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.wrong(f"{base}{dotted}", "a string", value)
        return str(value).strip() or None

    def count(self, dotted: str, node: Any = None, base: str = "") -> int | None:
        value = self.get(dotted, node)
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            return int(value)
        raise self.wrong(f"{base}{dotted}", "a whole number", value)

    def texts(self, dotted: str, node: Any = None, base: str = "") -> list[str]:
        """A list of strings, or a comma-separated string (the old overview's form)."""
        value = self.get(dotted, node)
        if value is None:
            return []
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            raise self.wrong(f"{base}{dotted}", "a list of strings", value)
        return [str(v).strip() for v in value if str(v).strip()]


def _parse_trial(record: Any, *, path: str, where: str) -> TrialRecord:
    if not isinstance(record, dict):
        raise ParseError(path, f"{where or 'the body'} is not a CTIS record object")
    if record == {}:
        raise ParseError(path, EMPTY_RECORD)
    t = _Trial(record, path, where)
    ct_number = t.text("ctNumber")
    if ct_number is None:
        raise MissingFieldError(path, f"{where}ctNumber")

    read = RecordFields("ctis", ct_number, "ctNumber")
    put, fields = read.put, read.values

    ids = f"{t.details}.clinicalTrialIdentifiers"
    put(*_first(t, "title", [f"{ids}.publicTitle", "ctTitle", "title"]))
    put(*_first(t, "official_title", [f"{ids}.fullTitle", "title", "ctTitle"]))
    put(*_sponsor(t))

    phase_path = next((p for p in ("trialPhase", f"{t.info}.trialCategory.trialPhase") if t.text(p)), None)
    if phase_path:
        phase_raw = t.text(phase_path)
        put("phases", parse_phases(phase_raw), phase_path)
        fields["phase_raw"] = phase_raw

    status_path = next((p for p in ("ctStatus", "ctPublicStatusCode") if t.text(p)), None)
    if status_path:
        code = t.text(status_path) or ""
        label = ctis_status_label(code)
        put("status", normalize_status(code, "ctis"), status_path)
        fields["status_raw"] = f"{code} ({label})" if code.isascii() and code.isdigit() and label != code else code

    enrollment, enrollment_path = _enrollment(t)
    if enrollment is not None:
        put("enrollment", enrollment, enrollment_path)
        fields["enrollment_type"] = "estimated"
        fields["enrollment_scope"] = "eea"
    fields["enrollment_figures"] = _enrollment_figures(t)

    put(*_start_date(t))
    put(*_completion_date(t))
    put("last_updated", parse_partial_date(t.text("lastUpdated")), "lastUpdated")

    put(*_conditions(t))
    put(*_interventions(t))
    put(*_outcomes(t))
    put(*_countries(t))
    put(*_identifiers(t, ct_number))
    put("design", Design(study_type="INTERVENTIONAL"),
        "(implied: CTIS registers interventional clinical trials only)")
    put(*_age_groups(t))
    put("brief_summary", t.text(f"{t.info}.trialObjective.mainObjective"), f"{t.info}.trialObjective.mainObjective")
    return read.record()


def _first(t: _Trial, field: str, candidates: list[str]) -> tuple[str, str | None, str | None]:
    for dotted in candidates:
        value = t.text(dotted)
        if value:
            return field, value, dotted
    return field, None, None


def _sponsor(t: _Trial) -> tuple[str, str | None, str | None]:
    # The primary sponsor first; the others only when none is marked primary.
    for base, sponsor in sorted(t.each(f"{t.part1}.sponsors"), key=lambda found: found[1].get("primary") is not True):
        name = t.text("organisation.name", sponsor, base)
        if name:
            return "sponsor", name, f"{base}organisation.name"
    for dotted in ("primarySponsor.organisation.name", "sponsor"):
        name = t.text(dotted)
        if name:
            return "sponsor", name, dotted
    return "sponsor", None, None


def _enrollment(t: _Trial) -> tuple[int | None, str]:
    total = t.count("totalNumberEnrolled")
    if total is not None:
        return total, "totalNumberEnrolled"
    parts = f"{t.app_prefix}authorizedPartsII"
    counts = [t.count("recruitmentSubjectCount", part, base) for base, part in t.each(parts)]
    known = [c for c in counts if c is not None]
    if known:
        return sum(known), f"sum of {parts}[].recruitmentSubjectCount"
    return None, ""


def _enrollment_figures(t: _Trial) -> list[EnrollmentFigure]:
    """Each member state's planned figure and the rest of the world's, beside the EEA headline."""
    figures = []
    parts = f"{t.app_prefix}authorizedPartsII"
    for base, part in t.each(parts):
        count = t.count("recruitmentSubjectCount", part, base)
        name = t.text("mscInfo.mscName", part, base) or t.text("mscInfo.countryName", part, base)
        if count is not None:
            figures.append(EnrollmentFigure(
                scope="member_state", country=normalize_country(name) if name else None, figure=count,
                enrollment_type="estimated", field_path=f"{base}recruitmentSubjectCount"))
    rest = t.count(f"{t.part1}.rowSubjectCount")
    if rest is not None:
        figures.append(EnrollmentFigure(scope="rest_of_world", figure=rest, enrollment_type="estimated",
                                        field_path=f"{t.part1}.rowSubjectCount"))
    return figures


def _start_date(t: _Trial) -> tuple[str, PartialDate | None, str | None]:
    start = parse_partial_date(t.text("startDateEU"))
    if start:
        return "start_date", start, "startDateEU"
    starts = []
    for group in t.objects("events.trialEvents"):
        for event in group.get("events") or []:
            if isinstance(event, dict) and event.get("notificationType") == "START_OF_TRIAL":
                date = parse_partial_date(event.get("date") if isinstance(event.get("date"), str) else None)
                if date:
                    starts.append(date)
    if starts:
        return "start_date", min(starts, key=lambda d: d.value), "events.trialEvents[].events[START_OF_TRIAL].date"
    return "start_date", None, None


def _completion_date(t: _Trial) -> tuple[str, PartialDate | None, str | None]:
    # The actual global end, when the sponsor has notified it; else the planned one.
    ends = f"{t.app_prefix}trialGlobalEnd"
    for base, end in t.each(ends):
        for key, value in end.items():
            if "date" in key.lower() and isinstance(value, str) and (date := parse_partial_date(value)):
                return "completion_date", date, f"{base}{key}"
    duration = f"{t.info}.trialDuration"
    for key in ("estimatedGlobalEndDate", "estimatedEndDate"):
        date = parse_partial_date(t.text(f"{duration}.{key}"))
        if date:
            return "completion_date", date, f"{duration}.{key}"
    return "completion_date", None, None


def _conditions(t: _Trial) -> tuple[str, list[str], str | None]:
    for dotted in (f"{t.info}.medicalCondition.partIMedicalConditions", f"{t.part1}.medicalConditions"):
        names = _unique(t.text("medicalCondition", item, base) for base, item in t.each(dotted))
        if names:
            return "conditions", names, f"{dotted}[].medicalCondition"
    names = t.texts("conditions")
    return "conditions", names, "conditions" if names else None


def _interventions(t: _Trial) -> tuple[str, list[Intervention], str | None]:
    products = f"{t.part1}.products"
    roles: dict[Any, str] = {}
    for group in t.objects(f"{t.part1}.productRoleGroupInfos"):
        role = group.get("productRoleName")
        for product in group.get("products") or []:
            if isinstance(product, dict) and isinstance(role, str):
                roles[product.get("id")] = role
    found: dict[str, Intervention] = {}
    for base, product in t.each(products):
        dictionary = product.get("productDictionaryInfo") if isinstance(product.get("productDictionaryInfo"), dict) else {}
        substance = t.text("activeSubstanceName", dictionary, f"{base}productDictionaryInfo.")
        name = (t.text("productName", product, base) or t.text("prodName", dictionary, base)
                or t.text("jsonActiveSubstanceNames", product, base) or substance)
        if not name or name.casefold() in {"n/a", "na"}:
            continue
        others = _unique(n for n in (t.text("jsonActiveSubstanceNames", product, base), substance)
                         if n and n.casefold() not in {"n/a", "na", name.casefold()})
        origins = [s.get("actSubstOrigin") or s.get("substanceOrigin")
                   for s in dictionary.get("productSubstances") or [] if isinstance(s, dict)]
        biological = any(isinstance(o, str) and o.casefold().startswith("biolog") for o in origins)
        found.setdefault(name.casefold(), Intervention(
            type="BIOLOGICAL" if biological else "DRUG",
            name=name,
            other_names=_unique(o for o in others if o.casefold() != name.casefold()),
            description=roles.get(product.get("id")),
        ))
    return "interventions", list(found.values()), f"{products}[].productName" if found else None


def _outcomes(t: _Trial) -> tuple[str, list[Outcome], str | None]:
    endpoints = f"{t.info}.endPoint"
    out = []
    for kind, key in (("primary", "primaryEndPoints"), ("secondary", "secondaryEndPoints")):
        for base, item in t.each(f"{endpoints}.{key}"):
            measure = t.text("endPoint", item, base)
            if measure:
                out.append(Outcome(kind=kind, measure=measure))  # type: ignore[arg-type]
    return "outcomes", out, f"{endpoints}.primaryEndPoints, {endpoints}.secondaryEndPoints" if out else None


def _countries(t: _Trial) -> tuple[str, list[str], str | None]:
    codes: set[str] = set()
    sources: list[str] = []
    msc = f"{t.app_prefix}memberStatesConcerned"
    for base, state in t.each(msc):
        name = t.text("mscName", state, base) or t.text("countryName", state, base)
        if name and (code := normalize_country(name)):
            codes.add(code)
            if f"{msc}[].mscName" not in sources:
                sources.append(f"{msc}[].mscName")
    for entry in t.texts("trialCountries"):
        if code := normalize_country(entry):
            codes.add(code)
            if "trialCountries" not in sources:
                sources.append("trialCountries")
    row = f"{t.part1}.rowCountriesInfo"
    for base, country in t.each(row):
        if country.get("current") is False:
            continue
        raw = t.text("isoAlpha2Code", country, base) or t.text("name", country, base)
        if raw and (code := normalize_country(raw)):
            codes.add(code)
            if f"{row}[].isoAlpha2Code" not in sources:
                sources.append(f"{row}[].isoAlpha2Code")
    return "countries", sorted(codes), ", ".join(sources) or None


def _identifiers(t: _Trial, ct_number: str) -> tuple[str, list[Identifier], str | None]:
    out: list[Identifier] = []
    sources: list[str] = []
    for dotted in (f"{t.app_prefix}eudraCt", "eudraCtInfo"):
        code = t.text(f"{dotted}.eudraCtCode")
        if code:
            transitioned = t.get(f"{dotted}.isTransitioned") is True
            out.append(Identifier(other_id=code, id_type="EUDRACT",
                                  source="transitioned from EudraCT" if transitioned else dotted))
            sources.append(f"{dotted}.eudraCtCode")
            break
    ids = f"{t.details}.clinicalTrialIdentifiers"
    protocol = t.text(f"{ids}.shortTitle") or t.text("shortTitle")
    if protocol:
        # CTIS shows shortTitle as the sponsor's protocol code (e.g. "MK-5592-127").
        out.append(Identifier(other_id=protocol, id_type="SPONSOR_PROTOCOL", source="shortTitle"))
        sources.append(f"{ids}.shortTitle" if t.text(f"{ids}.shortTitle") else "shortTitle")
    numbers = f"{ids}.secondaryIdentifyingNumbers"
    for key, kind in (("nctNumber", "NCT"), ("isrctnNumber", "ISRCTN"), ("whoUtn", "WHO_UTN")):
        number = t.text(f"{numbers}.{key}.number")
        if number:
            out.append(Identifier(other_id=number, id_type=kind, source=key))
            sources.append(f"{numbers}.{key}.number")
    for base, item in t.each(f"{numbers}.additionalRegistries"):
        number = t.text("number", item, base)
        if not number:
            continue
        registry_name = t.text("otherRegistryName", item, base)
        out.append(Identifier(other_id=number, id_type=trial_id_type(number) or registry_name or "OTHER",
                              source=registry_name))
        if f"{numbers}.additionalRegistries" not in sources:
            sources.append(f"{numbers}.additionalRegistries")
    unique: dict[tuple[str, str], Identifier] = {}
    for identifier in out:
        if identifier.other_id != ct_number:
            unique.setdefault((identifier.other_id, identifier.id_type), identifier)
    return "identifiers", list(unique.values()), ", ".join(sources) or None


def _age_groups(t: _Trial) -> tuple[str, list[str], str | None]:
    groups = {_AGE_GROUPS[g] for g in t.texts("ageGroup") if g in _AGE_GROUPS}
    if groups:
        return "age_groups", [g for g in _AGE_ORDER if g in groups], "ageGroup"
    ranges = f"{t.info}.populationOfTrialSubjects.ageRanges"
    codes = {t.text("ageRangeCategory", item, base) for base, item in t.each(ranges)}
    groups = {_AGE_RANGE_CODES[c] for c in codes if c in _AGE_RANGE_CODES}
    return "age_groups", [g for g in _AGE_ORDER if g in groups], f"{ranges}[].ageRangeCategory" if groups else None


def _unique(values: Any) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        if value:
            seen.setdefault(value.casefold(), value)
    return list(seen.values())
