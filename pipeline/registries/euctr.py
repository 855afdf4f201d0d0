"""EU Clinical Trials Register (clinicaltrialsregister.eu) -> TrialRecord.

Three payloads are read:

* the "download full trial details" text (``ctr-search/rest/download/full``): one block per
  member-state record, each opened by a "Summary" line, then "A.1 Label: value" lines (values
  may run over several lines; "(es)"-style translations are skipped);
* the protocol page of one member state (``ctr-search/trial/<EudraCT>/<MS>``): rows
  ``<tr class="tricell"><td class="first">E.8.6</td><td class="second">label</td>
  <td class="third">value</td>`` after a summary table;
* the search-results page (``ctr-search/search?query=...``): one ``table.result`` per trial.

The register keeps one record per member state. They are merged into one TrialRecord per
EudraCT number: countries are the union (plus the non-EEA countries named in E.8.6.3), the
overall status is the liveliest member-state status (see :func:`pipeline.registries.vocab.overall_status`)
and ``status_raw`` keeps every state's own status, e.g. "ES: Ongoing; SE: Completed".

Enrollment is the *planned* number of subjects (F.4): the whole trial's (F.4.2.2) where given,
else the EEA's (F.4.2.1), else the member state's (F.4.1, which is the whole trial when the
trial runs in one member state only). Member-state records can carry different protocol
versions; the figure most of them give wins (the first one on a tie).

``field_paths`` name the register's section codes and labels, e.g.
"E.7 Trial type and phase (Yes rows)".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from pipeline.errors import MissingFieldError, ParseError
from pipeline.ids import trial_id_type
from pipeline.models import Design, EnrollmentFigure, Identifier, Intervention, Outcome, Phase, TrialRecord
from pipeline.registries.record import RecordFields
from pipeline.registries.vocab import (
    ICH_E8_CATEGORIES,
    normalize_country,
    normalize_status,
    overall_status,
    parse_partial_date,
)

EUDRACT_FIELD = "EudraCT Number"
SPONSOR_CODE_FIELD = "Sponsor's Protocol Code Number"

PHASE_ROWS = tuple((f"E.7.{n}", phase, ICH_E8_CATEGORIES[phase])
                   for n, phase in enumerate((Phase.PHASE1, Phase.PHASE2, Phase.PHASE3, Phase.PHASE4), start=1))
"""(code, phase, the register's words) of the E.7 rows that say a trial's phase."""
LINE_LABELS = {
    "A.4.1": "A.4.1 Sponsor's protocol code number",
    "E.1.1": "E.1.1 Medical condition(s) being investigated",
    "E.2.1": "E.2.1 Main objective of the trial",
    "F.4.2.1": "F.4.2.1 In the EEA",
    "F.4.2.2": "F.4.2.2 In the whole clinical trial",
    **{code: f"{code} {words}" for code, _, words in PHASE_ROWS},
}
"""The register's whole line label of the coded lines read by name (field paths cite them;
pipeline.store.reconstruct writes them)."""
_IDENTIFIER_ROWS = (("A.5.1", "ISRCTN"), ("A.5.2", "NCT"), ("A.5.3", "WHO_UTN"), ("A.5.4", "OTHER"))
_SEARCH_AGES = {"under 18": "CHILD", "children": "CHILD", "adolescents": "CHILD", "infant and toddler": "CHILD",
                "newborn": "CHILD", "preterm new born infants": "CHILD", "in utero": "CHILD",
                "adults": "ADULT", "elderly": "OLDER_ADULT"}
_AGE_ORDER = ("CHILD", "ADULT", "OLDER_ADULT")

# A coded line of the text download: "A.3.1 Label: value", "B.3.1 and B.3.2\tLabel: value",
# "N. Label: value", "D.IMP: 1", or a section heading "E. General Information on the Trial".
_CODED = re.compile(
    r"^(?P<code>[A-P]\.(?:IMP|\d+(?:\.\d+)*)?(?:\s+(?:and|to)\s+[A-P]\.\d+(?:\.\d+)*)?)"
    r"(?:[ \t]+|(?=:))(?P<rest>.*)$",
    re.ASCII,
)
_SUMMARY_LABELS = (EUDRACT_FIELD, SPONSOR_CODE_FIELD, "National Competent Authority",
                   "Clinical Trial Type", "Trial Status", "Date on which this record was first entered",
                   "Link", "Trial results")
_TRANSLATION = re.compile(r"\s*\((?:[a-z]{2})\)$")
_UNCODED_HEADINGS = {"MedDRA Classification"}


@dataclass
class _Entry:
    code: str  # "" for the summary block
    label: str
    value: str | None  # None for headings
    translation: bool = False


@dataclass
class _MemberStateRecord:
    """One member state's record: its entries in order."""

    entries: list[_Entry] = field(default_factory=list)

    def value(self, code: str, label: str | None = None) -> str | None:
        """The first non-empty English value of ``code`` (whose label starts with ``label``)."""
        for entry in self.entries:
            if entry.code == code and not entry.translation and entry.value:
                if label is None or entry.label.casefold().startswith(label.casefold()):
                    return entry.value
        return None

    def summary(self, label: str) -> str | None:
        return self.value("", label)

    def yes(self, code: str, label: str | None = None) -> bool:
        return (self.value(code, label) or "").strip().casefold() == "yes"

    def trial_id(self) -> str | None:
        raw = self.summary(EUDRACT_FIELD) or self.value("A.2")
        return raw.strip() if raw else None

    def blocks(self, marker: str, codes: str) -> list[list[_Entry]]:
        """Entries of each repeated block (e.g. each "D.IMP: n"), up to the next marker or section."""
        blocks: list[list[_Entry]] = []
        current: list[_Entry] | None = None
        for entry in self.entries:
            if entry.code == marker:
                current = []
                blocks.append(current)
            elif current is not None and entry.code.startswith(codes) and not entry.translation:
                current.append(entry)
            elif current is not None and entry.code and not entry.code.startswith(codes):
                current = None
        return blocks


