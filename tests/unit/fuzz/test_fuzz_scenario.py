"""Fuzz the scenario loader: any input yields a Scenario or the harness's own BadInput.

The inputs are near-valid on purpose: the shipped scenarios, mutated one step at a time (a
value replaced by an arbitrary YAML value, a key dropped or added, the YAML text cut, spliced
or garbled), so that most examples get deep into validation instead of failing at the top.
"""

from __future__ import annotations

import copy
import datetime
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cthcommon.errors import BadInput
from harness.scenario.loader import load_scenario, parse_scenario

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[3]
SCENARIO_FILES = sorted((ROOT / "scenarios").glob("*.yaml"))
TEXTS = [p.read_text() for p in SCENARIO_FILES]
DOCS = [yaml.safe_load(t) for t in TEXTS]

# what YAML can hand the validator: scalars (dates included), lists and mappings
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["auto", "glibc", "musl", "pooling", "short-lived", "race-window", "", "-1"]),
    st.dates(),
    st.datetimes(),
)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=12), st.integers(), st.dates()), inner, max_size=4
        ),
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_docs(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(DOCS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add-key", "wrap"]))
        if not path:
            if action == "replace":
                doc = draw(yaml_values)
            continue
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        last = path[-1]
        if action == "replace":
            parent[last] = draw(yaml_values)
        elif action == "delete":
            del parent[last]
        elif action == "wrap":
            parent[last] = [parent[last]]
        elif isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=10))] = draw(yaml_values)
        else:
            parent[last] = {draw(st.text(max_size=10)): parent[last]}
    return doc


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 40)))
        kind = draw(st.sampled_from(["cut", "splice", "insert", "dup-line"]))
        if kind == "cut":
            text = text[:i] + text[j:]
        elif kind == "splice":
            text = text[:i] + draw(st.text(max_size=20)) + text[j:]
        elif kind == "insert":
            junk = draw(
                st.sampled_from(
                    [
                        ": ",
                        "- ",
                        "\t",
                        "{",
                        "]",
                        "&a ",
                        "*a",
                        "!!python/object:os.system ",
                        "%YAML 1.1\n",
                        "2001-02-30",
                        "0x1F",
                        "~",
                        "---\n",
                        "? ",
                        "\ufeff",
                        "\x00",
                        "nf_conntrack_max: ",
                    ]
                )
            )
            text = text[:i] + junk + text[i:]
        else:
            lines = text.splitlines(keepends=True)
            k = draw(st.integers(0, max(0, len(lines) - 1)))
            text = "".join(lines[: k + 1] + lines[k:])
    return text


def _parse(data: Any) -> None:
    try:
        parse_scenario(data, source="fuzz")
    except BadInput as e:
        message = str(e)
    else:
        return
    assert "fuzz" in message  # a message, naming where it came from


@given(mutated_docs())
def test_mutated_scenario_dicts_give_scenario_or_bad_input(doc: Any) -> None:
    _parse(doc)


@given(yaml_values)
def test_arbitrary_values_give_bad_input(value: Any) -> None:
    _parse(value)


def _load_text(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "s.yaml"
        if isinstance(text, bytes):
            f.write_bytes(text)
        else:
            f.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_scenario(f)
        except BadInput as e:
            message = str(e)
        else:
            return
    assert str(f) in message or "SCENARIO_FILE" in message


@given(mutated_texts())
def test_mutated_yaml_text_gives_scenario_or_bad_input(text: str) -> None:
    _load_text(text)


@given(mutated_docs())
def test_round_tripped_yaml_gives_scenario_or_bad_input(doc: Any) -> None:
    _load_text(yaml.safe_dump(doc, allow_unicode=True))


@given(st.binary(max_size=200))
def test_binary_files_give_bad_input(data: bytes) -> None:
    _load_text(data)


def test_the_unmutated_scenarios_load() -> None:
    """The mutation base is valid: a failure above is the mutation's doing."""
    assert SCENARIO_FILES
    for p in SCENARIO_FILES:
        assert load_scenario(p).name
    assert isinstance(yaml.safe_load("d: 2001-01-01")["d"], datetime.date)
