"""Reconstructed registry snapshots: native records built from public facts, never captured.

The registry records of the page's trials could not be captured (no network), so public facts
about them were gathered (``../shared/registry-facts/``, one file per trial, every value with
the URL it came from). A *recipe* (``snapshots/reconstruction/<registry>/<id>.json``) picks the
values of one registry record out of those facts; :func:`build_native` turns it into the bytes
of that registry's own format, and :func:`rebuild` stores them as ``provenance:
reconstructed`` with the facts' source URLs. Nothing here is ever presented as captured.

Policy
------

*Which registry a value belongs to.* A snapshot of registry R holds only values whose source is
R itself or a mirror that shows R's data:

==========  ===================================================================================
registry    source hosts that count as it
==========  ===================================================================================
``ctgov``   clinicaltrials.gov; its mirrors meddatax.com, ichgcp.net, healthscout.app,
            careacross.com, clincosm.com, curemydisease.com, crick.ai, trialx.com,
            trial2cure.com, centerwatch.com, smartpatients.com, clinicaltrialexchange.com,
            trials.co, trialfinderdata.org, inclinicaltrials.com, unitytrials.org,
            trials.braintumor.org, medifind.com and rarecancers.org.au, when the page shows
            a ClinicalTrials.gov record
``ctis``    ctis.eu, euclinicaltrials.eu; findtrial.co (``CTIS...`` pages), trial.medpath.com
            and studi-clinici.it when they show a CTIS record
``euctr``   clinicaltrialsregister.eu; WHO ICTRP (apps.who.int, ``EUCTR...`` records) and
            trial.medpath.com when they show an EU CTR record
context     everything else: press releases and news (atmpsweden.se, clinicaltrialsarena.com,
            targetedonc.com, marketscreener.com, ansa.it, endpts.com), HRA research summaries
            (hra.nhs.uk), publications and abstracts (jitc.bmj.com, ace.asco.org,
            sciencegate.app, scite.ai, researcher.life, cris.maastrichtuniversity.nl), NCI
            (cancer.gov), sponsors' and research programmes' pages (iovance.com,
            precisionmedicine.de), crcwarriors.org. Context goes into a recipe's ``notes``,
            never into a snapshot.
==========  ===================================================================================

:data:`SOURCE_HOSTS` is this table as data; :func:`build_native` refuses a recipe that cites a
source outside its registry's hosts.

*Attribution.* A value is used only when the facts tie it to a source of the snapshot's
registry: by its ``source_url``, by a label in the fact itself ("CT.gov: ...", "CTIS record
..."), or because every source the facts file lists is of that registry (then ``source_url`` in
the recipe is that list: "one of these; the facts do not say which"). A value the facts leave
unattributed among sources of several registries stays out. "not found" is never a value.

*Several values for one field.* The newest source wins; the others are kept in the recipe's
``alternatives`` with their sources and the reason they were not used. A value that cannot be
placed in one native field without guessing (a CTIS figure that could be the EEA or the
whole-trial count, a mirror's own status wording that maps to no native code) stays out and the
recipe's ``notes`` say why. A value the facts themselves flag as doubtful (a mirror's label they
call a likely error or conflicting) is not a native field either: it stays in ``alternatives``
with that reason (MedPath's "Phase 1" for EU CTR 2020-003629-45 and for CTIS 2024-514043-29-00).

*Native form.* Free text that wraps a value is reduced to the registry's own value ("Recruiting
(ct.gov snapshot; Last Update Posted February 28, 2020)" gives ``RECRUITING`` and
``lastUpdatePostDateStruct.date`` ``2020-02-28``); the exact fact text is the value's ``quote``.
Enrollment and date types (ACTUAL/ESTIMATED) only where the facts state them.

*Links.* A number the facts give among a trial's other ids, with a source and without doubt, is
a ``confirmed`` link; a plausible match ("possibly NCT05810792 - link NOT confirmed", or a match
that "rests on" a shared description) is a ``candidate``. A candidate's snapshot is built under
its own number, so no reconstruction ever claims what the page's number records. A
cross-reference goes inside a native record only when a source of that same registry shows it.
The links are written to ``snapshots/links.json`` (a sorted list of :class:`TrialLink`).

Recipe format
-------------

``{"registry", "trial_id", "url", "facts_file", "values": [...], "alternatives": [...],
"links": [...], "notes"}``; ``url`` is the registry API URL of :data:`API_URLS`, ``facts_file``
is relative to the shared folder (``../shared`` from the repo root). Each value is ``{"path", "value", "source_url", "quote", "fact"}``:
``path`` is the native field (dotted with ``[i]`` list indices for JSON; ``<member state>/<line
label>`` for EU CTR, with ``E.1.2[i]/<Level|Term|...>`` for MedDRA groups), ``fact`` a JSON
pointer into the facts file (``facts_file`` may be overridden per value), ``quote`` an exact
substring of the fact it points at, and ``normalized: true`` marks a value that is the native
form of its quote rather than a substring of it. Each link is ``{"trial_id", "strength",
"evidence", "quote", "fact", "note"}``; its other side is the recipe's own record.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.constants import RECORD_FORMATS, TRIAL_REGISTRIES, record_api_url
from pipeline.errors import ParseError
from pipeline.registries.euctr import EUDRACT_FIELD, LINE_LABELS, PHASE_ROWS, SPONSOR_CODE_FIELD
from pipeline.models import SnapshotEntry, TrialLink
from pipeline.store.snapshots import (
    DEFAULT_SNAPSHOTS_DIR,
    SnapshotStore,
    atomic_write_bytes,
    sha256_bytes,
    snapshot_relpath,
)

__all__ = [
    "API_URLS",
    "build_native",
    "DEFAULT_RECIPES_DIR",
    "links_json",
    "LINKS_NAME",
    "load_recipes",
    "main",
    "rebuild",
    "recipe_links",
    "recipe_source_urls",
    "SOURCE_HOSTS",
    "source_registries",
]

DEFAULT_RECIPES_DIR = DEFAULT_SNAPSHOTS_DIR / "reconstruction"
LINKS_NAME = "links.json"

# Where a registry's record would be fetched from (the snapshot's manifest url).
API_URLS = {registry: record_api_url(registry, "{id}") for registry in TRIAL_REGISTRIES}

_REQUIRED_KEYS = ("registry", "trial_id", "url", "facts_file", "values")

# The policy's table as data: the hosts whose pages may feed each registry's snapshot (a host
# matches itself and its subdomains). MedPath mirrors both CTIS and EU CTR records.
SOURCE_HOSTS: dict[str, frozenset[str]] = {
    "ctgov": frozenset({
        "clinicaltrials.gov", "meddatax.com", "ichgcp.net", "healthscout.app", "careacross.com",
        "clincosm.com", "curemydisease.com", "crick.ai", "trialx.com", "trial2cure.com",
        "centerwatch.com", "smartpatients.com", "clinicaltrialexchange.com", "trials.co",
        "trialfinderdata.org", "inclinicaltrials.com", "unitytrials.org", "trials.braintumor.org",
        "medifind.com", "rarecancers.org.au",
    }),
    "ctis": frozenset({"ctis.eu", "euclinicaltrials.eu", "findtrial.co", "trial.medpath.com", "studi-clinici.it"}),
    "euctr": frozenset({"clinicaltrialsregister.eu", "apps.who.int", "trial.medpath.com"}),
}

# ---------------------------------------------------------------------------------------------
# ClinicalTrials.gov API v2: key order of every object we write, as the API itself writes it
# (the real payloads, where they differ from the OpenAPI spec's listing). A key not listed here
# is refused, so a recipe cannot make up a field.
# ---------------------------------------------------------------------------------------------

_DATE_STRUCT = ["date", "type"]
_SPONSOR = ["name", "class"]
CTGOV_KEY_ORDER: dict[str, list[str]] = {
    "": ["protocolSection", "resultsSection", "documentSection", "annotationSection",
         "derivedSection", "hasResults"],
    "protocolSection": [
        "identificationModule", "statusModule", "sponsorCollaboratorsModule", "oversightModule",
        "descriptionModule", "conditionsModule", "designModule", "armsInterventionsModule",
        "outcomesModule", "eligibilityModule", "contactsLocationsModule", "referencesModule",
        "ipdSharingStatementModule",
    ],
    "protocolSection.identificationModule": [
        "nctId", "nctIdAliases", "orgStudyIdInfo", "secondaryIdInfos", "organization", "briefTitle",
        "officialTitle", "acronym",
    ],
    "protocolSection.identificationModule.orgStudyIdInfo": ["id", "type", "link"],
    "protocolSection.identificationModule.secondaryIdInfos[]": ["id", "type", "domain", "link"],
    "protocolSection.identificationModule.organization": ["fullName", "class"],
    "protocolSection.statusModule": [
        "statusVerifiedDate", "overallStatus", "lastKnownStatus", "delayedPosting", "whyStopped",
        "expandedAccessInfo", "startDateStruct", "primaryCompletionDateStruct",
        "completionDateStruct", "studyFirstSubmitDate", "studyFirstSubmitQcDate",
        "studyFirstPostDateStruct", "resultsFirstSubmitDate", "resultsFirstSubmitQcDate",
        "resultsFirstPostDateStruct", "lastUpdateSubmitDate", "lastUpdatePostDateStruct",
    ],
    "protocolSection.statusModule.startDateStruct": _DATE_STRUCT,
    "protocolSection.statusModule.primaryCompletionDateStruct": _DATE_STRUCT,
    "protocolSection.statusModule.completionDateStruct": _DATE_STRUCT,
    "protocolSection.statusModule.studyFirstPostDateStruct": _DATE_STRUCT,
    "protocolSection.statusModule.resultsFirstPostDateStruct": _DATE_STRUCT,
    "protocolSection.statusModule.lastUpdatePostDateStruct": _DATE_STRUCT,
    "protocolSection.sponsorCollaboratorsModule": ["responsibleParty", "leadSponsor", "collaborators"],
    "protocolSection.sponsorCollaboratorsModule.leadSponsor": _SPONSOR,
    "protocolSection.sponsorCollaboratorsModule.collaborators[]": _SPONSOR,
    "protocolSection.descriptionModule": ["briefSummary", "detailedDescription"],
    "protocolSection.conditionsModule": ["conditions", "keywords"],
    "protocolSection.designModule": [
        "studyType", "patientRegistry", "targetDuration", "phases", "designInfo", "enrollmentInfo",
    ],
    "protocolSection.designModule.enrollmentInfo": ["count", "type"],
    "protocolSection.armsInterventionsModule": ["armGroups", "interventions"],
    "protocolSection.armsInterventionsModule.armGroups[]": ["label", "type", "description", "interventionNames"],
    "protocolSection.armsInterventionsModule.interventions[]": [
        "type", "name", "description", "armGroupLabels", "otherNames",
    ],
    "protocolSection.outcomesModule": ["primaryOutcomes", "secondaryOutcomes"],
    "protocolSection.outcomesModule.primaryOutcomes[]": ["measure", "description", "timeFrame"],
    "protocolSection.outcomesModule.secondaryOutcomes[]": ["measure", "description", "timeFrame"],
    "protocolSection.eligibilityModule": [
        "eligibilityCriteria", "healthyVolunteers", "sex", "minimumAge", "maximumAge", "stdAges",
    ],
    "protocolSection.contactsLocationsModule": ["centralContacts", "overallOfficials", "locations"],
    "protocolSection.contactsLocationsModule.locations[]": [
        "facility", "status", "city", "state", "zip", "country", "contacts", "geoPoint",
    ],
}

# The closed vocabularies (from the OpenAPI spec) of the enum fields we write.
_CTGOV_ENUMS: dict[str, frozenset[str]] = {
    "protocolSection.statusModule.overallStatus": frozenset({
        "ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING",
        "RECRUITING", "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE", "NO_LONGER_AVAILABLE",
        "TEMPORARILY_NOT_AVAILABLE", "APPROVED_FOR_MARKETING", "WITHHELD", "UNKNOWN",
    }),
    "protocolSection.designModule.phases[]": frozenset(
        {"NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"}
    ),
    "protocolSection.designModule.enrollmentInfo.type": frozenset({"ACTUAL", "ESTIMATED"}),
    "protocolSection.identificationModule.secondaryIdInfos[].type": frozenset({
        "NIH", "FDA", "VA", "CDC", "AHRQ", "SAMHSA", "OTHER_GRANT", "EUDRACT_NUMBER", "CTIS",
        "REGISTRY", "OTHER",
    }),
    "protocolSection.armsInterventionsModule.interventions[].type": frozenset({
        "BEHAVIORAL", "BIOLOGICAL", "COMBINATION_PRODUCT", "DEVICE", "DIAGNOSTIC_TEST",
        "DIETARY_SUPPLEMENT", "DRUG", "GENETIC", "PROCEDURE", "RADIATION", "OTHER",
    }),
    "protocolSection.sponsorCollaboratorsModule.leadSponsor.class": frozenset({
        "NIH", "FED", "OTHER_GOV", "INDIV", "INDUSTRY", "NETWORK", "AMBIG", "OTHER", "UNKNOWN",
    }),
    "protocolSection.contactsLocationsModule.locations[].status": frozenset({
        "ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING",
        "RECRUITING", "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE",
    }),
}
for _struct in ("startDateStruct", "primaryCompletionDateStruct", "completionDateStruct",
                "studyFirstPostDateStruct", "resultsFirstPostDateStruct", "lastUpdatePostDateStruct"):
    _CTGOV_ENUMS[f"protocolSection.statusModule.{_struct}.type"] = frozenset({"ACTUAL", "ESTIMATED"})

# ---------------------------------------------------------------------------------------------
# EU CTR full-text download: the lines we may write, in the order the register writes them,
# each with the section headings that stand above it.
# ---------------------------------------------------------------------------------------------

EUCTR_PREAMBLE = (
    "This file contains full details on each clinical trial selected for download. Where "
    "multi-state trials have been downloaded full information for each of the member "
    "states/countries involved in the trial are included separately."
)
_A = ("A. Protocol Information",)
_B = ("B. Sponsor Information", "Sponsor 1")
_E1 = ("E. General Information on the Trial", "E.1 Medical condition or disease under investigation")
_E7 = ("E. General Information on the Trial", "E.6 and E.7 Scope of the trial", "E.7 Trial type and phase ")
_F4 = ("F. Population of Trial Subjects", "F.4 Planned number of subjects to be included")
EUCTR_LINES: list[tuple[str, tuple[str, ...]]] = [
    (EUDRACT_FIELD, ()),
    (SPONSOR_CODE_FIELD, ()),
    # The register pads this one line with a trailing space.
    ("National Competent Authority", ()),
    ("Clinical Trial Type", ()),
    ("Trial Status", ()),
    ("Date on which this record was first entered in the EudraCT database", ()),
    ("Link", ()),
    ("A.1 Member State Concerned", _A),
    ("A.2 EudraCT number", _A),
    ("A.3 Full title of the trial", _A),
    ("A.3.1 Title of the trial for lay people, in easily understood, i.e. non-technical, language", _A),
    ("A.3.2 Name or abbreviated title of the trial where available", _A),
    (LINE_LABELS["A.4.1"], _A),
    ("B.1.1 Name of Sponsor", _B),
    (LINE_LABELS["E.1.1"], _E1),
    ("E.1.2", (*_E1, "MedDRA Classification")),
    (LINE_LABELS["E.2.1"], ("E. General Information on the Trial", "E.2 Objective of the trial")),
    ("E.5.1 Primary end point(s)", ("E. General Information on the Trial", "E.5 End points")),
    *((LINE_LABELS[code], _E7) for code, _, _ in PHASE_ROWS),
    ("E.8.3 The trial involves single site in the Member State concerned",
     ("E. General Information on the Trial", "E.8 Design of the trial")),
    ("F.4.1 In the member state", _F4),
    (LINE_LABELS["F.4.2.1"], (*_F4, "F.4.2 For a multinational trial")),
    (LINE_LABELS["F.4.2.2"], (*_F4, "F.4.2 For a multinational trial")),
    ("P. End of Trial Status", ("P. End of Trial",)),
]
_EUCTR_LABELS = {label for label, _ in EUCTR_LINES}
# One MedDRA entry of E.1.2, in the register's order of its lines.
EUCTR_MEDDRA_FIELDS = ["Version", "Level", "Classification code", "Term", "System Organ Class"]
_EUCTR_TRAILING_SPACE = {"National Competent Authority"}
_MEMBER_STATE = re.compile(r"^[A-Z]{2}$")

_INDEX = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9]*)(?:\[(?P<index>\d+)\])?$")


# ---------------------------------------------------------------------------------------------
# Recipes
# ---------------------------------------------------------------------------------------------


def _recipe_name(recipe: dict[str, Any]) -> str:
    return f"reconstruction/{recipe.get('registry')}/{recipe.get('trial_id')}.json"


def load_recipes(folder: Path) -> list[dict[str, Any]]:
    """Every recipe under ``folder/<registry>/<id>.json``, sorted by registry and id.

    Args:
        folder: the recipes folder (``snapshots/reconstruction``).

    Returns:
        The recipes as dicts, in a stable order.

    Raises:
        ParseError: a recipe is not JSON, lacks a required key, its registry and trial id
            disagree with its place in the folder, or its url is not the registry's API URL.
    """
    recipes: list[dict[str, Any]] = []
    for registry in sorted(TRIAL_REGISTRIES):
        for path in sorted((folder / registry).glob("*.json")):
            try:
                recipe = json.loads(path.read_bytes())
            except json.JSONDecodeError as exc:
                raise ParseError(path, f"recipe is not JSON: {exc.msg} at line {exc.lineno}") from exc
            if not isinstance(recipe, dict):
                raise ParseError(path, "recipe is not a JSON object")
            missing = [key for key in _REQUIRED_KEYS if key not in recipe]
            if missing:
                raise ParseError(path, f"recipe lacks {', '.join(missing)}")
            if recipe["registry"] != registry or recipe["trial_id"] != path.stem:
                raise ParseError(
                    path, f"recipe says {recipe['registry']}/{recipe['trial_id']}, its place says {registry}/{path.stem}"
                )
            expected_url = API_URLS[registry].format(id=path.stem)
            if recipe["url"] != expected_url:
                raise ParseError(path, f"recipe url is {recipe['url']!r}, the registry's is {expected_url!r}")
            recipes.append(recipe)
    return recipes


def recipe_source_urls(recipe: dict[str, Any]) -> list[str]:
    """The distinct source URLs of a recipe's values and alternatives, in order of appearance."""
    urls: list[str] = []
    for item in [*recipe["values"], *recipe.get("alternatives", [])]:
        given = item.get("source_url")
        for url in given if isinstance(given, list) else [given]:
            if url and url not in urls:
                urls.append(url)
    return urls


