"""Vocabularies shared by the registry parsers and reconciliation.

Every registry words statuses, phases, countries and dates its own way. The functions here
put them on one vocabulary each, never raising on a value they do not know:

* :func:`normalize_status` -> :class:`~pipeline.models.TrialStatus` (table: ``STATUS_MAP``)
* :func:`parse_phases` -> sorted list of :class:`~pipeline.models.Phase`
* :func:`normalize_country` -> ISO 3166-1 alpha-2 code
* :func:`parse_partial_date` -> :class:`~pipeline.models.PartialDate`

Sources for the tables: the CT.gov enums are from the official OpenAPI spec (ctg-oas-v2 2.0.5,
``OverallStatus``); the CTIS numeric status codes (``ctStatus`` / ``ctPublicStatusCode`` /
``mscPublicStatusCode`` of the 2024 API) and trial-phase codes are the value lists the ctrdata
R package documents (``f.statusRecruitment``, ``f.trialPhase``) and agree with the labels and
codes side by side in the CTIS samples; the EU CTR labels are those of the register's
"Trial status" field.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

import pycountry

from pipeline.models import PartialDate, Phase, TrialStatus

S = TrialStatus

# ---------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------

# (registry, label as the registry writes it, normalized status). "page" stands for the
# plain-language labels of consumer pages such as clinicaltrials.eu. Choices worth knowing:
# - CTIS "Authorised" and EU CTR "Ongoing" say the trial may run but not whether it recruits:
#   ONGOING, not RECRUITING.
# - Withdrawn, revoked, not authorised, prohibited, cancelled and expired trials never ran (or
#   were stopped before running): WITHDRAWN.
# - CTIS "Ended" covers normal and early ends alike (early termination is only told by the
#   events list), so it maps to COMPLETED; EU CTR "Prematurely Ended" is TERMINATED.
# - EU CTR "GB - no longer in EU/EEA" and "Trial now transitioned" say where the record went,
#   not how the trial is doing: UNKNOWN.
# - CT.gov expanded-access statuses: AVAILABLE is open to patients (RECRUITING);
#   NO_LONGER_AVAILABLE and APPROVED_FOR_MARKETING are over (COMPLETED);
#   TEMPORARILY_NOT_AVAILABLE is SUSPENDED; WITHHELD tells nothing (UNKNOWN).
_STATUS_TABLE: tuple[tuple[str, str, TrialStatus], ...] = (
    ("ctgov", "NOT_YET_RECRUITING", S.NOT_YET_RECRUITING),
    ("ctgov", "RECRUITING", S.RECRUITING),
    ("ctgov", "ENROLLING_BY_INVITATION", S.ENROLLING_BY_INVITATION),
    ("ctgov", "ACTIVE_NOT_RECRUITING", S.ACTIVE_NOT_RECRUITING),
    ("ctgov", "SUSPENDED", S.SUSPENDED),
    ("ctgov", "TERMINATED", S.TERMINATED),
    ("ctgov", "COMPLETED", S.COMPLETED),
    ("ctgov", "WITHDRAWN", S.WITHDRAWN),
    ("ctgov", "UNKNOWN", S.UNKNOWN),
    ("ctgov", "AVAILABLE", S.RECRUITING),
    ("ctgov", "NO_LONGER_AVAILABLE", S.COMPLETED),
    ("ctgov", "TEMPORARILY_NOT_AVAILABLE", S.SUSPENDED),
    ("ctgov", "APPROVED_FOR_MARKETING", S.COMPLETED),
    ("ctgov", "WITHHELD", S.UNKNOWN),
    ("ctis", "Under evaluation", S.NOT_YET_RECRUITING),
    ("ctis", "Authorised", S.ONGOING),
    ("ctis", "Authorised, not started", S.NOT_YET_RECRUITING),
    ("ctis", "Authorised, recruitment pending", S.NOT_YET_RECRUITING),
    ("ctis", "Authorised, recruiting", S.RECRUITING),
    ("ctis", "Ongoing, recruiting", S.RECRUITING),
    ("ctis", "Ongoing, not yet recruiting", S.NOT_YET_RECRUITING),
    ("ctis", "Ongoing, recruitment ended", S.ACTIVE_NOT_RECRUITING),
    ("ctis", "Ongoing, not recruiting", S.ACTIVE_NOT_RECRUITING),
    ("ctis", "Temporarily halted", S.SUSPENDED),
    ("ctis", "Halted", S.SUSPENDED),
    ("ctis", "Suspended", S.SUSPENDED),
    ("ctis", "Restarted", S.ONGOING),
    ("ctis", "Ended", S.COMPLETED),
    ("ctis", "Expired", S.WITHDRAWN),
    ("ctis", "Revoked", S.WITHDRAWN),
    ("ctis", "Not authorised", S.WITHDRAWN),
    ("ctis", "Cancelled", S.WITHDRAWN),
    ("ctis", "Withdrawn", S.WITHDRAWN),
    ("euctr", "Ongoing", S.ONGOING),
    ("euctr", "Completed", S.COMPLETED),
    ("euctr", "Prematurely Ended", S.TERMINATED),
    ("euctr", "Temporarily Halted", S.SUSPENDED),
    ("euctr", "Restarted", S.ONGOING),
    ("euctr", "Not Authorised", S.WITHDRAWN),
    ("euctr", "Prohibited by CA", S.WITHDRAWN),
    ("euctr", "GB - no longer in EU/EEA", S.UNKNOWN),
    ("euctr", "Trial now transitioned", S.UNKNOWN),
    ("page", "Not yet recruiting", S.NOT_YET_RECRUITING),
    ("page", "Recruiting", S.RECRUITING),
    ("page", "Enrolling by invitation", S.ENROLLING_BY_INVITATION),
    ("page", "Active, not recruiting", S.ACTIVE_NOT_RECRUITING),
    ("page", "Authorised", S.ONGOING),
    ("page", "Authorized", S.ONGOING),
    ("page", "Ongoing", S.ONGOING),
    ("page", "Active", S.ONGOING),
    ("page", "Suspended", S.SUSPENDED),
    ("page", "Terminated", S.TERMINATED),
    ("page", "Completed", S.COMPLETED),
    ("page", "Ended", S.COMPLETED),
    ("page", "Withdrawn", S.WITHDRAWN),
    ("page", "Unknown status", S.UNKNOWN),
)

CTIS_STATUS_CODES: dict[int, str] = {
    1: "Under evaluation",
    2: "Authorised, recruitment pending",
    3: "Authorised, recruiting",
    4: "Ongoing, recruiting",
    5: "Ongoing, recruitment ended",
    6: "Temporarily halted",
    7: "Suspended",
    8: "Ended",
    9: "Expired",
    10: "Revoked",
    11: "Not authorised",
    12: "Cancelled",
}
"""CTIS numeric trial status (``ctStatus``, ``ctPublicStatusCode``, ``mscPublicStatusCode``,
the ``"Poland:4"`` country entries) -> the CTIS label it stands for."""


def status_key(label: str) -> str:
    """The lookup key of a status label: casefolded, punctuation and spaces collapsed.

    ``"Active, not recruiting"`` and ``"ACTIVE_NOT_RECRUITING"`` share the key
    ``"active not recruiting"``.
    """
    text = unicodedata.normalize("NFKD", label)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.split(r"[\W_]+", text.casefold())).strip()


def _build_status_map() -> dict[str, TrialStatus]:
    mapping: dict[str, TrialStatus] = {}
    for registry, label, status in _STATUS_TABLE:
        key = status_key(label)
        # Labels shared by registries must mean the same thing, or the map would lie.
        if mapping.setdefault(key, status) is not status:
            raise ValueError(f"status label {label!r} ({registry}) maps two ways")
    return mapping


STATUS_MAP: dict[str, TrialStatus] = _build_status_map()
"""Normalized status label (see :func:`status_key`) -> status, for every registry's labels."""

