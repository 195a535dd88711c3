"""The no-loss table: rendered as Markdown, and written into docs/reliability.md."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from tests.chaos.scenario import Result

BEGIN = "<!-- chaos-table:begin -->"
END = "<!-- chaos-table:end -->"
HEADER = (
    "| scenario | transport | operations | done | dead-lettered (by kind) | lost "
    "| duplicated side effects | extra valid links | time to recover | notes |"
)


def _dead(result: Result) -> str:
    if not result.dead_lettered:
        return "0"
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.dead_lettered.items()))
    return f"{result.dead_total} ({kinds})"


def _recover(result: Result) -> str:
    return "-" if result.recover_s is None else f"{result.recover_s:.1f} s"


def render(results: Sequence[Result]) -> str:
    """The table, one row per result."""
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for r in results:
        cells = [
            r.scenario,
            r.transport,
            str(r.operations),
            str(r.done),
            _dead(r),
            str(r.lost),
            str(r.duplicated),
            str(r.extra_valid_links),
            _recover(r),
            r.notes.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_into(doc: Path, table: str, command: str, date: str) -> None:
    """Replace the table between the markers of ``doc`` (appending them when absent)."""
    block = f"{BEGIN}\nMeasured {date} with `{command}`:\n\n{table}\n{END}"
    text = doc.read_text() if doc.exists() else "# Reliability\n"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)
