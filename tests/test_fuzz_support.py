"""Shared machinery of the fuzz tests (``tests/test_fuzz_*.py``); it holds no tests itself.

Every fuzz test states one property: whatever the input, a parser returns records or raises one of
our typed errors (:class:`pipeline.errors.TrialreconError`) naming the input, never another
exception, and never hangs. Inputs are random bytes and mutated real samples (fields removed,
types changed, truncated, re-encoded, deep nesting, huge values, NUL bytes).

Examples per parser: ``TRIALRECON_FUZZ_EXAMPLES`` (default 200). With the default the run is
derandomized (the same examples every time, so ``make test`` is stable); setting the variable
also draws fresh random examples. A test runs its examples through :func:`fuzz` (a registry
parser through :func:`fuzz_parser`), which prints how many it ran, e.g.
``[fuzz] ctgov.parse_ctgov: 200 examples``.

Hang guard: hypothesis' ``deadline`` fails an example that is slow, and :func:`hang_guard`
interrupts one that never ends (SIGALRM), so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pipeline.errors import TrialreconError
from pipeline.models import TrialRecord

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "samples"

_ENV = os.environ.get("TRIALRECON_FUZZ_EXAMPLES")
FUZZ_EXAMPLES = int(_ENV) if _ENV else 200
HANG_SECONDS = 20.0  # an example this long is a hang, not a slow input

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    # Generous: the largest sample (1.5 MB of CT.gov JSON) takes tens of milliseconds; a slow CI
    # machine must not fail on it, a quadratic blow-up must.
    deadline=timedelta(seconds=5),
    derandomize=_ENV is None,
    database=None,  # no .hypothesis/ folder in the repo; failures print a reproduction blob
    print_blob=True,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                           HealthCheck.function_scoped_fixture],
)


class Hang(BaseException):
    """An example ran past the hang guard (BaseException so that no ``except Exception`` eats it)."""


@contextmanager
def hang_guard(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Interrupt the block with :class:`Hang` after ``seconds`` (main thread only, like pytest)."""

    def _interrupt(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds:.0f}s")

    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _excerpt(data: object) -> str:
    text = repr(data)
    return text if len(text) <= 300 else f"{text[:300]}… ({len(text)} chars)"


def check_outcome(call: Callable[[], Any], *, names: str | None, data: object) -> Any:
    """Run ``call``; return its result, or None when it raised one of our errors.

    Fails (AssertionError, so hypothesis shrinks the input) on any other exception, on a hang,
    and on one of our errors whose message does not name the input (``names``).
    """
    try:
        with hang_guard():
            return call()
    except Hang as exc:
        raise AssertionError(f"hang: {exc}; input {_excerpt(data)}") from None
    except TrialreconError as exc:
        if names is not None:
            assert names in str(exc), f"error does not name {names!r}: {exc}"
        return None
    except Exception as exc:
        raise AssertionError(
            f"{type(exc).__name__} is not a TrialreconError: {exc!s:.300}; input {_excerpt(data)}"
        ) from exc


def check_records(records: object) -> list[TrialRecord]:
    """A parser's result is a list of TrialRecords (possibly empty)."""
    assert isinstance(records, list), f"parser returned {type(records).__name__}, not a list"
    for record in records:
        assert isinstance(record, TrialRecord), f"parser returned a {type(record).__name__}"
    return records


class Counter:
    """Counts the examples a fuzz test ran and prints the count past pytest's capture."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.examples = 0
        self.errors = 0

    def tick(self, outcome: object) -> None:
        self.examples += 1
        self.errors += outcome is None

    def report(self, capsys: pytest.CaptureFixture[str]) -> None:
        with capsys.disabled():
            print(f"\n[fuzz] {self.name}: {self.examples} examples "
                  f"({self.examples - self.errors} parsed, {self.errors} typed errors)")


def fuzz(name: str, capsys: pytest.CaptureFixture[str], attempt: Callable[..., object], /,
         **inputs: st.SearchStrategy[Any]) -> Counter:
    """Run ``attempt`` on :data:`FUZZ` examples drawn from ``inputs``, and print how many ran.

    Args:
        name: what is fuzzed, for the printed count (e.g. ``"ctis.parse_ctis"``).
        capsys: the test's fixture, to print past pytest's capture.
        attempt: takes one example's values by the keywords of ``inputs``, asserts the property
            and returns the outcome (None for a typed error, as :func:`check_outcome` does).
        inputs: a strategy for each keyword of ``attempt``.

    Returns:
        The counter, for the test to assert how many examples ran.
    """
    counter = Counter(name)

    @FUZZ
    @given(**inputs)
    def run(**example: Any) -> None:
        counter.tick(attempt(**example))

    run()
    counter.report(capsys)
    return counter


def records_or_error(parse: Callable[[], object], *, names: str | None, data: object) -> list[TrialRecord] | None:
    """:func:`check_outcome` of a parser: its records, checked by :func:`check_records`, or None
    for one of our errors naming ``names``."""
    records = check_outcome(parse, names=names, data=data)
    return None if records is None else check_records(records)


def fuzz_parser(name: str, capsys: pytest.CaptureFixture[str], parse: Callable[..., object],
                inputs: st.SearchStrategy[bytes], *, path: str) -> Counter:
    """:func:`fuzz` a registry parser: ``parse(data, path=path)`` gives records or a typed error
    naming ``path`` for every ``data`` drawn from ``inputs``."""
    return fuzz(name, capsys, lambda data: records_or_error(lambda: parse(data, path=path), names=path, data=data),
                data=inputs)


# -- samples -------------------------------------------------------------------------------------


class Sample:
    """One shared sample file. Not a dataclass: hypothesis prints a dataclass field by field,
    and a failing example would print megabytes of sample."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data

    def __repr__(self) -> str:
        return f"Sample({self.name!r})"

    @property
    def tree(self) -> Any:
        return _tree(self.data)


