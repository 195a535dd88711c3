"""What a chaos scenario is, what it reports, and where the scenarios are found."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Size = Literal["reduced", "full"]


@dataclass
class Result:
    """One row of the table: what a scenario did and what it found."""

    scenario: str
    transport: str
    operations: int
    done: int
    dead_lettered: dict[str, int] = field(default_factory=dict)  # by failure kind
    lost: int = 0  # must be 0: enqueued, neither done nor dead-lettered
    duplicated: int = 0  # duplicated side effects at-least-once allows (extra invite messages)
    extra_valid_links: int = 0  # must be 0: more than one valid invite link for one user
    recover_s: float | None = None  # time from the fault's end to work resuming
    notes: str = ""

    @property
    def dead_total(self) -> int:
        """Every dead letter, whatever its kind."""
        return sum(self.dead_lettered.values())

    def check(self) -> None:
        """The suite's promises: nothing lost, at most one valid link per user."""
        assert self.lost == 0, f"{self.scenario}/{self.transport}: {self.lost} lost"
        assert self.extra_valid_links == 0, (
            f"{self.scenario}/{self.transport}: {self.extra_valid_links} extra valid links"
        )


Run = Callable[[Size, Path], Awaitable[list[Result]]]


@dataclass(frozen=True)
class Scenario:
    """A named fault run against real parts; ``run(size, workdir)`` returns its rows."""

    name: str
    run: Run
    description: str = ""


def discover() -> list[Scenario]:
    """Every ``SCENARIOS`` list of the ``scenario_*`` modules beside this one, by module name."""
    found: list[Scenario] = []
    here = Path(__file__).parent
    for module in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if module.name.startswith("scenario_"):
            loaded = importlib.import_module(f"{__package__}.{module.name}")
            found.extend(loaded.SCENARIOS)
    return found
