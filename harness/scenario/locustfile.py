"""Check a scenario's locustfile without importing it (Locust stays out of the harness).

Parsed, not run: a syntax error, or a ``user_classes`` name with no class of that name at the
top of the file, is bad input (exit 2) before anything is built. Whether a class really is a
Locust User is known only when Locust imports the file, in its own process.
"""

from __future__ import annotations

import ast
from pathlib import Path


def top_level_classes(path: Path) -> set[str]:
    """The names of the classes defined at the top of ``path``; ValueError when it does not
    parse as Python."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as e:
        raise ValueError(f"locustfile is not valid Python: line {e.lineno}: {e.msg}") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the locustfile: {e}") from None
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef)}


def check_user_classes(path: Path, names: list[str] | None) -> None:
    """ValueError (as ``@user_classes: ...``) naming a class the file does not define."""
    defined = top_level_classes(path)
    missing = [n for n in names or [] if n not in defined]
    if missing:
        raise ValueError(
            f"@user_classes: no class {missing} in {path.name}; it defines {sorted(defined)}"
        )
