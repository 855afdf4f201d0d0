"""Stage 1: the facts a page about a drug's trials states, as an :class:`ExtractedDocument`.

The page is a text capture of a clinicaltrials.eu drug page. Its parts, in the site's order
(narrative sections come in any number; every part but the title and the summary table may be
missing)::

    Aldesleukin                                          title: the first line
    <paragraphs, headings, "  • " bullets>               narrative          -> Claim
    Trial ID Phase Condition studied Status Enrollment   summary table      -> StatedTrial
    Ongoing Clinical Trials on Aldesleukin               "  • " items       -> OngoingTrial
    Glossary                                             "  • Term: text"   -> GlossaryEntry
    References                                           "  1. URL"         -> Reference

A heading is a short line at the left margin without a terminal full stop; a claim's section is
the nearest heading above it. The table runs from its header to the first line that is not a
row (blank lines between rows do not end it); its cells are told apart by their grammar (see
``_ROW``), never by known rows. The list parts (ongoing, glossary, references) run until the
first line at the left margin that is not one of their items: the capture indents items' detail
lines, and ongoing cards are also known by their status, debris and country lines when it does not.
What a claim speaks about is told by the keyword rules of ``_FIELD_RULES``.

:func:`read_document` is the only function here that touches a file; the rest is pure.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar, get_args

from pipeline.errors import DocumentError
from pipeline.files import MAX_DOCUMENT_BYTES, read_regular_file
from pipeline.models import (
    Claim,
    ClaimField,
    ExtractedDocument,
    GlossaryEntry,
    OngoingTrial,
    Reference,
    SourceDocument,
    StatedTrial,
)
from pipeline.ids import REGISTRY_ID_PATTERN, REGISTRY_OF_KIND, TrialIdKind, iter_trial_ids
from pipeline.registries.vocab import STATUS_MAP, normalize_country, status_key

__all__ = ["document_id_for", "extract_document", "read_document"]

# ---------------------------------------------------------------------------------------------
# Patterns shared by the parts
# ---------------------------------------------------------------------------------------------

# The ids the site prints: NCT numbers (ClinicalTrials.gov), EU CT numbers (CTIS) and EudraCT
# numbers (EU CTR), as pipeline.ids tells them (look-alikes are not ids).
_TRIAL_ID = REGISTRY_ID_PATTERN
_PAGE_KINDS: tuple[TrialIdKind, ...] = tuple(REGISTRY_OF_KIND)


def _trial_ids_in(text: str) -> list[str]:
    """The page's kinds of trial number in running text or a URL, in order, repeats included."""
    return [number for number, _ in iter_trial_ids(text, _PAGE_KINDS)]


# A citation marker: "[3]", and the list and range forms "[1, 2]", "[1-3]" other pages use.
_CITATION = re.compile(r"\[(\d+(?:\s*[,–-]\s*\d+)*)\]")
# A list item: a bullet and the item's text. The capture indents bullets; some pages do not.
_BULLET = re.compile(r"^\s*[•·▪◦‣*-]\s+(?P<text>\S.*)$")
# Debris the site's ongoing-trial cards leave in a text capture: icon counters ("1 1 1") ...
_COUNTERS = re.compile(r"^\d+(?:\s+\d+)*$")
# ... and field labels ("Investigated drugs:"), empty in the capture. Country lines have no colon.
_LABEL = re.compile(r"^[A-Z][\w ]{0,40}:")

_T = TypeVar("_T")

PartKind = Literal["narrative", "table", "ongoing", "glossary", "references"]

# Headings that open a part which is not narrative. The table opens at its header row instead.
_PART_HEADINGS: tuple[tuple[PartKind, re.Pattern[str]], ...] = (
    ("ongoing", re.compile(r"^Ongoing\s+(?:clinical\s+)?(?:trials|studies)\b", re.IGNORECASE)),
    ("glossary", re.compile(r"^Glossary\b", re.IGNORECASE)),
    ("references", re.compile(r"^(?:References|Sources)$", re.IGNORECASE)),
)
# The summary table's header row. Cells may run together in a capture, so no spaces are required.
MAX_LINE_CHARS = 50_000
"""Longest line (a narrative paragraph, a table row) a page may have. The embedded page's
longest is under 500; extracting a line costs ~2.5 s per million characters, so a 50 MB
sentence would take minutes and gigabytes and is refused instead, naming the line."""