# ---------------------------------------------------------------------------------------------
# Text download
# ---------------------------------------------------------------------------------------------


def parse_euctr_text(data: bytes, *, path: str) -> list[TrialRecord]:
    """Parse an EU CTR full-text download: one record per EudraCT number.

    Raises:
        ParseError: the text holds no "Summary" block with an "EudraCT Number:" line.
        MissingFieldError: a member-state block without an EudraCT number.
    """
    text = _decode(data, path)
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.strip() == "Summary":
            blocks.append([])
        elif blocks:
            blocks[-1].append(line)
    records = [_parse_text_block(lines) for lines in blocks]
    if not records:
        raise ParseError(path, "not an EU CTR full-text download (no 'Summary' block)")
    return _merge_all(records, path)


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(path, f"not UTF-8 text (byte {exc.start})") from exc


def _parse_text_block(lines: list[str]) -> _MemberStateRecord:
    record = _MemberStateRecord()
    open_entry: _Entry | None = None
    for raw in lines:
        line = raw.rstrip()
        if not line.strip():
            continue
        entry = _text_entry(line)
        if entry is not None:
            record.entries.append(entry)
            open_entry = entry if entry.value is not None else None
        elif line.strip() in _UNCODED_HEADINGS or re.fullmatch(r"Sponsor \d+", line.strip()):
            marker = re.fullmatch(r"Sponsor (\d+)", line.strip())
            if marker:
                record.entries.append(_Entry("B.Sponsor", "Sponsor", marker[1]))
            open_entry = None
        elif open_entry is not None:
            # A value running over several lines.
            open_entry.value = f"{open_entry.value}\n{line.strip()}".strip()
    return record


def _text_entry(line: str) -> _Entry | None:
    for label in _SUMMARY_LABELS:
        if line.startswith(label) and ":" in line:
            name, _, value = line.partition(":")
            return _Entry("", name.strip(), value.strip())
    match = _CODED.match(line)
    if not match:
        return None
    code, rest = match["code"], match["rest"].strip()
    if code == "D.IMP" or code.startswith("D.IMP"):
        return _Entry("D.IMP", "IMP", rest.lstrip(": ").strip())
    if code == "D.8" and rest.startswith("Placebo:"):
        return _Entry("D.8.Placebo", "Placebo", rest.partition(":")[2].strip())
    label, sep, value = _split_label(rest)
    if not sep:
        return _Entry(code, label, None)
    translation = bool(_TRANSLATION.search(label))
    return _Entry(code, _TRANSLATION.sub("", label), value.strip(), translation)