# A member-state prefix such as "NL:Authorised" or "Poland:4" (CTIS lists).
_STATE_PREFIX = re.compile(r"^\s*[A-Za-z][A-Za-z .'-]*:\s*(?=\S)")


def normalize_status(raw: str | int | None, registry: str | None = None) -> TrialStatus | None:
    """Put a registry's status label or code on the common vocabulary.

    Args:
        raw: the label ("Ongoing, recruiting", "ACTIVE_NOT_RECRUITING"), or a CTIS numeric
            code (4 or "4"); a member-state prefix ("NL:Authorised") is ignored.
        registry: "ctgov", "ctis", "euctr", "cteu" or None. Numeric codes are read as CTIS
            codes unless another registry is named (no other registry uses numbers).

    Returns:
        None for None or a blank value, UNKNOWN for a label or code not in the tables.
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return _status_from_code(raw, registry)
    return _status_from_text(raw, registry)


# Registries repeat a handful of labels across thousands of records: the parsers call these
# per item, so each pure string lookup is cached (bounded, in case a corpus has free text).
@lru_cache(maxsize=4096)
def _status_from_text(raw: str, registry: str | None) -> TrialStatus | None:
    text = _STATE_PREFIX.sub("", raw).strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return _status_from_code(int(text), registry)
    return STATUS_MAP.get(status_key(text), TrialStatus.UNKNOWN)


def _status_from_code(code: int, registry: str | None) -> TrialStatus:
    if registry not in (None, "ctis"):
        return TrialStatus.UNKNOWN
    label = CTIS_STATUS_CODES.get(code)
    return STATUS_MAP[status_key(label)] if label else TrialStatus.UNKNOWN


def ctis_status_label(raw: str | int | None) -> str | None:
    """The CTIS label of a numeric status code (4 -> "Ongoing, recruiting"); labels pass through."""
    if raw is None or isinstance(raw, bool):
        return None
    text = str(raw).strip()
    if text.isascii() and text.isdigit():
        return CTIS_STATUS_CODES.get(int(text), text)
    return text or None


# Which status speaks for a trial run in several member states: the liveliest one. A trial
# still recruiting anywhere is recruiting; it has only ended when it ended everywhere, and it
# completed if it completed anywhere (one state closing early does not end the trial early).
_OVERALL_PRECEDENCE: tuple[TrialStatus, ...] = (
    S.RECRUITING,
    S.ENROLLING_BY_INVITATION,
    S.ONGOING,
    S.ACTIVE_NOT_RECRUITING,
    S.NOT_YET_RECRUITING,
    S.SUSPENDED,
    S.COMPLETED,
    S.TERMINATED,
    S.WITHDRAWN,
    S.UNKNOWN,
)


def overall_status(statuses: list[TrialStatus | None]) -> TrialStatus | None:
    """One status for a trial from its per-member-state statuses.

    The first of RECRUITING, ENROLLING_BY_INVITATION, ONGOING, ACTIVE_NOT_RECRUITING,
    NOT_YET_RECRUITING, SUSPENDED, COMPLETED, TERMINATED, WITHDRAWN, UNKNOWN that any state has.

    Returns:
        None when no state has a status.
    """
    present = {status for status in statuses if status is not None}
    return next((status for status in _OVERALL_PRECEDENCE if status in present), None)


def status_mapping_rows() -> list[tuple[str, str, str]]:
    """The status mapping as rows for the data dictionary.

    Returns:
        (registry, registry label or code, normalized status) for every label of every
        registry, then one row per CTIS numeric code as ``"4 (Ongoing, recruiting)"``.
    """
    rows = [(registry, label, status.value) for registry, label, status in _STATUS_TABLE]
    for code, label in CTIS_STATUS_CODES.items():
        rows.append(("ctis", f"{code} ({label})", STATUS_MAP[status_key(label)].value))
    return rows


# ---------------------------------------------------------------------------------------------
# Phase
# ---------------------------------------------------------------------------------------------

ICH_E8_CATEGORIES: dict[Phase, str] = {
    Phase.PHASE1: "Human pharmacology (Phase I)",
    Phase.PHASE2: "Therapeutic exploratory (Phase II)",
    Phase.PHASE3: "Therapeutic confirmatory (Phase III)",
    Phase.PHASE4: "Therapeutic use (Phase IV)",
}
"""The ICH E8 names of the phases, as the EU registers write them (EU CTR E.7.1-E.7.4, CTIS codes 4-6)."""

CTIS_PHASE_CODES: dict[int, tuple[str, tuple[Phase, ...]]] = {
    1: ("Human Pharmacology (Phase I) - First administration to humans", (Phase.PHASE1,)),
    2: ("Human Pharmacology (Phase I) - Bioequivalence Study", (Phase.PHASE1,)),
    3: ("Human Pharmacology (Phase I) - Other", (Phase.PHASE1,)),
    4: (ICH_E8_CATEGORIES[Phase.PHASE2], (Phase.PHASE2,)),
    5: (ICH_E8_CATEGORIES[Phase.PHASE3], (Phase.PHASE3,)),
    6: (ICH_E8_CATEGORIES[Phase.PHASE4], (Phase.PHASE4,)),
    7: ("Phase I and Phase II (Integrated) - First administration to humans", (Phase.PHASE1, Phase.PHASE2)),
    8: ("Phase I and Phase II (Integrated) - Bioequivalence Study", (Phase.PHASE1, Phase.PHASE2)),
    9: ("Phase I and Phase II (Integrated) - Other", (Phase.PHASE1, Phase.PHASE2)),
    10: ("Phase II and Phase III (Integrated)", (Phase.PHASE2, Phase.PHASE3)),
    11: ("Phase III and phase IV (Integrated)", (Phase.PHASE3, Phase.PHASE4)),
}
"""CTIS ``trialCategory.trialPhase`` code -> (label, phases)."""

_PHASE_ORDER = {phase: i for i, phase in enumerate(Phase)}
_NUMERAL = {"i": Phase.PHASE1, "ii": Phase.PHASE2, "iii": Phase.PHASE3, "iv": Phase.PHASE4,
            "1": Phase.PHASE1, "2": Phase.PHASE2, "3": Phase.PHASE3, "4": Phase.PHASE4}
# One phase numeral, optionally with a sub-phase letter ("2a", "IIb"); never the start of a word.
_NUM = r"(?:iv|iii|ii|i|[1-4])[a-d]?(?![a-z0-9])"
_SEP = r"\s*(?:/|-|–|\+|,|&|\band\b|\bor\b|\bto\b)\s*(?:phase\s*_?\s*)?"
_PHASE_RUN = re.compile(rf"\bphase\s*_?\s*({_NUM}(?:{_SEP}{_NUM})*)")
_EARLY = re.compile(r"\bearly\s*_?\s*phase\s*_?\s*(?:1|i)(?![a-z0-9])")
_NOT_APPLICABLE = {"na", "n a", "not applicable"}


def parse_phases(raw: str | list[str] | None) -> list[Phase]:
    """Read the phases a registry value names.

    Understands CT.gov enums ("PHASE2", "EARLY_PHASE1", "NA"), plain text ("Phase 1/2a",
    "Phase I/II", "Early Phase 1", "Not Applicable"), CTIS labels ("Therapeutic exploratory
    (Phase II)", "Phase I and Phase II (Integrated) - Other") and CTIS numeric codes ("4").

    Returns:
        The phases, sorted and without repeats; [] for None or anything not understood.
    """
    if raw is None:
        return []
    values = [raw] if isinstance(raw, str) else list(raw)
    found: set[Phase] = set()
    for value in values:
        if isinstance(value, str):
            found.update(_phases_of(value))
    return sorted(found, key=_PHASE_ORDER.__getitem__)


@lru_cache(maxsize=4096)
def _phases_of(value: str) -> frozenset[Phase]:
    return frozenset(_read_phases(value))


def _read_phases(value: str) -> set[Phase]:
    text = value.strip().casefold()
    if not text:
        return set()
    if text.isascii() and text.isdigit():
        entry = CTIS_PHASE_CODES.get(int(text))
        return set(entry[1]) if entry else set()
    if status_key(text) in _NOT_APPLICABLE:
        return {Phase.NA}
    found: set[Phase] = set()
    if _EARLY.search(text):
        found.add(Phase.EARLY_PHASE1)
        text = _EARLY.sub(" ", text)
    for run in _PHASE_RUN.finditer(text):
        for numeral in re.findall(_NUM, run.group(1)):
            found.add(_NUMERAL[numeral.rstrip("abcd") or numeral])
    return found


# ---------------------------------------------------------------------------------------------
# Country
# ---------------------------------------------------------------------------------------------

# Names registries use that pycountry does not know (keys are _country_key()s).
_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom of great britain and northern ireland": "GB",
    "el": "GR",  # the EU's own code for Greece
    "holland": "NL",
    "the netherlands": "NL",
    "netherlands the": "NL",
    "czech republic": "CZ",
    "turkey": "TR",
    "turkiye": "TR",
    "russia": "RU",
    "macedonia": "MK",
    "republic of macedonia": "MK",
    "the former yugoslav republic of macedonia": "MK",
    "macedonia the former yugoslav republic of": "MK",
    "south korea": "KR",
    "korea south": "KR",
    "republic of korea": "KR",
    "korea": "KR",
    "north korea": "KP",
    "korea democratic people s republic of": "KP",
    "ivory coast": "CI",
    "cote d ivoire": "CI",
    "kosovo": "XK",  # user-assigned code the EU and many registries use
    "brunei": "BN",
    "cape verde": "CV",
    "swaziland": "SZ",
    "palestine": "PS",
    "palestinian territories": "PS",
    "palestinian territory occupied": "PS",
    "micronesia": "FM",
    "macau": "MO",
    "macao": "MO",
    "reunion": "RE",
    "vatican": "VA",
    "vatican city": "VA",
    "holy see vatican city state": "VA",
    "usa": "US",
    "united states of america": "US",
    "u s": "US",
    "u s a": "US",
    "burma": "MM",
    "east timor": "TL",
    "zaire": "CD",
    "democratic republic of the congo": "CD",
    "congo the democratic republic of the": "CD",
    "republic of the congo": "CG",
    "libyan arab jamahiriya": "LY",
    "iran islamic republic of": "IR",
    "moldova republic of": "MD",
    "republic of moldova": "MD",
    "tanzania united republic of": "TZ",
    "taiwan province of china": "TW",
    "hong kong sar": "HK",
    "virgin islands u s": "VI",
    "us virgin islands": "VI",
    "saint martin": "MF",
    "slovak republic": "SK",
}


def _country_key(text: str) -> str:
    return status_key(text)


def _build_country_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name", "alpha_3"):
            value = getattr(country, attr, None)
            if value:
                index.setdefault(_country_key(value), country.alpha_2)
    index.update(_COUNTRY_ALIASES)
    return index


_COUNTRY_INDEX = _build_country_index()
_ALPHA2 = {country.alpha_2 for country in pycountry.countries} | {"XK"}


@lru_cache(maxsize=8192)
def normalize_country(raw: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of a country as a registry writes it.

    Takes names ("The Netherlands", "Korea, Republic of", "Türkiye"), alpha-2 and alpha-3
    codes ("NL", "nld"), the EU's "EL" and "UK", and CTIS entries with a status after a colon
    ("NL:Authorised", "Poland:4").

    Returns:
        The code, or None for a blank or unknown country.
    """
    if not raw:
        return None
    text = raw.split(":", 1)[0].strip()
    if not text:
        return None
    if len(text) == 2 and text.isalpha() and text.upper() in _ALPHA2:
        return text.upper()
    key = _country_key(text)
    if key not in _COUNTRY_INDEX and key.startswith("the "):
        key = key[4:]
    return _COUNTRY_INDEX.get(key)


@lru_cache(maxsize=512)
def country_name(code: str | None) -> str | None:
    """The common English name of an ISO 3166-1 alpha-2 code ("DE" -> "Germany",
    "KR" -> "South Korea"); None for a code that names no country."""
    if not code:
        return None
    if code.upper() == "XK":
        return "Kosovo"
    country = pycountry.countries.get(alpha_2=code.upper())
    if country is None:
        return None
    return getattr(country, "common_name", None) or country.name


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------

# English month names, spelled out here because strftime would follow the locale.
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december")
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, 1)} | {
    name[:3]: i for i, name in enumerate(_MONTH_NAMES, 1)} | {"sept": 9}