_TABLE_HEADER = re.compile(r"^\s*Trial\s*ID\s*Phase\s*Condition", re.IGNORECASE)
_TABLE_HEADER_HINT = 'expected a header line "Trial ID Phase Condition ..."'


def _is_heading(line: str) -> bool:
    """A short line at the left margin, not a list item, without a terminal full stop."""
    text = line.strip()
    return (
        bool(text)
        and not line[0].isspace()
        and not _BULLET.match(line)
        and len(text) <= 100
        and len(text.split()) <= 14
        and text[-1] not in ".!:;,]"
        and any(ch.isalpha() for ch in text)
    )


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def read_document(path: Path) -> tuple[str, str]:
    """Read a document file.

    Args:
        path: the page's text capture (UTF-8).

    Returns:
        (text, sha256 hex digest of the file's bytes).

    Raises:
        DocumentError: the file is missing, not a regular file (a directory, a device, a
            FIFO), larger than ``MAX_DOCUMENT_BYTES``, unreadable, empty or whitespace only, or
            binary (NUL bytes, or not UTF-8).
    """
    try:
        data = read_regular_file(Path(path), limit=MAX_DOCUMENT_BYTES, what="a document", fail=DocumentError)
    except FileNotFoundError as exc:
        raise DocumentError(path, "file not found") from exc
    if not data:
        raise DocumentError(path, "file is empty")
    if b"\x00" in data:
        raise DocumentError(path, "not a text file (binary content)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(path, "not a text file (binary content)") from exc
    if not text.strip():
        raise DocumentError(path, "file is empty (whitespace only)")
    return text, hashlib.sha256(data).hexdigest()


def document_id_for(title: str) -> str:
    """A stable slug of a page's title: ``'Aldesleukin'`` -> ``'aldesleukin'``.

    Accents are dropped, every run of other characters becomes one hyphen. A title with no
    letter or digit in it gets ``document-`` and a digest of the title instead.
    """
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug or "document-" + hashlib.sha256(title.encode("utf-8")).hexdigest()[:12]


def extract_document(
    text: str,
    *,
    source_url: str,
    sha256: str,
    extracted_at: datetime,
    document_id: str | None = None,
    path: str = "<text>",
) -> ExtractedDocument:
    """Extract every stated fact of one page. Pure: the same text gives an equal result.

    Args:
        text: the page's text capture.
        source_url: where the page lives.
        sha256: digest of the page's bytes (from :func:`read_document`).
        extracted_at: the time to stamp on the document.
        document_id: the id to use; by default :func:`document_id_for` of the title.
        path: names the page in errors.

    Raises:
        DocumentError: the page has no title, no summary table, a table without rows, a
            table row whose cells cannot be told apart, or a line longer than
            :data:`MAX_LINE_CHARS`.
    """
    lines = _lines(text)
    _check_line_lengths(lines, path)
    title = _title(lines, path)
    doc_id = document_id or document_id_for(title)
    parts = _split_parts(lines, title, path)

    table_parts = [p for p in parts if p.kind == "table"]
    if not table_parts:
        raise DocumentError(path, f"no summary table found ({_TABLE_HEADER_HINT})")
    trials = _stated_trials(table_parts, doc_id, path)
    claims = _claims([p for p in parts if p.kind == "narrative"], doc_id, _drug_name_pattern(title))
    return ExtractedDocument(
        document=SourceDocument(
            document_id=doc_id, source_url=source_url, title=title, sha256=sha256, extracted_at=extracted_at
        ),
        trials=trials,
        claims=claims,
        ongoing=_ongoing_trials(_lines_of(parts, "ongoing"), doc_id),
        references=_references(_lines_of(parts, "references"), claims, doc_id),
        glossary=_glossary(_lines_of(parts, "glossary"), doc_id),
    )


# ---------------------------------------------------------------------------------------------
# The page's layout: title and parts
# ---------------------------------------------------------------------------------------------


@dataclass
class _Part:
    """A heading (or the table's header row) and the lines under it, up to the next part."""

    kind: PartKind
    heading: str
    lines: list[tuple[int, str]] = field(default_factory=list)  # (1-based line number, line)


def _lines(text: str) -> list[str]:
    # Captures come with any line ending and sometimes no-break spaces between cells or words.
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return [line.replace("\u00a0", " ").rstrip() for line in text.split("\n")]


def _check_line_lengths(lines: Sequence[str], path: str) -> None:
    """Refuse a page with a line over :data:`MAX_LINE_CHARS` (see there why), naming the line."""
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_CHARS:
            raise DocumentError(path, f"line {number} has {len(line):,} characters, over the limit of "
                                      f"{MAX_LINE_CHARS:,} a line may have")


def _title(lines: Sequence[str], path: str) -> str:
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise DocumentError(path, "no title found (the page has no text)")
    if _TABLE_HEADER.match(first) or not _is_heading(first.lstrip()):
        raise DocumentError(path, f"no title found (expected the drug's name on the first line, got {_excerpt(first)})")
    return first.strip()


def _split_parts(lines: Sequence[str], title: str, path: str) -> list[_Part]:
    """Cut the page after its title into parts, each opened by a heading or the table header.

    Raises:
        DocumentError: a table row stands outside the table, after it ended (an unreadable line
            between rows ended it early; the rows after it would otherwise be lost as headings).
    """
    start = next(i for i, line in enumerate(lines) if line.strip()) + 1
    parts = [_Part("narrative", title)]
    table_ended_by: int | None = None  # the 1-based number of the line that ended the last table
    for i in range(start, len(lines)):
        line, current = lines[i], parts[-1]
        if current.kind != "narrative" and _continues(current, lines, i):
            current.lines.append((i + 1, line))
            continue
        if current.kind == "table":
            table_ended_by = next((j + 1 for j in range(i, len(lines)) if lines[j].strip()), None)
        if _TABLE_HEADER.match(line):
            parts.append(_Part("table", line.strip()))
        elif table_ended_by is not None and _ROW_START.match(line) and _parse_row(line):
            raise DocumentError(path, f"line {i + 1}: summary table row outside the table (line {table_ended_by} "
                                      f"ended the table): {_excerpt(line)}")
        elif _is_heading(line):
            parts.append(_Part(_kind_of_heading(line), line.strip()))
        elif current.kind == "narrative":
            current.lines.append((i + 1, line))
        else:
            # Text right after a list part, without a heading of its own: it stands under that
            # part's heading, the nearest one above.
            parts.append(_Part("narrative", current.heading, [(i + 1, line)]))
    return parts


def _kind_of_heading(line: str) -> PartKind:
    text = line.strip()
    return next((kind for kind, pattern in _PART_HEADINGS if pattern.match(text)), "narrative")


def _continues(part: _Part, lines: Sequence[str], i: int) -> bool:
    """Whether line ``i`` still belongs to the table or list part ``part``."""
    line = lines[i]
    if part.kind == "table":
        if line.strip():
            # A line that resembles a row is a row, readable or not: an unreadable row must fail
            # loudly, never end the table and turn the rows after it into headings.
            return _resembles_row(line)
        # A blank line ends the table unless more rows follow it.
        following = next((later for later in lines[i + 1:] if later.strip()), "")
        return _parse_row(following) is not None
    if not line.strip() or line[0].isspace() or _BULLET.match(line):
        return True
    if part.kind == "references":
        return bool(_REFERENCE_LINE.match(line))
    if part.kind == "ongoing":
        # Tolerate a capture that lost the indentation of the cards' detail lines.
        return _is_item_detail(line)
    return False


def _lines_of(parts: Iterable[_Part], kind: PartKind) -> list[str]:
    return [line for part in parts if part.kind == kind for _, line in part.lines]


def _excerpt(line: str, limit: int = 80) -> str:
    text = " ".join(line.split())
    return '"' + (text if len(text) <= limit else text[: limit - 1] + "…") + '"'


def _unique(items: Iterable[_T]) -> list[_T]:
    return list(dict.fromkeys(items))


def _bullet_items(lines: Iterable[str]) -> list[tuple[str, list[str]]]:
    """(item text, its other non-blank lines) for every bullet; lines before the first are dropped."""
    items: list[tuple[str, list[str]]] = []
    for line in lines:
        if bullet := _BULLET.match(line):
            items.append((bullet["text"].strip(), []))
        elif items and line.strip():
            items[-1][1].append(line.strip())
    return items


# ---------------------------------------------------------------------------------------------
# Summary table
# ---------------------------------------------------------------------------------------------

# A phase cell. A sub-phase letter ("Phase 1/2a") is taken only when no lowercase letter follows,
# since the condition cell runs on right after it ("Phase 2bladder cancer" is Phase 2).
_PHASE_NUMBER = r"[0-4](?:[ab](?![a-z]))?"
_PHASE_CELL = (
    rf"(?:Early\s+Phase\s+1|Phase\s+{_PHASE_NUMBER}(?:\s*[/-]\s*(?:Phase\s+)?{_PHASE_NUMBER})*"
    r"|N/A|Not\s+applicable)"
)


def _status_alternative(key: str) -> str:
    # The site capitalizes a status, and that capital is where a run-together condition cell
    # ends ("...cancerCompleted88"); the rest of the words may take any case and punctuation.
    words = key.split(" ")
    tail = r"[\W_]+".join(map(re.escape, [words[0][1:], *words[1:]]))
    return f"{re.escape(key[0].upper())}(?i:{tail})"


# Every status label of pipeline.registries.vocab, longest first (so "Active, not recruiting" beats "Active").
_STATUS_CELL = "(?:" + "|".join(_status_alternative(k) for k in sorted(STATUS_MAP, key=len, reverse=True)) + ")"
# Enrollment: digits, possibly grouped by thousands ("1,200", "1.200", "1 200").
_ENROLLMENT = r"[0-9]{1,3}(?:[,. \u202f][0-9]{3})+(?![0-9])|[0-9]+"
# A row whose cells ran together. The condition is free text, so it is what lies between the
# phase (grammar from the left) and the status + enrollment (vocabulary from the right).
_ROW = re.compile(
    rf"^\s*(?P<trial_id>{_TRIAL_ID})\s*(?P<phase>{_PHASE_CELL})\s*(?P<condition>\S.*?)\s*"
    rf"(?P<status>{_STATUS_CELL})\s*(?P<enrollment>{_ENROLLMENT})?\s*$"
)
# What any row opens with, readable or not.
_ROW_START = re.compile(rf"\s*{_TRIAL_ID}")
# A row someone mistyped still resembles one: it opens with something like a trial id (any case,
# a digit lost, doubled or changed: "NCT0572790Phase 3", "nct05727904"), or, when the id itself
# is damaged, it keeps a phase cell and ends with a status and an enrollment.
_ROW_LIKE_START = re.compile(r"\s*(?:(?i:nct)|[A-Za-z]{0,4}\s*[0-9]{4}|[0-9]{1,4}\s*-\s*[0-9])")
_PHASE_SOMEWHERE = re.compile(_PHASE_CELL)
_ROW_LIKE_END = re.compile(rf"{_STATUS_CELL}\s*(?:{_ENROLLMENT})?$")
# Cells a capture kept apart, with tabs or runs of spaces.
_CELL_SEPARATOR = re.compile(r"\t+\s*|\s{2,}")


class _Row(NamedTuple):
    trial_id: str
    phase: str
    condition: str
    status: str
    enrollment: int | None


def _parse_row(line: str) -> _Row | None:
    """The cells of a table row, or None when the line is not one."""
    cells = _CELL_SEPARATOR.split(line.strip())
    if len(cells) == 5 and re.fullmatch(_TRIAL_ID, cells[0]) and re.fullmatch(_ENROLLMENT, cells[4]):
        trial_id, phase, condition, status, enrollment = cells
        return _Row(trial_id, " ".join(phase.split()), condition, status, _integer(enrollment))
    match = _ROW.match(line)
    if match is None:
        return None
    return _Row(
        match["trial_id"],
        " ".join(match["phase"].split()),
        match["condition"],
        match["status"],
        _integer(match["enrollment"]) if match["enrollment"] else None,
    )


def _resembles_row(line: str) -> bool:
    """Whether a line in the table is meant as a row (readable or not), not the end of the table."""
    if _ROW_LIKE_START.match(line):
        return True
    return bool(_ROW_LIKE_END.search(line.rstrip())) and bool(_PHASE_SOMEWHERE.search(line))


def _row_problem(line: str) -> str:
    """Why a line meant as a row cannot be read, for the error that names it."""
    if not _ROW_START.match(line):
        return "summary table row does not open with a trial id (NCT and 8 digits, or YYYY-NNNNNN-NN[-NN])"
    return "summary table row cannot be split into cells"


def _integer(digits: str) -> int:
    return int(re.sub(r"[^0-9]", "", digits))


def _stated_trials(tables: Sequence[_Part], document_id: str, path: str) -> list[StatedTrial]:
    trials: list[StatedTrial] = []
    for table in tables:
        for number, line in table.lines:
            if not line.strip():
                continue
            row = _parse_row(line)
            if row is None:
                raise DocumentError(path, f"line {number}: {_row_problem(line)}: {_excerpt(line)}")
            trials.append(StatedTrial(document_id=document_id, row_number=len(trials) + 1, **row._asdict()))
    if not trials:
        raise DocumentError(path, f"summary table has no rows (expected trial rows under the line {_excerpt(tables[0].heading)})")
    return trials


# ---------------------------------------------------------------------------------------------
# Narrative claims
# ---------------------------------------------------------------------------------------------

# Where a sentence ends: . ! or ? (a closing quote or bracket may follow), then the citation
# markers that belong to it ("...at 18 months.[12]"), then a space and a capital or a digit (a
# sentence may open with a trial id), or the end of the paragraph.
_SENTENCE_END = re.compile(
    r"[.!?][\"'”’)]?(?:\s*\[\d+(?:\s*[,–-]\s*\d+)*\])*(?=\s+[\"“(]?[A-Z0-9]|\s*$)"
)
# Words whose full stop is not a sentence's end ("e.g. IL-2", "U.S. sites", "Smith et al. 2020").
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|vs|approx|incl|al|Dr|Mr|Mrs|Ms|Prof|St|Fig)|\b(?:[A-Za-z]\.)+[A-Za-z])$")