@cache
def _tree(data: bytes) -> Any:
    return orjson.loads(data)


@cache
def samples(pattern: str) -> tuple[Sample, ...]:
    """The shared samples matching ``pattern`` (a glob under ../shared/samples), sorted by name."""
    found = tuple(Sample(p.name, p.read_bytes()) for p in sorted(SAMPLES.glob(pattern)))
    assert found, f"no samples match {SAMPLES / pattern}"
    return found


# -- values that break assumptions -------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON value that orjson will not write (huge int, NaN, deep nesting): bytes spliced in."""

    json: bytes
    python: Any


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


DEEP = 20_000
RAW_VALUES = [
    Raw(b"1" + b"0" * 5000, 10**5000),  # more digits than int() converts by default
    Raw(b"-1e999", float("-inf")),
    Raw(b"NaN", float("nan")),
    Raw(b"Infinity", float("inf")),
    Raw(b"[" * DEEP + b"]" * DEEP, _nested(DEEP)),
    Raw(b'{"a":' * DEEP + b"1" + b"}" * DEEP, _nested(DEEP)),
    Raw(b'"\\ud800"', "\ud800"),  # a lone surrogate
    Raw(b'"\x00\x01\x1f"', "\x00\x01\x1f"),  # raw control characters in a string: invalid JSON
]

HUGE_TEXT = "x" * 1_000_000

_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson writes
plain_values = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.just(""),
    st.just(HUGE_TEXT),
    st.just("\x00" * 8),
    st.just("NCT00000000"),
    st.just("2023-000000-00-00"),
    st.lists(st.one_of(st.none(), _ints, st.text(max_size=10)), max_size=4),
    st.dictionaries(st.text(max_size=10), st.one_of(st.none(), _ints, st.text(max_size=10)), max_size=4),
)
hostile_values = st.one_of(plain_values, st.sampled_from(RAW_VALUES))


# -- JSON tree mutations -------------------------------------------------------------------------


def _get(tree: Any, path: Sequence[Any]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _replace(tree: Any, path: Sequence[Any], change: Callable[[Any, Any], Any]) -> Any:
    """A copy of ``tree`` with ``change(parent, key)`` applied at ``path``; only the path is copied."""
    if not path:
        return change(None, None)
    key, rest = path[0], path[1:]
    copy: Any = dict(tree) if isinstance(tree, dict) else list(tree)
    if rest:
        copy[key] = _replace(tree[key], rest, change)
    else:
        result = change(copy, key)
        if result is not _DELETE:
            copy[key] = result
        elif isinstance(copy, dict):
            del copy[key]
        else:
            copy.pop(key)
    return copy


_DELETE = object()


@st.composite
def json_paths(draw: st.DrawFn, tree: Any, hot: Sequence[Sequence[Any]] = ()) -> tuple[Any, ...]:
    """A path into ``tree``: a random walk, half the time from one of the ``hot`` subtrees (where
    the parser reads), stopping at each level with probability 1/4."""
    path: list[Any] = []
    starts = [p for p in hot if _has(tree, p)]
    if starts and draw(st.booleans()):
        path = list(draw(st.sampled_from(starts)))
    node = _get(tree, path)
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)) > 0:
        key = draw(st.sampled_from(sorted(node))) if isinstance(node, dict) else draw(st.integers(0, len(node) - 1))
        path.append(key)
        node = node[key]
    return tuple(path)