_ISO = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2})(?:[t ]\d{1,2}:\d{2}.*)?)?)?$", re.ASCII)
_DMY = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$", re.ASCII)
_MONTH_YEAR = re.compile(r"^([a-z]+)\.?,?\s+(\d{4})$", re.ASCII)
_MONTH_DAY_YEAR = re.compile(r"^([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$", re.ASCII)
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?,?\s+(\d{4})$", re.ASCII)


@lru_cache(maxsize=8192)
def parse_partial_date(raw: str | None) -> PartialDate | None:
    """Read a date as precisely as it is given.

    Understands "2023", "2023-03", "2023-03-30", ISO datetimes ("2024-04-24T15:14:59.077"),
    "March 2023", "March 30, 2023", "30 March 2023" and day-first "30/03/2023" (the European
    registries' order).

    Returns:
        PartialDate with the value as "YYYY", "YYYY-MM" or "YYYY-MM-DD" and ``raw`` set when
        the text differed from the value; None for None, blanks and anything that is not a
        real date.
    """
    if raw is None:
        return None
    text = " ".join(raw.split())
    if not text:
        return None
    parts = _date_parts(text.casefold())
    if parts is None:
        return None
    year, month, day = parts
    if not 1000 <= year <= 9999:
        return None
    try:
        date(year, month or 1, day or 1)
    except ValueError:
        return None
    if day is not None and month is not None:
        value, precision = f"{year:04d}-{month:02d}-{day:02d}", "day"
    elif month is not None:
        value, precision = f"{year:04d}-{month:02d}", "month"
    else:
        value, precision = f"{year:04d}", "year"
    return PartialDate(value=value, precision=precision, raw=None if raw == value else raw)


def _date_parts(text: str) -> tuple[int, int | None, int | None] | None:
    if m := _ISO.match(text):
        return int(m[1]), _int(m[2]), _int(m[3])
    if m := _DMY.match(text):
        return int(m[3]), int(m[2]), int(m[1])
    if (m := _MONTH_YEAR.match(text)) and m[1] in _MONTHS:
        return int(m[2]), _MONTHS[m[1]], None
    if (m := _MONTH_DAY_YEAR.match(text)) and m[1] in _MONTHS:
        return int(m[3]), _MONTHS[m[1]], int(m[2])
    if (m := _DAY_MONTH_YEAR.match(text)) and m[2] in _MONTHS:
        return int(m[3]), _MONTHS[m[2]], int(m[1])
    return None


def _int(text: str | None) -> int | None:
    return int(text) if text else None
