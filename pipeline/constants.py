"""The pipeline's fixed facts, each written once: the registries, their addresses, the order
verdicts are shown in.

Other facts have their own one home: trial-number patterns in :mod:`pipeline.ids`, the package's
folders and default folders in :mod:`pipeline.paths`, exit statuses in
:class:`pipeline.errors.ExitStatus`, the output schema in :mod:`pipeline.models`.
"""

from __future__ import annotations

from typing import Literal, get_args
from urllib.parse import quote

from pipeline.models import Registry, Verdict

__all__ = [
    "API_BASE_URLS",
    "RECORD_FORMATS",
    "REGISTRIES",
    "TRIAL_REGISTRIES",
    "TrialRegistry",
    "VERDICT_ORDER",
    "record_api_url",
    "registry_page_url",
]

# ---------------------------------------------------------------------------------------------
# Registries
# ---------------------------------------------------------------------------------------------

REGISTRIES: tuple[Registry, ...] = get_args(Registry)
"""Every source of trial records, each a folder of the snapshot store: ctgov, ctis, euctr, cteu."""

TrialRegistry = Literal["ctgov", "ctis", "euctr"]
"""A registry that issues trial numbers, whose records are fetched by number and compared with
the page (clinicaltrials.eu, the page's own site, is neither)."""
TRIAL_REGISTRIES: tuple[TrialRegistry, ...] = get_args(TrialRegistry)
assert set(TRIAL_REGISTRIES) <= set(REGISTRIES)

RECORD_FORMATS: dict[TrialRegistry, tuple[str, str]] = {
    "ctgov": ("json", "application/json"),
    "ctis": ("json", "application/json"),
    "euctr": ("txt", "text/plain; charset=utf-8"),
}
"""Extension and content type of each registry's record snapshot, stored as
``<registry>/<number>.<extension>`` (see :mod:`pipeline.store.snapshots`)."""

# ---------------------------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------------------------

_SITES: dict[Registry, str] = {
    "ctgov": "https://clinicaltrials.gov",
    "ctis": "https://euclinicaltrials.eu",
    "euctr": "https://www.clinicaltrialsregister.eu",
    "cteu": "https://clinicaltrials.eu",
}

API_BASE_URLS: dict[Registry, str] = {
    "ctgov": _SITES["ctgov"] + "/api/v2",
    "ctis": _SITES["ctis"] + "/ctis-public-api",
    "euctr": _SITES["euctr"],
    "cteu": _SITES["cteu"],
}
"""Where each registry's machine-readable records are fetched from (no trailing slash); the
fetch client's defaults."""

_RECORD_API_PATHS: dict[TrialRegistry, str] = {
    "ctgov": "/studies/{id}",  # ClinicalTrials.gov API v2, one study
    "ctis": "/retrieve/{id}",  # CTIS public API, one trial
    "euctr": "/ctr-search/rest/download/full?query={id}&mode=current_page",  # EU CTR full-text download
}

_RECORD_PAGES: dict[TrialRegistry, str] = {
    "ctgov": _SITES["ctgov"] + "/study/{id}",
    "ctis": _SITES["ctis"] + "/search-for-clinical-trials/?lang=en&EUCT={id}",
    "euctr": _SITES["euctr"] + "/ctr-search/search?query={id}",
}


def record_api_url(registry: TrialRegistry, trial_id: str, base_url: str | None = None) -> str:
    """The URL one record of ``registry`` is fetched from (a snapshot's manifest URL), under
    ``base_url`` (default: the registry's own, :data:`API_BASE_URLS`).

    The caller vouches for ``trial_id`` (the fetch client validates it first).
    """
    base = (base_url or API_BASE_URLS[registry]).rstrip("/")
    return base + _RECORD_API_PATHS[registry].format(id=trial_id)


def registry_page_url(registry: str | None, trial_id: str | None) -> str | None:
    """The public web page of a registry record (what a reader clicks), not the API URL; None
    for a registry without such pages or a missing number."""
    if not registry or not trial_id or registry not in _RECORD_PAGES:
        return None
    return _RECORD_PAGES[registry].format(id=quote(trial_id))  # type: ignore[index]


# ---------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------

VERDICT_ORDER: tuple[Verdict, ...] = ("mismatch", "partial", "unverifiable", "match")
"""The order verdicts are counted and listed in, everywhere (summary, check, report): what needs
a reader first, first."""
assert set(VERDICT_ORDER) == set(get_args(Verdict))
