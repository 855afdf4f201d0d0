"""A generated site: drug pages in clinicaltrials.eu's text format over a store of CT.gov records.

The site bench (``python -m pipeline bench --site PAGES,RECORDS``) and the scale tests need what
an operator's scheduled run meets: thousands of pages, each citing 10-20 trials of a registry
store of tens of thousands of records. :func:`build_site` writes both from a corpus of varied
CT.gov v2 records (:func:`devtools.bench.build_corpus`):

* the **store**: one snapshot per record (``ctgov/<NCT>.json``) and its manifest, marked
  ``reconstructed`` (the records are synthetic);
* the **pages**: every part of a page as the extractor reads it (heading, introduction, cited
  narrative sentences, summary table, ongoing-trials cards, glossary, references), about trials
  drawn from the store, with some stated values wrong on purpose (a phase, a status, an
  enrollment or a country), as on the real site.

Everything is drawn from a seeded ``random.Random``: the same arguments give the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.extract import document_id_for

TRIALS_PER_PAGE = 15
ONGOING_PER_PAGE = 3
WRONG_SHARE = 0.1  # stated values deliberately wrong: about one in ten

PAGE_STATUS = {
    "RECRUITING": "Recruiting", "COMPLETED": "Completed", "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "NOT_YET_RECRUITING": "Not yet recruiting", "TERMINATED": "Terminated", "WITHDRAWN": "Withdrawn",
    "ENROLLING_BY_INVITATION": "Enrolling by invitation", "SUSPENDED": "Suspended", "UNKNOWN": "Unknown status",
}
PAGE_PHASE = {"EARLY_PHASE1": "Early Phase 1", "PHASE1": "Phase 1", "PHASE2": "Phase 2", "PHASE3": "Phase 3",
              "PHASE4": "Phase 4"}
GLOSSARY = (
    ("Phase 1", "An early trial stage that mainly checks safety, tolerability, and the best dose range."),
    ("Phase 2", "A trial stage that looks more closely at whether the treatment may help."),
    ("Objective response rate (ORR)", "The share of patients whose tumors shrink or disappear."),
    ("Adverse events (AEs)", "Medical problems that happen during a study, caused by the treatment or not."),
)
SYLLABLES = ("ra", "vo", "leu", "kin", "zel", "ta", "mab", "ci", "tu", "nib", "pro", "xi", "lo", "fe", "sar")


@dataclass(frozen=True)
class StudyFacts:
    """What a page may state about one CT.gov record."""

    nct_id: str
    title: str
    phases: tuple[str, ...]
    conditions: tuple[str, ...]
    status: str
    enrollment: int | None
    countries: tuple[str, ...]
    primary_outcome: str | None


@dataclass(frozen=True)
class Site:
    """A generated site: its snapshot store, its folder of pages, and the facts behind them."""

    store: Path
    pages: Path
    studies: list[StudyFacts]
    page_trials: dict[str, list[str]]  # page file name -> the NCT numbers it cites

    def citing(self, nct_id: str) -> list[str]:
        """The document ids of the pages that cite ``nct_id``."""
        return sorted(document_id_for(drug_name(_page_number(name)))
                      for name, ids in self.page_trials.items() if nct_id in ids)


def study_facts(study: dict[str, Any]) -> StudyFacts:
    """The facts a page may state about one CT.gov v2 study."""
    ps = study.get("protocolSection", {})
    ident = ps.get("identificationModule", {})
    design = ps.get("designModule", {})
    locations = ps.get("contactsLocationsModule", {}).get("locations", []) or []
    outcomes = ps.get("outcomesModule", {}).get("primaryOutcomes", []) or []
    countries = tuple(dict.fromkeys(loc["country"] for loc in locations if isinstance(loc, dict) and loc.get("country")))
    return StudyFacts(
        nct_id=ident["nctId"],
        title=ident.get("briefTitle") or ident.get("officialTitle") or ident["nctId"],
        phases=tuple(design.get("phases", []) or []),
        conditions=tuple(ps.get("conditionsModule", {}).get("conditions", []) or []),
        status=ps.get("statusModule", {}).get("overallStatus", "UNKNOWN"),
        enrollment=(design.get("enrollmentInfo") or {}).get("count"),
        countries=countries,
        primary_outcome=outcomes[0].get("measure") if outcomes and isinstance(outcomes[0], dict) else None,
    )


def write_store(root: Path, lines: Iterable[bytes], base: Path | None = None) -> list[StudyFacts]:
    """A snapshot store at ``root``: ``base``'s snapshots (copied) and one per corpus line.

    The manifest is written once at the end (per snapshot it would be quadratic).
    """
    import shutil

    import orjson

    from pipeline.models import SnapshotEntry
    from pipeline.store.snapshots import SnapshotStore, sha256_bytes

    shutil.rmtree(root, ignore_errors=True)
    if base is not None:
        shutil.copytree(base, root)
    (root / "ctgov").mkdir(parents=True, exist_ok=True)
    store = SnapshotStore(root)
    entries = store.entries() if base is not None else []
    facts = []
    for line in lines:
        study = orjson.loads(line)
        nct = study["protocolSection"]["identificationModule"]["nctId"]
        path = f"ctgov/{nct}.json"
        if (root / path).exists():
            continue
        (root / path).write_bytes(line)
        entries.append(SnapshotEntry(path=path, registry="ctgov", trial_id=nct, sha256=sha256_bytes(line),
                                     url=f"https://clinicaltrials.gov/api/v2/studies/{nct}",
                                     provenance="reconstructed"))
        facts.append(study_facts(study))
    store.save_entries(entries)
    return facts


def _page_number(name: str) -> int:
    return int(name.removeprefix("page-").removesuffix(".txt"))


def drug_name(index: int) -> str:
    """A made-up drug name, different for every index."""
    rng = random.Random(index)
    name = "".join(rng.choice(SYLLABLES) for _ in range(3)) + SYLLABLES[index % len(SYLLABLES)]
    return f"{name.capitalize()}{index}"


def _phase_cell(phases: Sequence[str]) -> str | None:
    numbers = [PAGE_PHASE[p] for p in phases if p in PAGE_PHASE]
    if not numbers:
        return None
    if len(numbers) == 1:
        return numbers[0]
    return f"{numbers[0]}/{numbers[-1].split()[-1]}"


def _wrong(rng: random.Random) -> bool:
    return rng.random() < WRONG_SHARE


def _lay_title(title: str) -> str:
    return title if title.lower().startswith(("study", "trial")) else f"Study of {title}"


def render_page(drug: str, studies: Sequence[StudyFacts], rng: random.Random) -> str:
    """One page about ``drug`` citing ``studies``, in the site's text format."""
    conditions = sorted({c for s in studies for c in s.conditions[:1]})
    lines = [drug, "",
             f"Clinical trials investigating {drug} are studying how it is used in "
             f"{', '.join(conditions[:3]) or 'several conditions'}. These studies look at safety and early signs of "
             "benefit.", "", "Table of Contents", "", "Clinical trial overview", "",
             f"{drug} appears in a range of interventional studies, alone and in combination.[1]", "",
             f"Studies using {drug}", ""]
    for n, study in enumerate(studies, start=1):
        condition = study.conditions[0] if study.conditions else "several conditions"
        phase = _phase_cell(study.phases)
        if n % 3 == 1 and phase:
            lines.append(f"{study.nct_id} is a {phase} study in {condition}.[{n}]")
        elif n % 3 == 2 and study.enrollment is not None:
            count = study.enrollment * 2 + 1 if _wrong(rng) else study.enrollment
            lines.append(f"{study.nct_id} enrolled {count} participants with {condition}.[{n}]")
        else:
            goal = study.primary_outcome or "safety and tolerability"
            lines.append(f"In {study.nct_id}, researchers studied {drug} in people with {condition}, "
                         f"and the main goal was to assess {goal[:120].rstrip('.')}.[{n}]")
        lines.append("")
    lines += ["Important patient terms", "",
              "Interventional study means the researchers give a treatment and then measure what happens.[1]", "",
              "Trial ID Phase Condition studied Status Enrollment"]
    for study in studies:
        phase = _phase_cell(study.phases) or "Phase 2"
        if _wrong(rng):
            phase = "Phase 3" if phase != "Phase 3" else "Phase 1"
        status = PAGE_STATUS.get(study.status, "Unknown status")
        if _wrong(rng):
            status = "Completed" if status != "Completed" else "Recruiting"
        condition = (study.conditions[0] if study.conditions else "Solid tumors").replace("\n", " ")
        enrollment = "" if study.enrollment is None else f"{study.enrollment:,}"
        lines.append(f"{study.nct_id}{phase}{condition}{status}{enrollment}")
    lines += ["", f"Ongoing Clinical Trials on {drug}", ""]
    for study in studies[:ONGOING_PER_PAGE]:
        shown = list(study.countries[:3]) or ["Germany"]
        if _wrong(rng):
            shown[-1] = "Sweden" if shown[-1] != "Sweden" else "Norway"
        more = len(study.countries) - len(shown)
        lines += [f"  • {_lay_title(study.title)}", "", f"    {PAGE_STATUS.get(study.status, 'Recruiting')}", "",
                  "    1 1 1", "    " + " ".join(shown) + (f" +{more}" if more > 0 else "")]
    lines += ["", "Glossary", ""]
    lines += [f"  • {term}: {definition}" for term, definition in GLOSSARY]
    lines += ["", "References", ""]
    lines += [f"  {n}. https://clinicaltrials.gov/study/{s.nct_id}" for n, s in enumerate(studies, start=1)]
    return "\n".join(lines) + "\n"