def _split_label(rest: str) -> tuple[str, str, str]:
    # The label ends at the first colon followed by a space or the end of the line.
    match = re.search(r":(?:\s|$)", rest)
    if not match:
        return rest, "", ""
    return rest[: match.start()].strip(), ":", rest[match.end():]


# ---------------------------------------------------------------------------------------------
# HTML pages
# ---------------------------------------------------------------------------------------------


# Elements that hold code or inert markup, not page text: node.text(deep=True) would read their
# contents as values (a script's string becoming a title, an id in a script a trial number).
_NOT_CONTENT = ["script", "style", "noscript", "template"]


def parse_euctr_html(data: bytes, *, path: str) -> list[TrialRecord]:
    """Parse an EU CTR protocol page or search-results page.

    Raises:
        ParseError: the page is neither (no ``tr.tricell`` rows, no summary table, no
            ``table.result``).
        MissingFieldError: a protocol page without an EudraCT number.
    """
    tree = LexborHTMLParser(_decode(data, path))
    tree.strip_tags(_NOT_CONTENT)
    results = tree.css("table.result")
    if results:
        return _merge_search([_search_result(table) for table in results], path)
    record = _protocol_page(tree)
    if not record.entries:
        raise ParseError(path, "neither an EU CTR protocol page (no tr.tricell rows) nor a search-results page")
    return _merge_all([record], path)


def _cell_text(node: LexborNode) -> str:
    text = node.text(deep=True, separator="\n")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _protocol_page(tree: LexborHTMLParser) -> _MemberStateRecord:
    record = _MemberStateRecord()
    for row in tree.css("tr"):
        cells = row.css("td")
        classes = (row.attributes.get("class") or "").split()
        if "tricell" in classes and len(cells) >= 3:
            record.entries.append(_Entry(_cell_text(cells[0]), _cell_text(cells[1]).rstrip(":"),
                                         _cell_text(cells[2])))
            continue
        if not cells:
            continue
        first_class = (cells[0].attributes.get("class") or "").split()
        if "cellGrey" in first_class and len(cells) >= 2:
            record.entries.append(_Entry("", _cell_text(cells[0]).rstrip(":"), _cell_text(cells[1])))
        elif "cellBlue" in first_class:
            heading = _cell_text(cells[0])
            if m := re.fullmatch(r"D\.IMP:\s*(\d+)", heading):
                record.entries.append(_Entry("D.IMP", "IMP", m[1]))
            elif m := re.fullmatch(r"B\.Sponsor:\s*(\d+)", heading):
                record.entries.append(_Entry("B.Sponsor", "Sponsor", m[1]))
    return record


def _search_result(table: LexborNode) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for label_node in table.css("span.label"):
        parent = label_node.parent
        if parent is None or parent.tag != "td":
            continue
        label = " ".join(label_node.text(deep=False).split()).rstrip(":").strip()
        if label == "Trial protocol":
            fields[label] = _search_protocols(parent)
            continue
        whole = " ".join(parent.text(deep=True).split())
        value = whole.split(":", 1)[1].strip() if ":" in whole else ""
        fields[label] = value
    return fields


def _search_protocols(cell: LexborNode) -> list[tuple[str, str | None]]:
    out = []
    for link in cell.css("a"):
        state = " ".join(link.text().split())
        status = None
        node = link.next
        while node is not None and node.tag == "-text" and not (node.text() or "").strip():
            node = node.next
        if node is not None and node.tag == "span" and "status" in (node.attributes.get("class") or ""):
            status = node.text().strip().strip("()").strip() or None
        out.append((state, status))
    return out