def source_registries(url: str) -> frozenset[str]:
    """The registries whose data a source URL's host may show (empty for context sources)."""
    host = (urlsplit(url).hostname or "").lower()
    return frozenset(
        registry
        for registry, hosts in SOURCE_HOSTS.items()
        if any(host == h or host.endswith("." + h) for h in hosts)
    )


def recipe_links(recipes: Iterable[dict[str, Any]]) -> list[TrialLink]:
    """The cross-registry links the recipes declare, sorted by trial, registry and number."""
    links = [
        TrialLink(
            trial_id=link["trial_id"],
            other_id=recipe["trial_id"],
            other_registry=recipe["registry"],
            strength=link["strength"],
            evidence=link["evidence"],
            note=link.get("note"),
        )
        for recipe in recipes
        for link in recipe.get("links", [])
    ]
    return sorted(links, key=lambda link: (link.trial_id, link.other_registry, link.other_id))


def links_json(links: Sequence[TrialLink]) -> bytes:
    """``snapshots/links.json``: the links as a JSON list, 2-space indent, trailing newline."""
    data = [link.model_dump(mode="json") for link in links]
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


# ---------------------------------------------------------------------------------------------
# Native formats
# ---------------------------------------------------------------------------------------------


def build_native(recipe: dict[str, Any]) -> bytes:
    """The bytes of a recipe's record in its registry's own format.

    CT.gov JSON keeps the API's key order; CTIS JSON has sorted keys; both use a 2-space indent
    and end with a newline. EU CTR text has one block per member state, sorted by state code.

    Args:
        recipe: one recipe (see the module docstring).

    Returns:
        The snapshot's bytes; the same recipe always gives the same bytes.

    Raises:
        ParseError: the recipe names an unknown registry or field, a value outside the field's
            vocabulary, list indices with gaps, or a source that is not of its registry.
    """
    registry = recipe.get("registry")
    for url in recipe_source_urls(recipe):
        if registry not in source_registries(url):
            raise ParseError(_recipe_name(recipe), f"{url} is not a source of {registry} data (see SOURCE_HOSTS)")
    values = [(item["path"], item["value"]) for item in recipe["values"]]
    if registry == "ctgov":
        tree = _tree(recipe, values)
        _check_ctgov(recipe, tree, "")
        return (json.dumps(_ordered(tree, ""), indent=2, ensure_ascii=False) + "\n").encode()
    if registry == "ctis":
        tree = _tree(recipe, values)
        return (json.dumps(tree, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()
    if registry == "euctr":
        return _euctr_text(recipe, values).encode()
    raise ParseError(_recipe_name(recipe), f"unknown registry {registry!r}")


def _tree(recipe: dict[str, Any], values: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Nest dotted ``a.b[0].c`` paths into objects and lists."""
    root: dict[str, Any] = {}
    for path, value in values:
        node: Any = root
        steps = path.split(".")
        for position, step in enumerate(steps):
            match = _INDEX.match(step)
            if not match:
                raise ParseError(_recipe_name(recipe), f"bad path {path!r}")
            key, index = match["key"], match["index"]
            last = position == len(steps) - 1
            if index is None:
                if last:
                    if key in node:
                        raise ParseError(_recipe_name(recipe), f"{path!r} is given twice")
                    node[key] = value
                else:
                    node = node.setdefault(key, {})
                continue
            items = node.setdefault(key, [])
            i = int(index)
            if i > len(items):
                raise ParseError(_recipe_name(recipe), f"{path!r} skips list positions")
            if i == len(items):
                items.append(value if last else {})
            elif last:
                raise ParseError(_recipe_name(recipe), f"{path!r} is given twice")
            node = items[i]
    return root


def _check_ctgov(recipe: dict[str, Any], node: Any, where: str) -> None:
    """Refuse keys the API does not write there and values outside an enum."""
    if isinstance(node, dict):
        known = CTGOV_KEY_ORDER.get(where)
        for key, child in node.items():
            if known is None or key not in known:
                raise ParseError(_recipe_name(recipe), f"{where + '.' if where else ''}{key} is not a field we write")
            _check_ctgov(recipe, child, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for child in node:
            _check_ctgov(recipe, child, f"{where}[]")
    elif where in _CTGOV_ENUMS and node not in _CTGOV_ENUMS[where]:
        raise ParseError(_recipe_name(recipe), f"{where} {node!r} is not in the API's vocabulary")


def _ordered(node: Any, where: str) -> Any:
    if isinstance(node, dict):
        order = CTGOV_KEY_ORDER[where]
        return {
            key: _ordered(node[key], f"{where}.{key}" if where else key)
            for key in sorted(node, key=order.index)
        }
    if isinstance(node, list):
        return [_ordered(child, f"{where}[]") for child in node]
    return node


def _euctr_text(recipe: dict[str, Any], values: Iterable[tuple[str, Any]]) -> str:
    """The full-text download: the preamble, then one block per member state, each ending in a
    blank line as the register's own file does."""
    blocks: dict[str, dict[str, Any]] = {}
    for path, value in values:
        state, _, label = path.partition("/")
        if not _MEMBER_STATE.match(state):
            raise ParseError(_recipe_name(recipe), f"{path!r} does not start with a member state code")
        block = blocks.setdefault(state, {})
        if label.startswith("E.1.2["):
            match = re.fullmatch(r"E\.1\.2\[(\d+)\]/(.+)", label)
            if not match or match[2] not in EUCTR_MEDDRA_FIELDS:
                raise ParseError(_recipe_name(recipe), f"{path!r} is not a MedDRA field we write")
            entries = block.setdefault("E.1.2", [])
            i = int(match[1])
            if i > len(entries):
                raise ParseError(_recipe_name(recipe), f"{path!r} skips list positions")
            if i == len(entries):
                entries.append({})
            entries[i][match[2]] = value
            continue
        if label not in _EUCTR_LABELS or label == "E.1.2":
            raise ParseError(_recipe_name(recipe), f"{label!r} is not an EU CTR line we write")
        if label in block:
            raise ParseError(_recipe_name(recipe), f"{path!r} is given twice")
        block[label] = value
    lines = [EUCTR_PREAMBLE, ""]
    for state in sorted(blocks):
        lines.extend(_euctr_block(blocks[state]))
    return "\n".join(lines) + "\n"


def _euctr_block(block: dict[str, Any]) -> list[str]:
    """One member state's record: 'Summary', its lines, a heading above each group, a blank line."""
    lines = ["Summary"]
    shown: list[str] = []
    for label, headings in EUCTR_LINES:
        if label not in block:
            continue
        for heading in headings:
            if heading in shown:
                continue
            if heading[1:3] == ". ":  # a section letter: the register sets it off by a blank line
                lines.append("")
            lines.append(heading)
            shown.append(heading)
        if label == "E.1.2":
            for entry in block[label]:
                lines.append("E.1.2 Medical condition or disease under investigation:")
                lines.extend(f"E.1.2 {field}: {entry[field]}" for field in EUCTR_MEDDRA_FIELDS if field in entry)
            continue
        pad = " " if label in _EUCTR_TRAILING_SPACE else ""
        lines.append(f"{label}: {block[label]}{pad}")
    lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------
# IO
# ---------------------------------------------------------------------------------------------


def rebuild(store: SnapshotStore, recipes_dir: Path, built_at: datetime) -> list[SnapshotEntry]:
    """Write every recipe's snapshot into ``store`` as reconstructed, and ``links.json`` beside it.

    A snapshot whose bytes and sources are unchanged keeps its ``fetched_at``, so rebuilding
    twice changes nothing. A captured snapshot is never overwritten (a capture beats any
    reconstruction), and a reconstructed one that no recipe builds any more is removed.

    Args:
        store: the snapshot store to write into.
        recipes_dir: the recipes folder.
        built_at: when this build happened (UTC), stamped on new or changed snapshots.

    Returns:
        The manifest entries of the reconstructed snapshots, sorted by path.

    Raises:
        ParseError: a recipe is malformed (see :func:`load_recipes` and :func:`build_native`).
    """
    recipes = load_recipes(recipes_dir)
    existing = {entry.path: entry for entry in store.entries()}
    built: list[SnapshotEntry] = []
    for recipe in recipes:
        ext, content_type = RECORD_FORMATS[recipe["registry"]]
        path = snapshot_relpath(recipe["registry"], recipe["trial_id"], ext)
        previous = existing.get(path)
        if previous is not None and previous.provenance != "reconstructed":
            continue
        content = build_native(recipe)
        source_urls = recipe_source_urls(recipe)
        fetched_at = built_at
        if (
            previous is not None
            and previous.sha256 == sha256_bytes(content)
            and previous.source_urls == source_urls
            and previous.url == recipe["url"]
            and (store.root / path).exists()
        ):
            fetched_at = previous.fetched_at or built_at
        built.append(store.write(
            recipe["registry"], recipe["trial_id"], ext, content,
            registry=recipe["registry"],
            url=recipe["url"],
            provenance="reconstructed",
            trial_id=recipe["trial_id"],
            content_type=content_type,
            source_urls=source_urls,
            fetched_at=fetched_at,
        ))
    _prune(store, {entry.path for entry in built})
    atomic_write_bytes(store.root / LINKS_NAME, links_json(recipe_links(recipes)))
    return sorted(built, key=lambda entry: entry.path)


def _prune(store: SnapshotStore, kept: set[str]) -> None:
    """Drop reconstructed snapshots that no recipe builds any more."""
    entries = store.entries()
    stale = [e for e in entries if e.provenance == "reconstructed" and e.path not in kept]
    if not stale:
        return
    for entry in stale:
        store.path_of(entry).unlink(missing_ok=True)
    store.save_entries(e for e in entries if e not in stale)


def main(argv: Sequence[str] = ()) -> int:
    """``python -m pipeline.store.reconstruct``: rebuild the repo's reconstructed snapshots.

    ``argv`` defaults to no arguments (not ``sys.argv``), so ``python -m pipeline reconstruct``
    can call it as it is.
    """
    parser = argparse.ArgumentParser(prog="python -m pipeline.store.reconstruct",
                                     description="Rebuild the reconstructed snapshots from their recipes.")
    parser.add_argument("--snapshots", type=Path, default=DEFAULT_SNAPSHOTS_DIR, help="snapshots folder")
    parser.add_argument("--recipes", type=Path, default=None, help="recipes folder (default: <snapshots>/reconstruction)")
    args = parser.parse_args(argv)
    recipes_dir = args.recipes or args.snapshots / "reconstruction"
    entries = rebuild(SnapshotStore(args.snapshots), recipes_dir, datetime.now(UTC))
    for entry in entries:
        print(f"{entry.path}  {entry.sha256[:12]}  {entry.fetched_at:%Y-%m-%dT%H:%M:%SZ}")
    print(f"{len(entries)} reconstructed snapshots, links in {args.snapshots / LINKS_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