def write_pages(folder: Path, studies: Sequence[StudyFacts], pages: int, seed: int,
                trials_per_page: int = TRIALS_PER_PAGE) -> dict[str, list[str]]:
    """``pages`` pages in ``folder``, each citing ``trials_per_page`` of ``studies`` drawn at random.

    Returns:
        Page file name -> the NCT numbers it cites.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pool = [s for s in studies if _phase_cell(s.phases) and s.conditions]
    cited = {}
    for n in range(pages):
        chosen = rng.sample(pool, k=min(trials_per_page, len(pool)))
        name = f"page-{n:05d}.txt"
        (folder / name).write_text(render_page(drug_name(n), chosen, rng), encoding="utf-8")
        cited[name] = [s.nct_id for s in chosen]
    return cited


def build_site(corpus: Path, records: int, pages: int, target: Path, seed: int = 7,
               trials_per_page: int = TRIALS_PER_PAGE) -> Site:
    """A store of the corpus's first ``records`` studies and ``pages`` pages over them, under ``target``."""
    import itertools

    with corpus.open("rb") as fh:
        studies = write_store(target / "store", itertools.islice(fh, records))
    cited = write_pages(target / "pages", studies, pages, seed, trials_per_page)
    return Site(store=target / "store", pages=target / "pages", studies=studies, page_trials=cited)