def _merge_search(results: list[dict[str, Any]], path: str) -> list[TrialRecord]:
    records = []
    for i, result in enumerate(results):
        trial_id = (result.get(EUDRACT_FIELD) or "").strip()
        if not trial_id:
            raise MissingFieldError(path, f"table.result[{i}] {EUDRACT_FIELD}")
        read = RecordFields("euctr", trial_id, f"table.result {EUDRACT_FIELD}")
        put = read.put

        put("official_title", result.get("Full Title"), "table.result Full Title")
        put("sponsor", result.get("Sponsor Name"), "table.result Sponsor Name")
        put("start_date", parse_partial_date(result.get("Start Date")), "table.result Start Date")
        put("conditions", [result["Medical condition"]] if result.get("Medical condition") else [],
            "table.result Medical condition")
        ages = {_SEARCH_AGES.get(a.strip().casefold()) for a in (result.get("Population Age") or "").split(",")}
        put("age_groups", [a for a in _AGE_ORDER if a in ages], "table.result Population Age")
        protocol = result.get("Sponsor Protocol Number")
        if protocol:
            put("identifiers", [Identifier(other_id=protocol, id_type="SPONSOR_PROTOCOL",
                                           source="Sponsor Protocol Number")], "table.result Sponsor Protocol Number")
        states = result.get("Trial protocol") or []
        put("countries", sorted({c for s, _ in states if (c := normalize_country(s))}),
            "table.result Trial protocol (links)")
        _put_status(read, [(s, st) for s, st in states if st], "table.result Trial protocol (status)")
        records.append(read.record())
    return records


# ---------------------------------------------------------------------------------------------
# Member-state records -> one TrialRecord per trial
# ---------------------------------------------------------------------------------------------


def _merge_all(records: list[_MemberStateRecord], path: str) -> list[TrialRecord]:
    groups: dict[str, list[_MemberStateRecord]] = {}
    for i, record in enumerate(records):
        trial_id = record.trial_id()
        if not trial_id:
            raise MissingFieldError(path, f"record {i + 1}: {EUDRACT_FIELD}")
        groups.setdefault(trial_id, []).append(record)
    return [_merge_trial(trial_id, group) for trial_id, group in groups.items()]


def _first(group: list[_MemberStateRecord], code: str, label: str | None = None) -> str | None:
    return next((v for r in group if (v := r.value(code, label))), None)


def _put_status(read: RecordFields, states: list[tuple[str, str]], native: str) -> None:
    """Set status from (state, label) pairs: the overall status and every state's own label."""
    pairs = list(dict.fromkeys(states))
    if not pairs:
        return
    read.put("status", overall_status([normalize_status(label, "euctr") for _, label in pairs]), native)
    read.values["status_raw"] = "; ".join(f"{state}: {label}" for state, label in pairs)


