"""Run every benchmark under bench/ and print a markdown table of the medians.

    .venv/bin/python bench/run_all.py [--quick] [--only transport,worker,memory,cli]

(``python3 dev.py bench`` runs exactly this.) Each benchmark runs in its own subprocess with
``--json``; its progress goes to stderr as it runs, and the table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

FULL: dict[str, list[str]] = {
    "transport": ["-n", "20000", "--groups", "1000", "--reps", "5"],
    "worker": ["-n", "20000", "--groups", "1000", "--reps", "5", "--concurrency", "10,50"],
    "memory": ["-n", "100000", "--seconds", "5", "--reps", "3", "--concurrency", "10,50"],
    "cli": ["--reps", "10"],
}
QUICK: dict[str, list[str]] = {
    "transport": ["-n", "2000", "--groups", "200", "--reps", "1"],
    "worker": ["-n", "2000", "--groups", "200", "--reps", "1", "--concurrency", "10,50"],
    "memory": ["-n", "10000", "--seconds", "1", "--reps", "1", "--concurrency", "10"],
    "cli": ["--reps", "2"],
}

Row = tuple[str, str, str, str, str]
"""(benchmark, measure, median, target, verdict)."""


def display(command: list[str]) -> str:
    """The command as one would type it from the project root."""
    shown = []
    for part in command:
        path = Path(part)
        if path.is_absolute() and path.is_relative_to(ROOT):
            part = str(path.relative_to(ROOT))
        shown.append(part)
    return shlex.join(shown)


def run_benchmark(name: str, args: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Run ``bench_<name>.py`` with ``--json``; return its command line and parsed result."""
    python = Path(sys.executable)
    # Keep the venv's own path (a symlink), so the command shown is the one to type.
    venv_python = ROOT / ".venv" / "bin" / "python"
    if venv_python.exists() and venv_python.resolve() == python.resolve():
        python = venv_python
    command = [str(python), str(BENCH / f"bench_{name}.py"), *args, "--json"]
    print(f"\n== {display(command)}", file=sys.stderr, flush=True)
    out = subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return command, json.loads(out.stdout.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    """Markdown for a met or missed target."""
    return "met" if ok else "**missed**"


def transport_rows(result: dict[str, Any]) -> list[Row]:
    """Rows for the transport benchmark: every phase of every synchronous mode."""
    rows: list[Row] = []
    target = result["target_cycle"]
    for mode, m in result["median"].items():
        for phase in ("send", "receive", "delete"):
            rows.append(
                ("transport", f"{phase}, synchronous={mode}", f"{m[phase]:,.0f} msg/s", "", "")
            )
        ok = m["cycle"] >= target
        rows.append(
            (
                "transport",
                f"send+receive+delete, synchronous={mode} "
                f"({m['cpu_us_per_message']:.0f} µs CPU per message)",
                f"{m['cycle']:,.0f} msg/s",
                f">= {target:,.0f} msg/s",
                verdict(ok),
            )
        )
    return rows


def worker_rows(result: dict[str, Any]) -> list[Row]:
    """Rows for the worker benchmark: one per concurrency level."""
    target = result["target_ops"]
    rows: list[Row] = [
        (
            "worker",
            "enqueue_many (one fill, not repeated)",
            f"{result['enqueue_rate']:,.0f} ops/s",
            "",
            "",
        )
    ]
    for level, rate in result["median"].items():
        tail, steady = result["median_tail"][level], result["median_steady"][level]
        rows.append(
            (
                "worker",
                f"drain, concurrency={level} (drain tail {tail:.2f} s; "
                f"{steady:,.0f} ops/s without it)",
                f"{rate:,.0f} ops/s",
                f">= {target:,.0f} ops/s",
                verdict(rate >= target),
            )
        )
    return rows


def memory_rows(result: dict[str, Any]) -> list[Row]:
    """Rows for the memory benchmark: peak RSS per concurrency level."""
    target = result["target_mb"]
    rows: list[Row] = []
    for level, peak in result["median_peak_mb"].items():
        imported = result["median_after_import_mb"][level]
        rows.append(
            (
                "memory",
                f"peak RSS, {result['messages']:,} waiting, concurrency={level}"
                f" (after imports {imported:.1f} MB)",
                f"{peak:.1f} MB",
                f"<= {target:g} MB",
                verdict(peak <= target),
            )
        )
    return rows


def cli_rows(result: dict[str, Any]) -> list[Row]:
    """Rows for the command-line benchmark: each command's start-up beside the interpreter's."""
    rows: list[Row] = []
    for name, figures in result["summary"].items():
        rows.append(
            (
                "cli",
                f"`{name}`, fresh process (min {figures['min_ms']:.0f}, max "
                f"{figures['max_ms']:.0f} ms; {figures['ratio']:.1f}x `python -c pass`)",
                f"{figures['median_ms']:.0f} ms",
                "",
                "",
            )
        )
    return rows


ROWS = {
    "transport": transport_rows,
    "worker": worker_rows,
    "memory": memory_rows,
    "cli": cli_rows,
}


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print the results table and the commands."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--only", default=",".join(FULL), help="comma-separated benchmarks")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(plan)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    rows: list[Row] = []
    commands: list[tuple[str, str, int]] = []
    for name in names:
        command, result = run_benchmark(name, plan[name])
        rows.extend(ROWS[name](result))
        commands.append((name, display(command), int(result["reps"])))
    print(
        f"\n### botqueue benchmarks ({'quick' if args.quick else 'full'} run, "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {time.perf_counter() - started:.0f} s)\n"
    )
    print("| benchmark | measure | median | target | result |")
    print("|---|---|---:|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\n| benchmark | repetitions | command (from the project root) |")
    print("|---|---:|---|")
    for name, shown, reps in commands:
        print(f"| {name} | {reps} | `{shown}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