def change_one_page(site: Site, name: str = "page-00000.txt") -> str:
    """Change one stated value of one page (the first table row's enrollment); its document id."""
    path = site.pages / name
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = next(n for n, line in enumerate(lines) if line.startswith("Trial ID Phase"))
    row = lines[header + 1].rstrip("\n")
    digits = len(row) - len(row.rstrip("0123456789,"))
    lines[header + 1] = (row[:-digits] if digits else row) + "12345\n"
    path.write_text("".join(lines), encoding="utf-8")
    return document_id_for(drug_name(_page_number(name)))


def change_one_record(site: Site, name: str = "page-00001.txt") -> tuple[str, list[str]]:
    """Revise one record the page ``name`` cites (its enrollment, as a registry revises it), with
    its manifest entry; (its NCT number, the document ids of the pages citing it)."""
    import orjson

    from pipeline.store.snapshots import SnapshotStore, sha256_bytes

    nct = site.page_trials[name][0]
    store = SnapshotStore(site.store)
    entries = store.entries()
    path = f"ctgov/{nct}.json"
    study = orjson.loads((site.store / path).read_bytes())
    info = study["protocolSection"].setdefault("designModule", {}).setdefault("enrollmentInfo", {})
    info["count"] = int(info.get("count") or 0) + 7
    data = orjson.dumps(study) + b"\n"
    (site.store / path).write_bytes(data)
    store.save_entries([e.model_copy(update={"sha256": sha256_bytes(data)}) if e.path == path else e for e in entries])
    return nct, site.citing(nct)
