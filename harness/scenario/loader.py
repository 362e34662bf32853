"""Load a scenario file: YAML -> validated :class:`Scenario`, or :class:`BadInput` naming the field.

Nothing here touches the host: validation happens before any backend runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cthcommon.errors import BadInput
from harness.scenario.model import REMEDIATION_KINDS, Scenario


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_SUBPATH = re.compile(r"^@([A-Za-z0-9_.\[\]]+): (.*)$", re.DOTALL)


def _join(base: str, sub: str) -> str:
    if not base:
        return sub.lstrip(".")
    return base + sub if sub.startswith("[") else f"{base}.{sub}"


def _problem(err: Any) -> BadInput:
    """One pydantic error as a BadInput naming its field."""
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # pydantic names the discriminated-union member after remediations[i]; drop that tag
    # (only there: "coredns" is also a field of the cluster)
    loc = tuple(
        p
        for i, p in enumerate(loc)
        if not (
            i >= 2
            and loc[i - 2] == "remediations"
            and isinstance(loc[i - 1], int)
            and p in REMEDIATION_KINDS
        )
    )
    msg = err["msg"].removeprefix("Value error, ")
    # a model-level validator may name the sub-field it means: "@sub.path: message"
    sub = _SUBPATH.match(msg)
    field = _path(loc)
    if sub:
        field = _join(field, sub.group(1))
        msg = sub.group(2)
    ctx = err.get("ctx") or {}
    allowed = ctx.get("expected") or ctx.get("discriminator")
    value = err.get("input")
    if sub:  # the input was the whole enclosing object; the message already names it
        value = None
    elif isinstance(value, dict | list):
        try:
            value = json.dumps(value, default=str)[:80]
        except (TypeError, ValueError):  # YAML keys may be dates, which JSON cannot hold
            value = repr(value)[:80]
    return BadInput(msg, field=field or "(top level)", value=value, allowed=allowed)


def parse_scenario(
    data: Any, *, source: str = "<scenario>", base_dir: str | Path | None = None
) -> Scenario:
    """Validate ``data``; a BadInput names the first bad field and lists every problem.
    ``base_dir``: where relative paths in the scenario (a locustfile) are resolved from;
    default the directory of ``source`` when it is a file, else the working directory."""
    if not isinstance(data, dict):
        raise BadInput(
            "a scenario is a YAML mapping",
            field="(top level)",
            value=type(data).__name__,
            source=source,
        )
    if base_dir is None:
        base_dir = Path(source).parent if Path(source).is_file() else Path.cwd()
    try:
        return Scenario.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as e:
        problems = [_problem(err) for err in e.errors()]
        first = problems[0]
        err = BadInput(
            str(first).split(": ", 1)[1],  # the message; BadInput puts the field first again
            field=first.field,
            source=source,
        )
        err.value, err.allowed = first.value, first.allowed
        if len(problems) > 1:  # every problem, one a line, so one edit can fix them all
            err.args = (
                f"{err}\n{len(problems)} problems in all:"
                + "".join(f"\n  - {p}" for p in problems),
            )
        raise err from None
    except BadInput as e:
        raise BadInput(str(e), source=source) from None


def yaml_error_line(e: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: where, and what."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {problem}"


# Scenarios are a few kB; a huge file is a mistake, and parsing it would take minutes and GBs.
MAX_SCENARIO_BYTES = 1 << 20


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (PyYAML keeps the last)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # "<<": keys written here override it
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: the constructor below reports it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                f"while reading the mapping that starts at line {node.start_mark.line + 1}",
                node.start_mark,
                f"duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def read_yaml(text: str) -> Any:
    """Parse one YAML document with the scenario rules (safe types, no duplicate keys)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def load_scenario(path: str | Path) -> Scenario:
    return read_scenario(path)[0]


def read_scenario(path: str | Path) -> tuple[Scenario, str]:
    """The scenario and the text it was parsed from: the file is read once, so a run keeps
    what it ran even if the file changes or goes away meanwhile."""
    p = Path(path)
    if not p.is_file():
        raise BadInput("scenario file not found", field="SCENARIO_FILE", value=str(p))
    try:
        size = p.stat().st_size
        if size > MAX_SCENARIO_BYTES:
            raise BadInput(
                f"the file is {size} bytes; a scenario may be at most {MAX_SCENARIO_BYTES} bytes",
                field="(file)",
                source=str(p),
            )
        text = p.read_text()
        data = read_yaml(text)
    except yaml.YAMLError as e:
        raise BadInput(yaml_error_line(e), field="(file)", source=str(p)) from None
    except UnicodeDecodeError:
        raise BadInput("not UTF-8 text", field="(file)", source=str(p)) from None
    except OSError as e:
        msg = f"cannot read it: {e.strerror or e}"
        raise BadInput(msg, field="SCENARIO_FILE", value=str(p)) from None
    return parse_scenario(data, source=str(p)), text


def json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    schema["$id"] = "https://conntrack-harness.dev/schema/scenario-v1.json"
    schema["title"] = "conntrack-harness scenario"
    return schema
