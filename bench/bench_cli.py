"""Command-line start-up: wall time of fresh ``botqueue`` processes beside ``python -c pass``.

    .venv/bin/python bench/bench_cli.py [--reps 10] [--json]

Every repetition starts one fresh process of each command below, in an order that rotates
from one repetition to the next, so that a noisy neighbour slows them alike; an untimed round
first compiles the bytecode and warms the file cache. The queue is an embedded one in a
temporary directory, given with --queue-url (the environment's BOT_OPERATIONS_*, BOTQUEUE_*
and TELEGRAM_* variables are removed). The commands are the console script next to this
Python (``.venv/bin/botqueue``), as a user types them; its ``botqueue`` package is whatever
this Python imports, so ``PYTHONPATH=/other/checkout`` measures another version.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PREFIXES = ("BOT_OPERATIONS_", "BOTQUEUE_", "TELEGRAM_", "AWS_REGION", "USE_LOCALSTACK", "SQS_")
BASELINE = "python -c pass"
"""The bare interpreter's start-up, the floor every command stands on."""


def botqueue_command() -> list[str]:
    """The console script beside this Python, or ``python -m botqueue`` when there is none."""
    script = Path(sys.executable).with_name("botqueue")
    return [str(script)] if script.exists() else [sys.executable, "-m", "botqueue"]


def commands(queue_url: str, rep: int) -> dict[str, list[str]]:
    """Each measured command line, by the name it is reported under."""
    botqueue = botqueue_command()
    user = ["--user-id", "5", "--channel", "@benchchannel", "--subscription-id", f"s{rep}"]
    return {
        BASELINE: [sys.executable, "-c", "pass"],
        "botqueue --help": [*botqueue, "--help"],
        "botqueue enqueue invite": [
            *botqueue,
            "enqueue",
            "invite",
            *user,
            "--order-id",
            f"o{rep}",
            "--queue-url",
            queue_url,
        ],
        "botqueue stats": [*botqueue, "stats", "--queue-url", queue_url],
    }


def timed(command: list[str], env: dict[str, str], cwd: str) -> float:
    """Seconds from starting ``command`` to its exit (which must be 0)."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return elapsed


def imported_from(env: dict[str, str], cwd: str) -> str:
    """Where the measured commands' ``botqueue`` package comes from."""
    code = "import botqueue; print(botqueue.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )
    return str(Path(out.stdout.strip()).parent)


def run(reps: int) -> dict[str, Any]:
    """Time every command ``reps`` times, interleaved; return the raw seconds and summaries."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(PREFIXES)}
    env["BOTQUEUE_LOG_LEVEL"] = "warning"  # the enqueue's log line is not what is measured
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        queue_url = f"sqlite:///{Path(tmp) / 'q.db'}"
        origin = imported_from(env, tmp)
        names = list(commands(queue_url, 0))
        seconds: dict[str, list[float]] = {name: [] for name in names}
        for command in commands(queue_url, -1).values():  # warm-up, not timed
            timed(command, env, tmp)
        for rep in range(reps):
            lines = commands(queue_url, rep)
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                seconds[name].append(timed(lines[name], env, tmp))
            shown = "  ".join(f"{name} {seconds[name][-1] * 1000:.0f} ms" for name in names)
            print(f"rep {rep + 1}/{reps}  {shown}", file=sys.stderr, flush=True)
    base = statistics.median(seconds[BASELINE])
    summary = {
        name: {
            "median_ms": statistics.median(values) * 1000,
            "min_ms": min(values) * 1000,
            "max_ms": max(values) * 1000,
            "ratio": statistics.median(values) / base,
        }
        for name, values in seconds.items()
    }
    return {
        "benchmark": "cli",
        "reps": reps,
        "botqueue": origin,
        "command": botqueue_command(),
        "summary": summary,
        "seconds": seconds,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10, help="fresh processes per command")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    result = run(args.reps)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"\nbotqueue from {result['botqueue']}, {args.reps} fresh processes per command")
    print(f"| command | median (ms) | min (ms) | max (ms) | x `{BASELINE}` |")
    print("|---|---:|---:|---:|---:|")
    for name, figures in result["summary"].items():
        print(
            f"| `{name}` | {figures['median_ms']:.0f} | {figures['min_ms']:.0f} | "
            f"{figures['max_ms']:.0f} | {figures['ratio']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
