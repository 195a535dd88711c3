"""``python -m tests.chaos.run [--size full|reduced] [--only NAME] [--write-docs]``: run the
scenarios, print the table, and (with --write-docs) put it into docs/reliability.md."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import tempfile
import time
import traceback
from pathlib import Path

from botqueue.logs import configure_logging
from tests.chaos import secrets_sweep
from tests.chaos.report import render, write_into
from tests.chaos.scenario import Result, discover

ROOT = Path(__file__).resolve().parents[2]


async def _run_all(size: str, only: list[str]) -> tuple[list[Result], list[str], str]:
    results: list[Result] = []
    failures: list[str] = []
    for scenario in discover():
        if only and scenario.name not in only:
            continue
        print(f"chaos: {scenario.name} ({size}) ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"chaos-{scenario.name}-") as workdir:
            try:
                rows = await scenario.run(size, Path(workdir))  # type: ignore[arg-type]
                for row in rows:
                    row.check()
            except Exception:
                failures.append(f"{scenario.name}:\n{traceback.format_exc()}")
                continue
        results.extend(rows)
        took = time.monotonic() - started
        print(f"chaos: {scenario.name} done in {took:.0f} s", file=sys.stderr, flush=True)
    swept = ""
    try:
        workers, characters = secrets_sweep.sweep()
        swept = (
            f"Secrets sweep: no form of any bot token (whole, secret half, URL-encoded) in "
            f"the output of the {workers} worker processes above ({characters:,} characters)."
        )
    except AssertionError as leak:
        failures.append(f"secrets sweep: {leak}")
    return results, failures, swept


def main(argv: list[str] | None = None) -> int:
    """Run, print, optionally write; exit 1 when a scenario failed or broke a promise."""
    parser = argparse.ArgumentParser(prog="dev.py chaos")
    parser.add_argument("--size", choices=["full", "reduced"], default="full")
    parser.add_argument("--only", action="append", default=[], help="scenario name (repeat)")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    # The scenarios' producers would log every enqueue here; the workers log for themselves.
    configure_logging("warning")
    results, failures, swept = asyncio.run(_run_all(args.size, args.only))
    table = render(results) + (f"\n\n{swept}" if swept else "")
    print(table)
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    if args.write_docs and not failures and not args.only:
        command = "python3 dev.py chaos" + ("" if args.size == "full" else " --size reduced")
        write_into(ROOT / "docs" / "reliability.md", table, command, str(datetime.date.today()))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
