"""Every chaos scenario at its reduced size, as part of ``python3 dev.py test``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import secrets_sweep
from tests.chaos.scenario import Scenario, discover

SCENARIOS = discover()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario_loses_nothing(scenario: Scenario, tmp_path: Path) -> None:
    since = secrets_sweep.mark()
    rows = await scenario.run("reduced", tmp_path)
    assert rows, f"{scenario.name} reported nothing"
    for row in rows:
        row.check()
    secrets_sweep.sweep(since)  # no worker of this scenario printed any form of its token