def _has(tree: Any, path: Sequence[Any]) -> bool:
    try:
        _get(tree, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


@st.composite
def mutated_trees(draw: st.DrawFn, tree: Any, hot: Sequence[Sequence[Any]] = (), raw: bool = True) -> Any:
    """``tree`` with one to three mutations: a field removed, emptied, renamed, its type changed,
    wrapped in a list, or replaced by one of its children. ``raw`` allows :class:`Raw` values."""
    values = hostile_values if raw else plain_values
    for _ in range(draw(st.integers(1, 3))):
        path = draw(json_paths(tree, hot))
        op = draw(st.sampled_from(["delete", "retype", "retype", "empty", "wrap", "unwrap", "rename"]))
        if not path or (op == "rename" and not isinstance(_get(tree, path[:-1]), dict)):
            op = "retype"
        if op == "delete":
            tree = _replace(tree, path, lambda parent, key: _DELETE)
        elif op == "retype":
            value = draw(values)
            tree = _replace(tree, path, lambda parent, key, v=value: v)
        elif op == "empty":
            tree = _replace(tree, path, lambda parent, key: type(_get(tree, path))() if isinstance(
                _get(tree, path), (dict, list, str)) else None)
        elif op == "wrap":
            tree = _replace(tree, path, lambda parent, key: [_get(tree, path), _get(tree, path)])
        elif op == "unwrap":
            node = _get(tree, path)
            if isinstance(node, (dict, list)) and node:
                child = draw(st.sampled_from(list(node.values()) if isinstance(node, dict) else node))
                tree = _replace(tree, path, lambda parent, key, c=child: c)
        else:
            old = path[-1]
            new = draw(st.sampled_from([str(old).upper(), f"{old}_", f" {old}", ""]))
            value = _get(tree, path)

            def rename(parent: dict[str, Any], key: str, new: str = new, value: Any = value) -> Any:
                parent[new] = value
                return _DELETE if new != key else value

            tree = _replace(tree, path, rename)
    return tree


def dumps_with_raw(tree: Any) -> bytes:
    """JSON bytes of ``tree``, with every :class:`Raw` value spliced in as its raw bytes."""
    raws: list[bytes] = []

    def placeholder(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value.json)
            return f"@@FUZZRAW{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {k: placeholder(v) for k, v in value.items()}
        if isinstance(value, list):
            return [placeholder(v) for v in value]
        return value

    data = orjson.dumps(placeholder(tree))
    return re.sub(rb'"@@FUZZRAW(\d+)@@"', lambda m: raws[int(m.group(1))], data)


def python_values(tree: Any) -> Any:
    """``tree`` with every :class:`Raw` value as its Python value (for parsers that take dicts)."""
    if isinstance(tree, Raw):
        return tree.python
    if isinstance(tree, dict):
        return {k: python_values(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [python_values(v) for v in tree]
    return tree


# -- byte and text mutations ---------------------------------------------------------------------

ENCODINGS = ["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"]
BOMS = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"]


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one or two byte-level mutations: truncated, NUL bytes inserted, bytes
    overwritten, random bytes spliced in, re-encoded (latin-1, cp1252, UTF-16/32, BOM), a BOM
    put in front, or repeated."""
    for _ in range(draw(st.integers(1, 2))):
        op = draw(st.sampled_from(["truncate", "truncate", "nul", "overwrite", "splice", "reencode", "bom",
                                   "repeat"]))
        at = draw(st.integers(0, len(data)))
        if op == "truncate":
            data = data[:at]
        elif op == "nul":
            data = data[:at] + b"\x00" * draw(st.integers(1, 4)) + data[at:]
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data = data[:at] + chunk + data[at + len(chunk):]
        elif op == "splice":
            data = data[:at] + draw(st.binary(max_size=64)) + data[at:]
        elif op == "reencode":
            encoding = draw(st.sampled_from(ENCODINGS))
            data = data.decode("utf-8", errors="replace").encode(encoding, errors="replace")
        elif op == "bom":
            data = draw(st.sampled_from(BOMS)) + data
        else:
            data = data * 2
    return data


@st.composite
def json_inputs(draw: st.DrawFn, pool: Sequence[Sample], hot: Sequence[Sequence[Any]] = ()) -> bytes:
    """Bytes for a JSON parser: a mutated sample (structure, bytes or both) or random bytes."""
    how = draw(st.sampled_from(["tree", "tree", "tree", "tree+bytes", "bytes", "random"]))
    if how == "random":
        return draw(st.binary(max_size=512))
    sample = draw(st.sampled_from(pool))
    data = sample.data if how == "bytes" else dumps_with_raw(draw(mutated_trees(sample.tree, hot)))
    return draw(mutated_bytes(data)) if how != "tree" else data


@st.composite
def mutated_lines(draw: st.DrawFn, text: str) -> str:
    """``text`` with one to four line-level mutations: lines deleted, duplicated, swapped, cut,
    joined, replaced by random or huge text, line endings changed."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [draw(st.text(max_size=80))]
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(i, min(len(lines), i + 40)))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "cut", "join", "random", "huge", "endings",
                                   "digits"]))
        if op == "delete":
            del lines[i:j]
        elif op == "duplicate":
            lines[i:i] = lines[i:j] * draw(st.integers(1, 3))
        elif op == "swap":
            k = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[k] = lines[k], lines[i]
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "join" and i + 1 < len(lines):
            lines[i : i + 2] = [lines[i] + lines[i + 1]]
        elif op == "random":
            lines[i] = draw(st.text(max_size=120))
        elif op == "huge":
            unit = lines[i][:200] or "x"
            lines[i] = unit * (draw(st.sampled_from([10_000, 200_000])) // len(unit))
        elif op == "endings":
            return draw(st.sampled_from(["\r\n", "\r", "\n\n", "\t"])).join(lines)
        else:
            lines[i] = re.sub(r"\d", lambda m: draw(st.sampled_from(["", "9" * 30, "٣", m.group()])), lines[i])
    return "\n".join(lines)


@st.composite
def text_inputs(draw: st.DrawFn, pool: Sequence[Sample]) -> bytes:
    """Bytes for a text parser: a sample with line or byte mutations, or random bytes."""
    how = draw(st.sampled_from(["lines", "lines", "lines+bytes", "bytes", "random"]))
    if how == "random":
        return draw(st.binary(max_size=512))
    sample = draw(st.sampled_from(pool))
    data = sample.data
    if how.startswith("lines"):
        data = draw(mutated_lines(data.decode("utf-8", errors="replace"))).encode("utf-8", errors="surrogatepass")
    return draw(mutated_bytes(data)) if how != "lines" else data


# -- HTML mutations ------------------------------------------------------------------------------

SCRIPT_MARK = "FUZZSCRIPT7Q"
_TAG = re.compile(rb"<[^<>]{1,2000}>")


@st.composite
def mutated_html(draw: st.DrawFn, data: bytes) -> bytes:
    """HTML with one to three markup mutations: a tag removed, a run of markup removed, a
    ``<script>``/``<style>``/comment carrying :data:`SCRIPT_MARK` inserted, a huge attribute, deep
    nesting, an element duplicated, an unclosed tag."""
    for _ in range(draw(st.integers(1, 3))):
        tags = [m.span() for m in _TAG.finditer(data)] or [(0, 0)]
        i = draw(st.integers(0, len(tags) - 1))
        start, end = tags[i]
        op = draw(st.sampled_from(["drop_tag", "drop_run", "script", "huge_attr", "deep", "duplicate", "unclosed"]))
        if op == "drop_tag":
            data = data[:start] + data[end:]
        elif op == "drop_run":
            k = draw(st.integers(i, min(len(tags) - 1, i + 30)))
            data = data[:start] + data[tags[k][1]:]
        elif op == "script":
            wrapper = draw(st.sampled_from([b"<script>%s</script>", b"<style>%s</style>", b"<!-- %s -->",
                                            b"<noscript>%s</noscript>", b"<template>%s</template>"]))
            data = data[:end] + wrapper % f"var x = '{SCRIPT_MARK}';".encode() + data[end:]
        elif op == "huge_attr":
            size = draw(st.sampled_from([10_000, 1_000_000]))
            data = data[:end] + b'<span data-x="' + b"a" * size + b'">x</span>' + data[end:]
        elif op == "deep":
            depth = draw(st.sampled_from([100, 5_000]))
            data = data[:end] + b"<div>" * depth + b"deep" + b"</div>" * depth + data[end:]
        elif op == "duplicate":
            k = draw(st.integers(i, min(len(tags) - 1, i + 30)))
            data = data[:start] + data[start : tags[k][1]] * 2 + data[tags[k][1]:]
        else:
            data = data[:end] + b"<td><table><tr" + data[end:]
    return data


@st.composite
def html_inputs(draw: st.DrawFn, pool: Sequence[Sample]) -> bytes:
    """Bytes for an HTML parser: a sample with markup or byte mutations, or random bytes."""
    how = draw(st.sampled_from(["html", "html", "html", "html+bytes", "bytes", "random"]))
    if how == "random":
        return draw(st.binary(max_size=512))
    sample = draw(st.sampled_from(pool))
    data = sample.data if how == "bytes" else draw(mutated_html(sample.data))
    return draw(mutated_bytes(data)) if how != "html" else data

