"""Trial numbers: what each kind looks like, which registry issues it, and how to find them in text.

The one home of the trial-number patterns; the extractor, the registry parsers, the record
index, the reference rules and the fetch client all ask this module.

==========  ===================  ========================================  =============
kind        example              form                                      registry
==========  ===================  ========================================  =============
NCT         NCT04243499          NCT and 8 digits                          ``ctgov``
EU_CT       2023-506979-10-00    year, 6 digits, 2 digits, 2 digits        ``ctis``
EUDRACT     2015-000590-12       year, 6 digits, 2 digits                  ``euctr``
ISRCTN      ISRCTN12345678       ISRCTN and 8 digits                       none compared
==========  ===================  ========================================  =============

An EU CT number is told from a EudraCT number by its form alone (four groups, not three);
whether a number exists is for its registry to say.

**Look-alikes are not trial numbers.** A number is the ASCII text its registry issues: digits
0-9, the hyphen-minus, the prefix in either case (``nct04243499`` is ``NCT04243499``).
Full-width or other non-ASCII digits (``NCT０４２４３４９９``), an invisible character inside a
number (a zero-width space, a soft hyphen) and any other dash (``2015‐000590‐12`` with U+2010)
make text that is not one, everywhere alike: in a page, in a record's identifiers, on the way
into a URL. No registry finds a record by such text, and seeing through look-alikes in one place
but not another is how the exact and the registry tests once disagreed. What stands around a
number is different: surrounding whitespace is ignored by the exact tests, and in running text a
number ends where a word character (of any script) or another hyphenated group of digits does
not follow it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Iterator
from typing import Literal, get_args

from pipeline.constants import TrialRegistry

__all__ = [
    "ID_PATTERNS",
    "REGISTRY_ID_PATTERN",
    "REGISTRY_OF_KIND",
    "TrialIdKind",
    "canonical_trial_id",
    "find_trial_ids",
    "iter_trial_ids",
    "registry_of",
    "registry_of_leading",
    "trial_id_type",
]

TrialIdKind = Literal["NCT", "EU_CT", "EUDRACT", "ISRCTN"]

# [0-9], never \d: \d also takes full-width and other look-alike digits (see the module's docstring).
ID_PATTERNS: dict[TrialIdKind, str] = {
    "NCT": r"NCT[0-9]{8}",
    "EU_CT": r"[0-9]{4}-[0-9]{6}-[0-9]{2}-[0-9]{2}",
    "EUDRACT": r"[0-9]{4}-[0-9]{6}-[0-9]{2}",
    "ISRCTN": r"ISRCTN[0-9]{8}",
}
"""Each kind's canonical form (prefix in capitals), as regular-expression source; EU_CT before
EUDRACT, the longer form first."""
assert tuple(ID_PATTERNS) == get_args(TrialIdKind)

REGISTRY_OF_KIND: dict[TrialIdKind, TrialRegistry] = {"NCT": "ctgov", "EU_CT": "ctis", "EUDRACT": "euctr"}
"""The registry that issues each kind of number; ISRCTN numbers have no registry here."""

REGISTRY_ID_PATTERN = "(?:" + "|".join(ID_PATTERNS[kind] for kind in REGISTRY_OF_KIND) + ")"
"""An NCT, EU CT or EudraCT number in its canonical form (for formats that print it so, such as
the page's summary table)."""


def _case_free(pattern: str) -> str:
    # The prefix in either case, ASCII only: a Unicode case-free match would take "ſ" (long s) for "s".
    return re.sub(r"^[A-Z]+", lambda m: f"(?ai:{m.group()})", pattern)


_ALTERNATIVES = "|".join(f"(?P<{kind}>{_case_free(pattern)})" for kind, pattern in ID_PATTERNS.items())
_EXACT = re.compile(_ALTERNATIVES)
# In running text a number stands alone: glued to letters or to more hyphenated digits it is part
# of something else ("12015-000590-12", "2023-000001-01-00-99"), but a hyphenated word after it
# does not hide it ("NCT01234567-related"). \w and \d are Unicode here, and a look-alike dash or an
# invisible character joins as a hyphen does: "2023-506979-10\u2010００" is not EudraCT 2023-506979-10.
_JOINER = r"[\-\u00ad\u2010-\u2015\u2212\ufe58\ufe63\uff0d\u200b-\u200d\u2060\ufeff]"
_IN_TEXT = re.compile(
    rf"(?<!\w)(?<!\d{_JOINER})(?<!\d{_JOINER}{_JOINER})(?:{_ALTERNATIVES})(?!\w|{_JOINER}+\d)"
)


@lru_cache(maxsize=8192)
def trial_id_type(text: str) -> TrialIdKind | None:
    """The kind of trial number ``text`` is: "NCT", "EU_CT", "EUDRACT", "ISRCTN", or None.

    The whole text must be the number (surrounding whitespace aside); look-alikes are not numbers.
    """
    match = _EXACT.fullmatch(text.strip())
    return match.lastgroup if match else None  # type: ignore[return-value]


def registry_of(text: str) -> TrialRegistry | None:
    """The registry that issues the trial number ``text``: NCT -> ctgov, EU CT -> ctis,
    EudraCT -> euctr; None for anything else (what :func:`trial_id_type` says, per registry)."""
    kind = trial_id_type(text)
    return REGISTRY_OF_KIND.get(kind) if kind else None


def registry_of_leading(text: str) -> TrialRegistry | None:
    """The registry of the trial number ``text`` starts with ("nct04243499_v2.json" -> ctgov), for
    telling a snapshot's registry by its file name."""
    match = _EXACT.match(text)
    return REGISTRY_OF_KIND.get(match.lastgroup) if match else None  # type: ignore[arg-type]


def canonical_trial_id(text: str) -> str | None:
    """``text`` as its registry writes it (no surrounding whitespace, prefix in capitals), or None
    when it is not exactly a trial number."""
    return text.strip().upper() if trial_id_type(text) else None


def iter_trial_ids(
    text: str, kinds: tuple[TrialIdKind, ...] = get_args(TrialIdKind)
) -> Iterator[tuple[str, TrialIdKind]]:
    """Every trial number of ``kinds`` in running text, in order, repeats included, as
    (canonical number, kind) pairs."""
    for match in _IN_TEXT.finditer(text):
        kind = match.lastgroup
        if kind in kinds:
            yield match.group().upper(), kind  # type: ignore[misc]


def find_trial_ids(text: str, kinds: tuple[TrialIdKind, ...] = get_args(TrialIdKind)) -> list[tuple[str, TrialIdKind]]:
    """Every trial number of ``kinds`` named in ``text``, in order of first mention, without repeats.

    Returns:
        (number, kind) pairs, prefixes in capitals.
    """
    seen: dict[str, TrialIdKind] = {}
    for number, kind in iter_trial_ids(text, kinds):
        seen.setdefault(number, kind)
    return list(seen.items())
