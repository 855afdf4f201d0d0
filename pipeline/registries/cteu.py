"""clinicaltrials.eu trial pages -> TrialRecord.

No captured page of this site exists, so nothing is assumed about its layout beyond what any
web page has. Only what can be read robustly is read:

* the title: ``og:title``, else the first ``<h1>``, else ``<title>``;
* the canonical URL (``<link rel="canonical">``, else ``og:url``), kept as an identifier of
  type ``CTEU_URL``;
* the description (``<meta name="description">``, else ``og:description``) as the summary;
* every trial number named anywhere on the page (NCT, EU CT, EudraCT, ISRCTN) as an
  identifier.

The record's ``trial_id`` is the trial number the page is about: the first one named in the
canonical URL, the title or the heading; failing that, the first one named on the page; failing
that, the last segment of the canonical URL. A page with no title, or with neither a trial
number nor a canonical URL, raises ParseError naming what is missing: an empty record is
never returned. Status, phase and the like are not read (no markup to rely on).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from pipeline.errors import ParseError
from pipeline.models import Identifier, TrialRecord
from pipeline.ids import find_trial_ids
from pipeline.registries.payload import looks_like_html
from pipeline.registries.record import RecordFields


# Elements that hold code or inert markup, not page text: node.text(deep=True) would read their
# contents as values (a script's string becoming a title, an id in a script a trial number).
_NOT_CONTENT = ["script", "style", "noscript", "template"]


def parse_cteu(data: bytes, *, path: str) -> list[TrialRecord]:
    """Parse one clinicaltrials.eu trial page.

    Raises:
        ParseError: not an HTML page; no title (og:title, h1 or title); or no trial number and
            no canonical URL to identify the record by.
    """
    if not looks_like_html(data):
        raise ParseError(path, "not an HTML page (expected a clinicaltrials.eu trial page)")
    try:
        html = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(path, f"not UTF-8 HTML (byte {exc.start})") from exc
    tree = LexborHTMLParser(html)
    tree.strip_tags(_NOT_CONTENT)

    title, title_path = _title(tree)
    if not title:
        raise ParseError(path, "no title found (no og:title, h1 or title element)")
    canonical, canonical_path = _first_attr(tree, [
        ('link[rel="canonical"]', "href", 'link[rel="canonical"]@href'),
        ('meta[property="og:url"]', "content", 'meta[property="og:url"]@content'),
    ])
    description, description_path = _first_attr(tree, [
        ('meta[name="description"]', "content", 'meta[name="description"]@content'),
        ('meta[property="og:description"]', "content", 'meta[property="og:description"]@content'),
    ])
    h1 = tree.css_first("h1")
    heading = " ".join(h1.text().split()) if h1 else ""
    body = tree.body.text(separator=" ") if tree.body else ""

    named_up_front = find_trial_ids(" ".join(filter(None, [canonical, title, heading])))
    everywhere = find_trial_ids(" ".join(filter(None, [canonical, title, heading, description, body])))
    if named_up_front:
        trial_id, trial_id_path = named_up_front[0][0], "canonical URL / title / h1"
    elif everywhere:
        trial_id, trial_id_path = everywhere[0][0], "first trial number in the page text"
    elif canonical and (slug := _slug(canonical)):
        trial_id, trial_id_path = slug, f"{canonical_path} (last path segment)"
    else:
        raise ParseError(path, "no trial number on the page and no canonical URL to identify it by")

    identifiers = [Identifier(other_id=number, id_type=kind, source="named on the page")
                   for number, kind in everywhere if number != trial_id]
    if canonical:
        identifiers.append(Identifier(other_id=canonical, id_type="CTEU_URL", source=canonical_path))

    read = RecordFields("cteu", trial_id, trial_id_path)
    read.put("title", title, title_path)
    read.put("identifiers", identifiers, "trial numbers in the page text; " + (canonical_path or ""))
    read.put("brief_summary", description, description_path or "")
    return [read.record()]


def _title(tree: LexborHTMLParser) -> tuple[str | None, str]:
    og = tree.css_first('meta[property="og:title"]')
    if og is not None and (value := " ".join((og.attributes.get("content") or "").split())):
        return value, 'meta[property="og:title"]@content'
    for selector in ("h1", "title"):
        node = tree.css_first(selector)
        if node is not None and (value := " ".join(node.text().split())):
            return value, selector
    return None, ""


def _first_attr(tree: LexborHTMLParser, candidates: list[tuple[str, str, str]]) -> tuple[str | None, str | None]:
    for selector, attribute, native in candidates:
        node = tree.css_first(selector)
        value = " ".join((node.attributes.get(attribute) or "").split()) if node is not None else ""
        if value:
            return value, native
    return None, None


def _slug(url: str) -> str | None:
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return segments[-1] if segments else None
