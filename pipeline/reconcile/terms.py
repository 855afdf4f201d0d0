"""Words into comparable terms: conditions, endpoints, drug names and trial titles.

Everything here is pure text work, shared by the rules. A page and a registry rarely word a
condition or an endpoint the same way ("mCRPC" and "Metastatic Castration-resistant Prostate
Cancer", "ORR" and "Objective Response Rate"), so both sides go through the same normalization
before any comparison:

1. abbreviations are expanded (:data:`ABBREVIATIONS`);
2. accents, case and punctuation go; simple plurals are cut ("tumors" -> "tumor");
3. synonyms meet on one word (carcinoma, neoplasm, tumour ... -> "cancer");
4. for conditions, qualifiers of stage or line of treatment go too ("advanced", "metastatic",
   "untreated", "stage IV"): a condition rule speaks about the disease, not its stage.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any

from rapidfuzz import fuzz, process

CACHE_SIZE = 1 << 16
"""Texts remembered by the token functions: a site's pages compare the same registry values
page after page, and the functions are pure."""


def _memo_list(fn: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """``fn`` cached on its (hashable) arguments; each caller gets a list of its own."""
    cached = lru_cache(maxsize=CACHE_SIZE)(lambda *args: tuple(fn(*args)))

    @wraps(fn)
    def wrapper(*args: Any) -> list[Any]:
        return list(cached(*args))

    return wrapper


# ---------------------------------------------------------------------------------------------
# Abbreviations
# ---------------------------------------------------------------------------------------------

ABBREVIATIONS: dict[str, str] = {
    "nsclc": "non small cell lung cancer",
    "sclc": "small cell lung cancer",
    "mcrpc": "metastatic castration resistant prostate cancer",
    "crpc": "castration resistant prostate cancer",
    "mcrc": "metastatic colorectal cancer",
    "crc": "colorectal cancer",
    "pdac": "pancreatic ductal adenocarcinoma",
    "psc": "primary sclerosing cholangitis",
    "mds": "myelodysplastic syndrome",
    "aml": "acute myeloid leukemia",
    "cml": "chronic myeloid leukemia",
    "cll": "chronic lymphocytic leukemia",
    "sle": "systemic lupus erythematosus",
    "t1d": "type 1 diabetes",
    "t1dm": "type 1 diabetes",
    "hnscc": "head and neck squamous cell carcinoma",
    "scchn": "squamous cell carcinoma of the head and neck",
    "rcc": "renal cell carcinoma",
    "hcc": "hepatocellular carcinoma",
    "nhl": "non hodgkin lymphoma",
    "dlbcl": "diffuse large b cell lymphoma",
    "mmp": "mucous membrane pemphigoid",
    "asd": "autism spectrum disorder",
    "gvhd": "graft versus host disease",
    "ssc": "systemic sclerosis",
    "iim": "idiopathic inflammatory myopathy",
    "sts": "soft tissue sarcoma",
    "tnbc": "triple negative breast cancer",
    "scc": "squamous cell carcinoma",
}
"""Abbreviation (any case) -> what it stands for, in the words registries use."""

CASE_SENSITIVE_ABBREVIATIONS: dict[str, str] = {
    "ALL": "acute lymphoblastic leukemia",
    "AD": "alzheimer disease",
    "MM": "multiple myeloma",
    "NET": "neuroendocrine tumor",
    "NETs": "neuroendocrine tumors",
    "MS": "multiple sclerosis",
    "RA": "rheumatoid arthritis",
    "PM/DM": "polymyositis/dermatomyositis",
}
"""Abbreviations that are also ordinary words ("all", "ms"): expanded only when capitalized."""

# Hyphens count as word boundaries ("B-NHL"), letters and digits do not ("mCRC" is not "CRC").
_ABBREV_ANY_CASE = re.compile(
    r"(?<![A-Za-z0-9])(" + "|".join(sorted(map(re.escape, ABBREVIATIONS), key=len, reverse=True))
    + r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_ABBREV_EXACT_CASE = re.compile(
    r"(?<![A-Za-z0-9])("
    + "|".join(sorted(map(re.escape, CASE_SENSITIVE_ABBREVIATIONS), key=len, reverse=True))
    + r")(?![A-Za-z0-9])"
)


@lru_cache(maxsize=CACHE_SIZE)
def expand_abbreviations(text: str) -> str:
    """``text`` with every known abbreviation replaced by its expansion."""
    text = _ABBREV_EXACT_CASE.sub(lambda m: CASE_SENSITIVE_ABBREVIATIONS[m.group(1)], text)
    return _ABBREV_ANY_CASE.sub(lambda m: ABBREVIATIONS[m.group(1).casefold()], text)


# ---------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------

STOP_WORDS = frozenset(
    "a an and as at by for from in including into of on or other such the to with without "
    "versus vs".split()
)

SYNONYMS: dict[str, str] = {
    "tumor": "cancer",
    "tumour": "cancer",
    "neoplasm": "cancer",
    "neoplasia": "cancer",
    "carcinoma": "cancer",
    "adenocarcinoma": "cancer",
    "malignancy": "cancer",
    "leukaemia": "leukemia",
    "haematologic": "hematologic",
    "haematological": "hematologic",
    "hematological": "hematologic",
    "alzheimers": "alzheimer",
    "randomised": "randomized",
}
"""Word (after plural cutting) -> the word both sides meet on."""

CONDITION_QUALIFIERS = frozenset(
    "advanced metastatic untreated treated previously unresectable resectable resected "
    "recurrent refractory relapsed persistent locally newly diagnosed recent onset early "
    "active rare selected stage patients patient people participants adults children "
    "disease diseases conditions condition".split()
)
"""Words that say how far or how treated a disease is, or who has it, not which disease."""

# "stage IV", "Stage IIIb", "stage-4": the numeral goes with the word (matched before folding,
# so that "stage, 1" in a list is not read as a stage).
_STAGE = re.compile(r"\bstage[\s-]+(?:[ivx]+|[0-4])[a-c]?\b", re.IGNORECASE)


@lru_cache(maxsize=CACHE_SIZE)
def _fold(text: str) -> str:
    # Cached: a site's pages fold the same registry titles and values again and again.
    if not text.isascii():  # ASCII has no accents to strip (NFKD leaves it as it is)
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("\u2019", "'").replace("'s", "")
    return re.sub(r"[^a-z0-9]+", " ", text)


def _singular(word: str) -> str:
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "os")):
        return word[:-1]
    return word


@_memo_list
def tokens(text: str) -> list[str]:
    """Content words of ``text``: abbreviations expanded, folded, singular, synonyms met.

    Example: ``tokens("Advanced solid tumours (NSCLC)")`` ->
    ``["advanced", "solid", "cancer", "non", "small", "cell", "lung", "cancer"]``.
    """
    words = _fold(expand_abbreviations(text)).split()
    out = []
    for word in words:
        if word in STOP_WORDS:
            continue
        word = _singular(word)
        out.append(SYNONYMS.get(word, word))
    return out


@_memo_list
def condition_tokens(text: str) -> list[str]:
    """:func:`tokens` of a condition without stage and treatment-line qualifiers, no repeats."""
    unstaged = _STAGE.sub(" ", expand_abbreviations(text))
    seen: list[str] = []
    for word in tokens(unstaged):
        if word not in CONDITION_QUALIFIERS and word not in seen:
            seen.append(word)
    return seen


# ---------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------

# A condition cell lists several conditions: "A, B, and C", "A or B", "A; B", "X, including A".
_CONDITION_SPLIT = re.compile(r"\s*(?:;|,|\band\b|\bor\b|\bincluding\b|\bsuch as\b)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ConditionTerm:
    """One condition as written, and the tokens it is compared by."""

    text: str
    tokens: tuple[str, ...]

    @property
    def key(self) -> str:
        return " ".join(self.tokens)


def condition_terms(text: str) -> list[ConditionTerm]:
    """The conditions a cell or registry value lists, each with its comparison tokens.

    The text is split on commas, semicolons, "and", "or", "including" (after abbreviations are
    expanded, so "MDS/AML" stays one term); terms left with no tokens ("advanced") are dropped,
    and so are repeats.
    """
    out: list[ConditionTerm] = []
    for part in _CONDITION_SPLIT.split(_protect_and(text)):
        part = part.strip(" .")
        toks = tuple(condition_tokens(part))
        if toks and all(t.key != " ".join(toks) for t in out):
            out.append(ConditionTerm(part, toks))
    return out


# "head and neck", "graft versus host" are one condition; do not split on their "and".
_KEEP_TOGETHER = re.compile(r"\bhead and neck\b", re.IGNORECASE)


def _protect_and(text: str) -> str:
    return _KEEP_TOGETHER.sub("head-neck", expand_abbreviations(text))


def registry_condition_terms(conditions: Iterable[str]) -> list[ConditionTerm]:
    """Each registry condition as one term (a registry lists one condition per entry).

    Conditions that come to the same words are one term, the first of them. Linear in the number
    of conditions (a record holds at most ``pipeline.registries.MAX_CONDITIONS``).
    """
    return _registry_condition_terms(tuple(conditions))


@_memo_list
def _registry_condition_terms(conditions: tuple[str, ...]) -> list[ConditionTerm]:
    out: dict[str, ConditionTerm] = {}
    for condition in conditions:
        toks = tuple(condition_tokens(_protect_and(condition)))
        key = " ".join(toks)
        if toks and key not in out:
            out[key] = ConditionTerm(condition, toks)
    return list(out.values())


HEMATOLOGIC_WORDS = frozenset(
    "lymphoma leukemia myeloma myelodysplastic hematologic blood myeloproliferative "
    "lymphoproliferative".split()
)
SOLID_CANCER_WORDS = frozenset(
    "cancer melanoma sarcoma glioma glioblastoma mesothelioma blastoma neuroblastoma "
    "cholangiocarcinoma".split()
)


def is_solid_cancer(term: ConditionTerm) -> bool:
    """A cancer that is not a blood cancer (melanoma, NSCLC, sarcoma ... yes; lymphoma no)."""
    words = set(term.tokens)
    return bool(words & SOLID_CANCER_WORDS) and not words & HEMATOLOGIC_WORDS


def is_solid_tumor_umbrella(term: ConditionTerm) -> bool:
    """The umbrella "solid tumors" (any solid cancer), possibly with "other"/"neoplasm"."""
    return set(term.tokens) == {"solid", "cancer"}


def term_similarity(a: ConditionTerm, b: ConditionTerm) -> float:
    """rapidfuzz ``token_set_ratio`` of two terms' tokens (100 when one's words contain the other's).

    Terms with numbers, none of them shared, are different conditions whatever their letters
    ("type 1 diabetes" and "type 2 diabetes" would score 93): their similarity is 0.
    """
    numbers_a = {t for t in a.tokens if t.isdigit()}
    numbers_b = {t for t in b.tokens if t.isdigit()}
    if numbers_a and numbers_b and not numbers_a & numbers_b:
        return 0.0
    return float(fuzz.token_set_ratio(a.key, b.key))


def named_in(term: ConditionTerm, text_tokens: set[str], coverage: float) -> bool:
    """Whether ``text_tokens`` (a sentence's :func:`tokens`) hold enough of ``term``'s words.

    A term of one or two words must be there whole; a longer one may miss some, down to
    ``coverage`` of its words: at 2/3, "idiopathic inflammatory myopathy" is named by a
    sentence saying "idiopathic inflammatory myositis" (2 of 3 words).
    """
    words = set(term.tokens)
    found = len(words & text_tokens)
    if len(words) <= 2:
        return found == len(words)
    return found / len(words) >= coverage


# ---------------------------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------------------------

ENDPOINT_TERMS: dict[str, str] = {
    "ORR": r"\bobjective (?:tumou?r )?response|\boverall response rate|\borr\b|\bbest overall response"
           r"|\bresponse rate\b",
    "PFS": r"\bprogression free|\bpfs\b",
    "OS": r"\boverall survival\b|\bos\b",
    "DCR": r"\bdisease control\b|\bdcr\b|\bclinical benefit rate",
    "SAFETY": r"\bsafety\b|\badverse (?:events?|reactions?|effects?)\b|\baes?\b|\bsaes?\b|\bteaes?\b"
              r"|\btolerab|\bside effects?\b|\btoxicit|\bctcae\b",
    "DLT": r"\bdose limiting\b|\bdlts?\b|\btreatment limiting\b",
    "MTD": r"\bmaximum tolerated dose\b|\bmtd\b|\brecommended phase (?:2|ii) dose\b|\brp2d\b",
    "TREG": r"\bregulatory t cells?\b|\btregs?\b",
    "CDR": r"\bcdr\b|\bclinical dementia rating\b",
    "FEASIBILITY": r"\bfeasib",
    "PRO": r"\bpatient reported\b|\bquality of life\b|\bqol\b|\bsymptom scores?\b",
    "IMMUNE": r"\bimmune (?:effectors?|responses?|cells?|markers?)\b|\bimmunolog",
    "DISEASE_ACTIVITY": r"\bdisease activity\b",
}
"""Endpoint term -> the wordings that name it (on folded text: lower case, hyphens as spaces).

Safety wordings include dose-limiting and treatment-limiting toxicities, so a DLT endpoint is
also a SAFETY endpoint ("safety" on the page matches "incidence of DLTs" in the registry).
"""

_ENDPOINT_PATTERNS = {term: re.compile(pattern) for term, pattern in ENDPOINT_TERMS.items()}


def endpoint_terms(text: str) -> set[str]:
    """The endpoint terms (:data:`ENDPOINT_TERMS`) a text names."""
    return set(_endpoint_terms(text))


@lru_cache(maxsize=CACHE_SIZE)
def _endpoint_terms(text: str) -> frozenset[str]:
    folded = " ".join(_fold(text).split())
    return frozenset(term for term, pattern in _ENDPOINT_PATTERNS.items() if pattern.search(folded))


# ---------------------------------------------------------------------------------------------
# Drug names
# ---------------------------------------------------------------------------------------------

DRUG_ALIASES: dict[str, tuple[str, ...]] = {
    "aldesleukin": ("aldesleukin", "proleukin", "interleukin 2", "il 2", "rhil 2", "ril 2"),
}
"""A drug (the page's subject) -> the names it goes by; a space stands for a hyphen, a space or
nothing ("il 2" finds "IL-2", "IL 2" and "IL2")."""

PRODUCT_CODES: dict[str, tuple[str, str]] = {
    # The registry facts of NCT05153070: "ILT101 (low-dose IL-2)", "the IL-2 product is ILT-101".
    "ilt101": ("low-dose interleukin-2", "ILTOO Pharma's IL-2 product"),
}
"""A sponsor's product code (folded, without spaces or hyphens) -> what it is, in words the
drug patterns read, and whose product it is. A registry may list a product only by its code:
"ILT101" is low-dose IL-2."""


def product_is_drug(name: str, pattern: re.Pattern[str]) -> str | None:
    """What a listed product code is, when :data:`PRODUCT_CODES` knows it as a form of the drug
    ``pattern`` finds ("ILT101" -> "low-dose interleukin-2 (ILTOO Pharma's IL-2 product)")."""
    known = PRODUCT_CODES.get(fold(name).replace(" ", ""))
    if known is None or not find_drug(pattern, known[0]):
        return None
    return f"{known[0]} ({known[1]})"


# International non-proprietary names by their stems (-mab antibodies, -leucel/-cel cell
# therapies, -cept fusion proteins, -nib kinase inhibitors) and sponsors' codes ("LN-145",
# "ICT01", "CNTY-101": letters, then two or more digits).
_PRODUCT_NAME = re.compile(
    r"(?<![A-Za-z0-9-])(?:[A-Za-z]{3,}(?:mab|leucel|cel|cept|nib)|[A-Z]{2,6}-?\d{2,4}[A-Z]?)(?![A-Za-z0-9])"
)


def named_products(text: str, drug: re.Pattern[str]) -> list[str]:
    """The products (by INN stem or sponsor's code) ``text`` names, other than the page's drug.

    Example: ``named_products("compares lifileucel plus pembrolizumab with pembrolizumab alone",
    drug)`` -> ``["lifileucel", "pembrolizumab"]``.
    """
    found: list[str] = []
    for m in _PRODUCT_NAME.finditer(drug.sub(" ", text)):
        if all(fold(m.group(0)) != fold(f) for f in found):
            found.append(m.group(0))
    return found


def names_product(product: str, text: str | None) -> bool:
    """Whether ``text`` names ``product``, case, hyphens and spaces aside ("LN 145" is "LN-145").

    The product's folded letters must be one to three whole words of the text, run together.
    """
    if not text:
        return False
    key = fold(product).replace(" ", "")
    words = fold(text).split()
    return any("".join(words[i:j]) == key for i in range(len(words)) for j in range(i + 1, min(i + 3, len(words)) + 1))


# "IL-2 receptor", "IL-2 analog": another molecule that only carries IL-2 in its name.
_NOT_THE_DRUG_AFTER = (
    r"(?![\s-]+(?:receptor|r|analog|analogue|agonist|variant|mutein|fusion|superagonist|antibody|pathway)\b)"
)


def drug_pattern(drug: str) -> re.Pattern[str]:
    """A case-blind pattern finding ``drug`` under any of its names (:data:`DRUG_ALIASES`).

    It works on raw text and on :func:`fold`-ed text alike.
    """
    key = fold(drug)
    names = DRUG_ALIASES.get(key, (key,))
    alternatives = "|".join(
        re.escape(n).replace(r"\ ", r"[\s-]?") for n in sorted(names, key=len, reverse=True)
    )
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9]){_NOT_THE_DRUG_AFTER}", re.IGNORECASE)


def fold(text: str) -> str:
    """``text`` lower-cased, without accents, every run of punctuation a single space."""
    return " ".join(_fold(text).split())


def find_drug(pattern: re.Pattern[str], text: str | None) -> str | None:
    """The first name of the drug in ``text``, as written there, or None."""
    if not text:
        return None
    m = pattern.search(text)
    return m.group(0) if m else None


# ---------------------------------------------------------------------------------------------
# Titles
# ---------------------------------------------------------------------------------------------

TITLE_STOP_WORDS = STOP_WORDS | frozenset(
    "study studies trial evaluate evaluating assess assessing effectiveness efficacy safety "
    "benefit effect treatment patients patient participants people who comparing compared "
    "investigate investigating".split()
)


def title_tokens(text: str, drop: re.Pattern[str] | None = None) -> list[str]:
    """Words of a title that tell trials apart: no stop words, no names of the page's drug."""
    if drop is not None and drop.search(fold(text)) is None:
        # Nothing of the page's drug to drop: the title's words as remembered from every other
        # page (each page has a pattern of its own, so keyed on it they were made again per page).
        drop = None
    return _title_tokens(text, drop)


@_memo_list
def _title_tokens(text: str, drop: re.Pattern[str] | None) -> list[str]:
    folded = fold(text)
    if drop is not None:
        folded = drop.sub(" ", folded)
    return [_singular(w) for w in folded.split() if w not in TITLE_STOP_WORDS]


def title_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """rapidfuzz ``token_set_ratio`` of two titles' :func:`title_tokens`."""
    if not a or not b:
        return 0.0
    return float(fuzz.token_set_ratio(" ".join(a), " ".join(b)))


def title_similarities(a: Sequence[str], others: Sequence[Sequence[str]]) -> list[float]:
    """:func:`title_similarity` of ``a`` with each of ``others``, in their order: the same scores,
    all computed in one call into rapidfuzz (a site's ongoing entries score hundreds of
    thousands of titles, and a Python call per pair was most of their cost)."""
    scores = [0.0] * len(others)
    if not a:
        return scores
    joined = [" ".join(b) for b in others]
    for _, score, n in process.extract(" ".join(a), joined, scorer=fuzz.token_set_ratio, limit=None):
        if others[n]:
            scores[n] = float(score)
    return scores
