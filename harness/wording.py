"""How the CLI words a count (pure; imports nothing, so ``compare`` and ``validate`` pay
nothing for it at start-up)."""

from __future__ import annotations


def phases_text(n: int) -> str:
    """``1 phase``, ``3 phases``: a count of phases as the CLI prints it."""
    return f"{n} phase" if n == 1 else f"{n} phases"