# A drug named as a modifier ("Aldesleukin-related trials") does not speak about the intervention.
_NOT_A_MODIFIER = r"(?!-(?:related|based|associated|like|induced|treated|naive|naïve|free|specific)\b)"
# Disease words; "disease" itself only where it names one (not "stable disease", "disease control").
_DISEASE = (
    r"(?:cancers?|carcinomas?|tumou?rs?(?!-)|neoplasms?|malignanc(?:y|ies)|\w+omas?|\w+itis|leuka?emias?"
    r"|\w+iasis|\w+pathy|diabetes|asthma|infections?|disorders?|syndromes?|lupus|sclerosis|pemphig\w+|alzheimer\w*"
    r"|(?<!stable )(?<!progressive )diseases?(?!\s+(?:control|progression|activity)))"
)

# What a sentence speaks about, by keyword. Each rule's position in the sentence is where its
# first match starts (for conditions: where the disease word starts); ``Claim.fields`` lists
# the fields in the order they come up, and ``Claim.field`` is the first of them.
_FIELD_RULES: tuple[tuple[ClaimField, re.Pattern[str]], ...] = (
    ("phase", re.compile(r"\b(?:early\s+)?phase\s+(?:[0-4]|iv|i{1,3})\b", re.IGNORECASE)),
    (
        "primary_endpoint",
        re.compile(
            r"\b(?:(?:main|primary)\s+(?:goal|aim|objective|outcome|endpoint|end point)s?"
            r"|measur(?:e|es|ed|ing|ement)|end-?points?|outcomes?|assess(?:es|ed|ing)?"
            r"|safety|tolerability|response rate|survival|adverse events?|toxicit(?:y|ies)"
            r"|looks? at|tracks?)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "design",
        re.compile(
            r"\b(?:(?:non-)?randomi[sz]ed|placebo|open[- ]label|(?:double|single)[- ]blind(?:ed)?|blinded"
            r"|first[- ]in[- ]human|basket|umbrella|single[- ]arm|cross-?over|dose[- ](?:escalation|finding)"
            r"|interventional|observational|compar(?:e|es|ed|ing)|versus|control group)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "population",
        re.compile(
            r"\b(?:children|child|p(?:a)?ediatric|adolescents?|infants?|adults?|elderly|healthy volunteers|people (?:with|who)"
            r"|who can join|eligib\w*|inclusion criteria|aged \d+|years (?:old|of age|or older))\b",
            re.IGNORECASE,
        ),
    ),
    (
        "intervention",
        re.compile(
            # Phrases about the treatment given ...
            r"\b(?i:treatment plans?|regimens?|listed among|interventions?|treatment drugs?|study drugs?"
            r"|combination|therapy|therapies|immunotherapy|vaccines?|lymphocytes?|administrations?"
            r"|interleukin-?2)\b"
            # ... abbreviations and development codes, by their capitals ("TILs", "IL-2", "LN-145") ...
            r"|\b(?:TILs?|IL-?2|(?!COVID)[A-Z]{2,5}-?\d{2,4}[a-z]?)\b"
            # ... and the stems of the nonproprietary drug names trials use ("lifileucel", "-mab").
            r"|\b(?i:[a-z]{3,}(?:mab|leucel|leukin|nib|platin|taxel|rubicin|sporin|limus|parib|ciclib|tecan))\b"
            + _NOT_A_MODIFIER
        ),
    ),
    (
        "condition",
        re.compile(
            r"\b(?:in|with|for|stud(?:y|ies|ied|ying)|includ(?:e|es|ed|ing)|such as|focus(?:es|ed)?\s+on)"
            rf"\s+(?:[\w'’/-]+,?\s+){{0,6}}?(?P<at>{_DISEASE})\b|\bconditions?\b",
            re.IGNORECASE,
        ),
    ),
    (
        "status",
        re.compile(
            r"\b(?:not yet recruiting|active, not recruiting|recruiting|completed|authori[sz]ed|ongoing"
            r"|terminated|withdrawn|suspended|halted|ended)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "enrollment",
        re.compile(
            r"\b(?:enrol(?:l?ed|l?ment|ling|s)|\d[\d,]*\s+(?:patients|participants|people|subjects|volunteers))\b",
            re.IGNORECASE,
        ),
    ),
    ("countries", re.compile(r"\bcountr(?:y|ies)\b", re.IGNORECASE)),
)
_FIELD_ORDER = {name: i for i, name in enumerate(get_args(ClaimField))}


def _drug_name_pattern(title: str) -> re.Pattern[str] | None:
    """The page's own drug (its title's words) as an intervention keyword."""
    words = re.findall(r"[A-Za-z][\w-]{3,}", title)
    if not words:
        return None
    return re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b" + _NOT_A_MODIFIER, re.IGNORECASE)


def _claims(narrative: Sequence[_Part], document_id: str, drug: re.Pattern[str] | None) -> list[Claim]:
    claims: list[Claim] = []
    for part in narrative:
        for paragraph in _paragraphs(line for _, line in part.lines):
            for sentence in _sentences(paragraph):
                trial_ids = _unique(_trial_ids_in(sentence))
                ref_numbers = _cited_numbers(sentence)
                if not trial_ids and not ref_numbers:
                    continue
                fields = _claim_fields(sentence, drug)
                claims.append(
                    Claim(
                        document_id=document_id,
                        claim_id=f"c{len(claims) + 1:03d}",
                        section=part.heading,
                        sentence=sentence,
                        trial_ids=trial_ids,
                        ref_numbers=ref_numbers,
                        field=fields[0] if fields else None,
                        fields=fields,
                    )
                )
    return claims


def _paragraphs(lines: Iterable[str]) -> list[str]:
    """Paragraphs of a narrative part: blank lines part them, and each bullet starts one."""
    paragraphs: list[list[str]] = []
    open_paragraph = False
    for line in lines:
        if not line.strip():
            open_paragraph = False
            continue
        bullet = _BULLET.match(line)
        if bullet or not open_paragraph:
            paragraphs.append([])
            open_paragraph = True
        paragraphs[-1].append(bullet["text"] if bullet else line.strip())
    return [" ".join(words) for words in paragraphs]


def _sentences(paragraph: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(paragraph):
        if paragraph[end.start()] == "." and _ABBREVIATION.search(paragraph, start, end.start()):
            continue
        sentences.append(paragraph[start:end.end()].strip())
        start = end.end()
    if paragraph[start:].strip():
        sentences.append(paragraph[start:].strip())
    return sentences


def _cited_numbers(sentence: str) -> list[int]:
    numbers: list[int] = []
    for marker in _CITATION.finditer(sentence):
        for item in marker[1].split(","):
            ends = [int(n) for n in re.findall(r"\d+", item)]
            first, last = ends[0], ends[-1]
            # A range is read only when it is a plausible one; "[3-1]" or "[1-900]" stay as written.
            numbers.extend(range(first, last + 1) if 0 <= last - first <= 50 else ends)
    return _unique(numbers)


def _claim_fields(sentence: str, drug: re.Pattern[str] | None) -> list[ClaimField]:
    """The fields a sentence speaks about, in the order they come up in it."""
    found: dict[ClaimField, int] = {}
    for name, pattern in _FIELD_RULES:
        if match := pattern.search(sentence):
            found[name] = match.start("at") if match.groupdict().get("at") else match.start()
    if drug and (match := drug.search(sentence)):
        found["intervention"] = min(found.get("intervention", match.start()), match.start())
    if (at := _first_country_at(sentence)) is not None:
        found["countries"] = min(found.get("countries", at), at)
    return sorted(found, key=lambda name: (found[name], _FIELD_ORDER[name]))


# ---------------------------------------------------------------------------------------------
# Countries
# ---------------------------------------------------------------------------------------------

# The longest country name pipeline.registries.vocab knows, in words ("Saint Helena, Ascension and Tristan
# da Cunha" is 7).
_MAX_COUNTRY_WORDS = 8
# The "+6" after the countries shown: how many more the card does not show.
_MORE_COUNTRIES = re.compile(r"\+\s*([0-9]+)\s*$")


def _is_country_name(text: str) -> bool:
    # pipeline.registries.vocab also reads ISO codes; on a page only capitals are a code ("UK"), not "and".
    bare = text.strip(",;")
    return (len(bare) > 3 or bare.isupper()) and normalize_country(bare) is not None


def _country_end(tokens: Sequence[str], i: int) -> int:
    """End (exclusive) of the longest country name starting at ``tokens[i]``; ``i`` if none does."""
    for j in range(min(len(tokens), i + _MAX_COUNTRY_WORDS), i, -1):
        if _is_country_name(" ".join(tokens[i:j])):
            return j
    return i


class _Countries(NamedTuple):
    names: list[str]
    more: int
    unknown: int  # how many of the names no country list knows

    @property
    def any_known(self) -> bool:
        return len(self.names) > self.unknown or self.more > 0


def _split_countries(line: str) -> _Countries:
    """A card's country line, split by matching the longest known country names.

    ``"Belgium The Netherlands Bosnia and Herzegovina +2"`` -> three names and 2 more. Words no
    name covers stay together as one name: spaces alone never split a country.
    """
    more = _MORE_COUNTRIES.search(line)
    pieces = list(_country_pieces((line[: more.start()] if more else line).split()))
    return _Countries(
        names=[text.strip(",;") for text, _ in pieces],
        more=int(more[1]) if more else 0,
        unknown=sum(1 for _, known in pieces if not known),
    )


def _country_pieces(tokens: Sequence[str]) -> Iterator[tuple[str, bool]]:
    """(name, whether it is a known country) for the names in a run of words, in order."""
    run: list[str] = []  # words no known name covers, kept together
    i = 0
    while i < len(tokens):
        end = _country_end(tokens, i)
        if end == i and tokens[i].strip(",;").casefold() not in {"and", "&", ""}:
            run.append(tokens[i])
            i += 1
            continue
        if run:
            yield " ".join(run), False
            run = []
        if end > i:
            yield " ".join(tokens[i:end]), True
        i = max(end, i + 1)
    if run:
        yield " ".join(run), False


def _first_country_at(sentence: str) -> int | None:
    """Where the first country name in running text starts (capitalized words only)."""
    words = list(re.finditer(r"[\w'’-]+", sentence))
    tokens = [w.group() for w in words]
    for i, word in enumerate(tokens):
        if word[0].isupper() and not word.isupper() and _country_end(tokens, i) > i:
            return words[i].start()
    return None


# ---------------------------------------------------------------------------------------------
# Ongoing trials, glossary, references
# ---------------------------------------------------------------------------------------------


def _is_status(line: str) -> bool:
    return status_key(line) in STATUS_MAP


def _is_item_detail(line: str) -> bool:
    """A line of an ongoing-trial card other than its title: status, debris or countries."""
    text = line.strip()
    if _is_status(text) or _COUNTERS.match(text) or _LABEL.match(text):
        return True
    countries = _split_countries(text)
    return countries.any_known and countries.unknown == 0


def _ongoing_trials(lines: Sequence[str], document_id: str) -> list[OngoingTrial]:
    trials: list[OngoingTrial] = []
    for position, (title, details) in enumerate(_bullet_items(lines), 1):
        status: str | None = None
        countries: list[str] = []
        more = 0
        for line in details:
            if _COUNTERS.match(line) or _LABEL.match(line):
                continue
            split = _split_countries(line)
            # The card shows its status first; a line naming no known country is that status
            # even when the status vocabulary does not know the label.
            if status is None and (_is_status(line) or not split.any_known):
                status = line
            else:
                countries.extend(split.names)
                more += split.more
        named = [number for text in (title, *details) for number in _trial_ids_in(text)]
        trials.append(
            OngoingTrial(
                document_id=document_id,
                position=position,
                title=title,
                status=status or "",
                countries=countries,
                more_countries=more,
                trial_id=named[0] if named else None,
            )
        )
    return trials


def _glossary(lines: Sequence[str], document_id: str) -> list[GlossaryEntry]:
    entries: list[GlossaryEntry] = []
    for text, continuation in _bullet_items(lines):
        term, _, definition = text.partition(":")
        entries.append(
            GlossaryEntry(
                document_id=document_id,
                term=term.strip(),
                definition=" ".join([definition.strip(), *continuation]).strip(),
            )
        )
    return entries


# A numbered reference: "  1. https://...", also "1) ..." and "[1] ...".
_REFERENCE_LINE = re.compile(r"^\s*\[?(?P<number>\d+)[.)\]]\s+(?P<text>\S.*)$")
_URL = re.compile(r"https?://\S+")
# Scheme and host, cut off by hand: urllib's urlsplit raises on a malformed host ("https://a[b").
_URL_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#]*", re.IGNORECASE)


def _references(lines: Sequence[str], claims: Sequence[Claim], document_id: str) -> list[Reference]:
    references: list[Reference] = []
    for line in lines:
        match = _REFERENCE_LINE.match(line)
        if match is None:
            continue
        url_match = _URL.search(match["text"])
        url = url_match.group() if url_match else match["text"].strip()
        number = int(match["number"])
        trial_id, source = _trial_of_url(url), "url"
        if trial_id is None:
            # The URL wins when it names a trial; a citing sentence that disagrees is for
            # reconciliation to flag, not for extraction to settle.
            trial_id, source = _trial_of_citing_sentences(number, claims), "citing_sentence"
        references.append(
            Reference(
                document_id=document_id,
                ref_number=number,
                url=url,
                trial_id=trial_id,
                trial_id_source=source if trial_id else None,
            )
        )
    return references


def _trial_of_url(url: str) -> str | None:
    """The trial id in a URL's path or query (not in its host)."""
    named = _trial_ids_in(_URL_HOST.sub("", url))
    return named[0] if named else None


def _trial_of_citing_sentences(number: int, claims: Sequence[Claim]) -> str | None:
    """The one trial every sentence citing ``number`` names, among those that name any."""
    named = {tuple(c.trial_ids) for c in claims if number in c.ref_numbers and c.trial_ids}
    if len(named) == 1:
        (ids,) = named
        if len(ids) == 1:
            return ids[0]
    return None