def _merge_trial(trial_id: str, group: list[_MemberStateRecord]) -> TrialRecord:
    read = RecordFields("euctr", trial_id, f"Summary: {EUDRACT_FIELD}")
    put, fields = read.put, read.values

    put("title", _first(group, "A.3.1") or _first(group, "A.3.2"),
        "A.3.1 Title of the trial for lay people" if _first(group, "A.3.1") else "A.3.2 Name or abbreviated title")
    put("official_title", _first(group, "A.3"), "A.3 Full title of the trial")
    put("sponsor", _first(group, "B.1.1"), "B.1.1 Name of Sponsor")

    phases = [(phase, label) for code, phase, label in PHASE_ROWS if any(r.yes(code) for r in group)]
    if phases:
        put("phases", [phase for phase, _ in phases], "E.7 Trial type and phase (Yes rows)")
        fields["phase_raw"] = "; ".join(label for _, label in phases)

    states = []
    countries: set[str] = set()
    for record in group:
        authority = record.value("A.1") or record.summary("National Competent Authority") or ""
        name = authority.split(" - ")[0].strip() or _state_in_link(record.summary("Link"))
        code = normalize_country(name)
        if code:
            countries.add(code)
        label = record.summary("Trial Status") or record.value("P.", "End of Trial Status")
        if label:
            states.append((code or name or "?", label))
        for line in re.split(r"[\n,;]", record.value("E.8.6.3") or ""):
            if line.strip() and (other := normalize_country(line.strip())):
                countries.add(other)
    _put_status(read, states, "Summary: Trial Status (per member state)")
    put("countries", sorted(countries), "A.1 Member State Concerned, E.8.6.3 regions outside the EEA")

    enrollment, scope, native = _enrollment(group)
    if enrollment is not None:
        put("enrollment", enrollment, native)
        fields["enrollment_type"] = "estimated"
        fields["enrollment_scope"] = scope
    fields["enrollment_figures"] = _enrollment_figures(group)

    put("completion_date", parse_partial_date(_first(group, "P.", "Date of the global end of the trial")),
        "P. Date of the global end of the trial")
    conditions = _first(group, "E.1.1", "Medical condition(s)")
    put("conditions", [conditions] if conditions else [], LINE_LABELS["E.1.1"])
    if not conditions:
        lay = _first(group, "E.1.1.1")
        put("conditions", [lay] if lay else [], "E.1.1.1 Medical condition in easily understood language")
    put("interventions", _interventions(group[0]), "D. IMP Identification (D.3.1, D.3.8), D.8 Placebo")
    put("outcomes", _outcomes(group[0]), "E.5.1 Primary end point(s), E.5.2 Secondary end point(s)")
    put("identifiers", _identifiers(group), f"{LINE_LABELS['A.4.1']}, A.5 identifiers")
    put("design", _design(group[0]), "E.6 Scope of the trial, E.8.1 Design of the trial")
    ages = []
    for code, group_name in (("F.1.1", "CHILD"), ("F.1.2", "ADULT"), ("F.1.3", "OLDER_ADULT")):
        if any(r.yes(code) for r in group):
            ages.append(group_name)
    put("age_groups", ages, "F.1 Age Range")
    put("brief_summary", _first(group, "E.2.1"), LINE_LABELS["E.2.1"])
    return read.record()


def _state_in_link(link: str | None) -> str:
    """The member state a record's link ends with (".../2016-003447-11/NL/" -> "NL"; "3rd" for
    a third country), for records that name no competent authority."""
    match = re.search(r"/trial/[^/]+/([^/\s]+)/?\s*$", link or "")
    return match[1] if match else ""


def _enrollment(group: list[_MemberStateRecord]) -> tuple[int | None, str, str]:
    single_state = all(
        not r.yes("E.8.5") and not r.yes("E.8.6.1") and not r.yes("E.8.6.2") for r in group
    ) and len({r.value("A.1") for r in group}) <= 1
    for code, scope, label in (("F.4.2.2", "whole_trial", LINE_LABELS["F.4.2.2"]),
                               ("F.4.2.1", "eea", LINE_LABELS["F.4.2.1"]),
                               ("F.4.1", "whole_trial" if single_state else "member_state",
                                "F.4.1 In the member state")):
        figures = [int(v) for r in group if (v := (r.value(code) or "").strip()).isascii() and v.isdigit()]
        if figures:
            return Counter(figures).most_common(1)[0][0], scope, label
    return None, "", ""


def _enrollment_figures(group: list[_MemberStateRecord]) -> list[EnrollmentFigure]:
    """Each member state's F.4.1 figure (from its own record), and the EEA and whole-trial
    figures (F.4.2.1, F.4.2.2) as the records give them (the most common where they differ)."""
    figures: list[EnrollmentFigure] = []
    for record in group:
        value = (record.value("F.4.1") or "").strip()
        if value.isascii() and value.isdigit():
            authority = record.value("A.1") or record.summary("National Competent Authority") or ""
            name = authority.split(" - ")[0].strip() or _state_in_link(record.summary("Link"))
            figure = EnrollmentFigure(scope="member_state", country=normalize_country(name), figure=int(value),
                                      enrollment_type="estimated", field_path="F.4.1 In the member state")
            if figure not in figures:  # a member state's record given twice
                figures.append(figure)
    for code, scope, label in (("F.4.2.1", "eea", LINE_LABELS["F.4.2.1"]),
                               ("F.4.2.2", "whole_trial", LINE_LABELS["F.4.2.2"])):
        values = [int(v) for r in group if (v := (r.value(code) or "").strip()).isascii() and v.isdigit()]
        if values:
            figures.append(EnrollmentFigure(scope=scope, figure=Counter(values).most_common(1)[0][0],
                                            enrollment_type="estimated", field_path=label))
    return figures


