"""A command imports only what it uses: ``botqueue --help`` loads no pydantic, structlog or
network library, and the embedded queue's commands load no SQS client, HTTP server, metrics
or Telegram library.

Each case runs the real entry point (``botqueue.cli.main``) in a fresh interpreter, then
prints the names in ``sys.modules``; nothing here measures time (bench/bench_cli.py does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PREFIXES = ("BOT_OPERATIONS_", "BOTQUEUE_", "TELEGRAM_", "AWS_REGION", "USE_LOCALSTACK", "SQS_")

# Run the console script in-process, then report what it imported (on the last line).
SCRIPT = """\
import json, sys
from botqueue.cli import main
sys.argv = ["botqueue", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

NETWORK = {"aiobotocore", "botocore", "aiohttp", "prometheus_client", "telegram"}
"""Never needed by the embedded queue's commands (SQS, the metrics server, the Bot API)."""
HELP = NETWORK | {"pydantic", "pydantic_settings", "structlog", "rich"}
"""Never needed to print help either: no settings are read and nothing is logged."""

USER = ("--user-id", "5", "--channel", "@somechan", "--subscription-id", "s1")


@dataclass
class Run:
    """What one command did: its exit code, output and the top-level packages it imported."""

    code: int
    output: str
    errors: str
    packages: set[str]


def run_cli(tmp_path: Path, *args: str) -> Run:
    """Run ``botqueue *args`` in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(PREFIXES)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    *output, last = result.stdout.splitlines()
    report = json.loads(last)
    packages = {name.partition(".")[0] for name in report["modules"]}
    return Run(report["code"], "\n".join(output), result.stderr, packages)


def queue_url(tmp_path: Path) -> tuple[str, str]:
    """The --queue-url option for an embedded queue in ``tmp_path``."""
    return ("--queue-url", f"sqlite:///{tmp_path / 'q.db'}")


@pytest.mark.parametrize(
    "args", [("--help",), ("worker", "--help"), ("setup", "--help"), ("stats", "--help")]
)
def test_help_loads_no_settings_logging_or_network_library(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    run = run_cli(tmp_path, *args)
    assert run.code == 0, run.errors
    assert "Usage: botqueue" in run.output
    assert run.packages & HELP == set()


def test_enqueue_on_the_embedded_queue_loads_no_network_library(tmp_path: Path) -> None:
    run = run_cli(tmp_path, "enqueue", "invite", *USER, "--order-id", "o1", *queue_url(tmp_path))
    assert run.code == 0, run.errors
    assert len(run.output.split()) == 1  # the message id
    assert run.packages & NETWORK == set()
    assert "pydantic" in run.packages  # the operation was validated before it was sent


@pytest.mark.parametrize("args", [("stats",), ("dlq", "list"), ("dlq", "list", "--json")])
def test_queue_commands_on_the_embedded_queue_load_no_network_library(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    run = run_cli(tmp_path, *args, *queue_url(tmp_path))
    assert run.code == 0, run.errors
    if args == ("stats",):
        assert json.loads(run.output)["visible"] == 0
    assert run.packages & NETWORK == set()


def test_health_loads_no_server_or_metrics_library(tmp_path: Path) -> None:
    # Port 1 refuses at once: the check fails (exit 1) without waiting.
    run = run_cli(tmp_path, "health", "--url", "http://127.0.0.1:1/", "-q")
    assert run.code == 1, run.errors
    assert run.output == ""
    assert run.packages & NETWORK == set()
