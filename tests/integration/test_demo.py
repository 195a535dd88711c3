"""`botqueue demo`, the README's main command, end to end."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from botqueue.demo import run_demo, scenario
from botqueue.transports import SqliteTransport

ROOT = Path(__file__).resolve().parents[2]


async def test_demo_outcomes(tmp_path: Path) -> None:
    out = io.StringIO()
    db = tmp_path / "demo.db"
    counts = await run_demo(db, Console(file=out, width=200))
    assert sum(counts.values()) == len(scenario())
    assert counts == {"succeeded": 8, "noop": 1, "dead letter": 3}
    text = out.getvalue()
    assert "members Ann, Dan, Hana, Ivan, Jo; banned nobody" in text
    async with SqliteTransport(f"sqlite:///{db}") as transport:
        letters = await transport.dlq_list()
        stats = await transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 3)
    reasons = sorted(str((letter.failure or {}).get("error")) for letter in letters)
    assert any("blocked" in r for r in reasons)
    assert any("initiate conversation" in r for r in reasons)
    assert any("not enough rights" in r for r in reasons)


def test_demo_command_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "botqueue", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Done in" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