def _interventions(record: _MemberStateRecord) -> list[Intervention]:
    found: dict[str, Intervention] = {}
    for block in record.blocks("D.IMP", ("D.1", "D.2", "D.3")):
        values = {}
        for entry in block:
            if entry.value:
                values.setdefault(entry.code, entry.value)

        def yes(code: str, values: dict[str, str] = values) -> bool:
            return values.get(code, "").casefold() == "yes"

        names = [values.get(c) for c in ("D.3.1", "D.2.1.1.1", "D.3.8", "D.3.2", "D.3.9.2", "D.3.9.3")]
        names = [n for n in names if n]
        if not names:
            continue
        if yes("D.3.11.3.2") or yes("D.3.11.10"):
            kind = "GENETIC"
        elif yes("D.3.11.2") or yes("D.3.11.3") or yes("D.3.11.6"):
            kind = "BIOLOGICAL"
        else:
            kind = "DRUG"
        others = list(dict.fromkeys(n for n in names[1:] if n.casefold() != names[0].casefold()))
        found.setdefault(names[0].casefold(), Intervention(
            type=kind, name=names[0], other_names=others, description=values.get("D.1.2 and D.1.3")))
    if any(e.code == "D.8.1" and "yes" in (e.label + " " + (e.value or "")).casefold() for e in record.entries) \
            or any(e.code == "D.8.Placebo" for e in record.entries):
        found.setdefault("placebo", Intervention(type="DRUG", name="Placebo", description="Placebo"))
    return list(found.values())


def _outcomes(record: _MemberStateRecord) -> list[Outcome]:
    out = []
    for kind, code in (("primary", "E.5.1"), ("secondary", "E.5.2")):
        measure = record.value(code)
        if measure:
            out.append(Outcome(kind=kind, measure=measure, time_frame=record.value(f"{code}.1")))  # type: ignore[arg-type]
    return out


def _identifiers(group: list[_MemberStateRecord]) -> list[Identifier]:
    out: dict[tuple[str, str], Identifier] = {}
    protocol = _first(group, "A.4.1") or next((v for r in group if (v := r.summary("Sponsor's Protocol Code"))), None)
    if protocol:
        out[(protocol, "SPONSOR_PROTOCOL")] = Identifier(other_id=protocol, id_type="SPONSOR_PROTOCOL",
                                                         source=LINE_LABELS["A.4.1"])
    for code, kind in _IDENTIFIER_ROWS:
        for record in group:
            for entry in record.entries:
                if entry.code != code or entry.translation or not entry.value:
                    continue
                value = entry.value.strip()
                id_type = trial_id_type(value) or kind
                out.setdefault((value, id_type), Identifier(other_id=value, id_type=id_type,
                                                            source=f"{code} {entry.label}"))
    return list(out.values())


def _design(record: _MemberStateRecord) -> Design:
    if record.yes("E.8.1.4"):
        masking = "DOUBLE"
    elif record.yes("E.8.1.3"):
        masking = "SINGLE"
    elif record.yes("E.8.1.2"):
        masking = "NONE"
    else:
        masking = None
    allocation = {"yes": "RANDOMIZED", "no": "NON_RANDOMIZED"}.get((record.value("E.8.1.1") or "").casefold())
    model = "PARALLEL" if record.yes("E.8.1.5") else "CROSSOVER" if record.yes("E.8.1.6") else None
    purpose = ("TREATMENT" if record.yes("E.6.3") else "PREVENTION" if record.yes("E.6.2")
               else "DIAGNOSTIC" if record.yes("E.6.1") else None)
    return Design(study_type="INTERVENTIONAL", allocation=allocation, masking=masking,
                  intervention_model=model, primary_purpose=purpose)
