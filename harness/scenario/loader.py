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

from harness.errors import BadInput
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


def parse_scenario(data: Any, *, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise BadInput(
            "a scenario is a YAML mapping",
            field="(top level)",
            value=type(data).__name__,
            source=source,
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
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
        more = f" (+{len(e.errors()) - 1} more problem(s))" if len(e.errors()) > 1 else ""
        value = err.get("input")
        if sub:  # the input was the whole enclosing object; the message already names it
            value = None
        elif isinstance(value, dict | list):
            try:
                value = json.dumps(value, default=str)[:80]
            except (TypeError, ValueError):  # YAML keys may be dates, which JSON cannot hold
                value = repr(value)[:80]
        raise BadInput(
            msg + more, field=field or "(top level)", value=value, allowed=allowed, source=source
        ) from None
    except BadInput as e:
        raise BadInput(str(e), source=source) from None


def yaml_error_line(e: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: where, and what."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {problem}"


def load_scenario(path: str | Path) -> Scenario:
    return read_scenario(path)[0]


def read_scenario(path: str | Path) -> tuple[Scenario, str]:
    """The scenario and the text it was parsed from: the file is read once, so a run keeps
    what it ran even if the file changes or goes away meanwhile."""
    p = Path(path)
    if not p.is_file():
        raise BadInput("scenario file not found", field="SCENARIO_FILE", value=str(p))
    try:
        text = p.read_text()
        data = yaml.safe_load(text)
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
