#!/usr/bin/env python3
"""Project set-up and tasks, needing nothing but Python >= 3.11.

    python3 dev.py demo     run the pipeline end to end on the embedded queue
    python3 dev.py test     lint, type-check and run the whole test suite
    python3 dev.py test --fast   the same without the tests marked slow (and their set-up)
    python3 dev.py bench    run the benchmarks under bench/
    python3 dev.py chaos    run the reliability suite at full size; its table into docs/
    python3 dev.py run ...  run any command inside the project's virtualenv

Each task creates ./.venv on first use and reinstalls only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".botqueue-deps"


def _python() -> Path:
    return BIN / "python"


def ensure_venv() -> None:
    """Create the virtualenv and install the project with its dev extras, when needed."""
    if sys.version_info < (3, 11):
        sys.exit("botqueue needs Python >= 3.11; run this script with a newer python3")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if _python().exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not _python().exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print("dev.py: installing botqueue and its dev dependencies into .venv", flush=True)
    pip = [str(_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def run(*command: str) -> int:
    """Run a command with the virtualenv's bin first on PATH; return its exit code."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env["VIRTUAL_ENV"] = str(VENV)
    return subprocess.run(command, cwd=ROOT, env=env).returncode


_LOCALSTACK = "from tests.integration.sqs_servers import ensure_localstack_venv as e; e()"


def main(argv: list[str]) -> int:
    """Dispatch a task."""
    task, args = (argv[0], argv[1:]) if argv else ("help", [])
    if task not in ("demo", "test", "bench", "chaos", "run"):
        print(__doc__)
        return 0 if task in ("help", "-h", "--help") else 2
    ensure_venv()
    py = str(_python())
    if task == "demo":
        return run(py, "-m", "botqueue", "demo", *args)
    if task == "bench":
        return run(py, "bench/run_all.py", *args)
    if task == "run":
        return run(*args)
    if task == "chaos":
        code = run(py, "-c", _LOCALSTACK)
        return code or run(py, "-m", "tests.chaos.run", "--write-docs", *args)
    # --fast leaves out the tests marked slow (chaos, deploy, browser, worker processes,
    # LocalStack; see tests/conftest.py) and the set-up only they need.
    fast = "--fast" in args
    if fast:
        args = ["-m", "not slow", *(arg for arg in args if arg != "--fast")]
    steps = [
        [py, "-m", "ruff", "check", "botqueue", "tests", "bench"],
        [py, "-m", "ruff", "format", "--check", "botqueue", "tests", "bench"],
        [py, "-m", "mypy"],
        # The shared flood budget tests need a Redis (or Valkey) server: Debian's, as root.
        [py, "-c", "from tests.integration.redis_server import ensure_redis_server as e; e()"],
    ]
    slow_steps = [
        # LocalStack lives in its own virtualenv (its extras pin boto3 differently); build it
        # here, outside pytest's per-test timeout, rather than inside the first SQS test.
        [py, "-c", _LOCALSTACK],
        # The CloudFormation deploy test needs LocalStack with its CloudFormation extras, in a
        # virtualenv of their own (built here, outside pytest's per-test timeout).
        [py, "-c", "from tests.deploy.cfn import ensure_cfn_venv as e; e()"],
        # The systemd unit's tests need systemd-analyze: Debian's systemd package, as root.
        [py, "-c", "from tests.deploy.artefacts import ensure_systemd_analyze as e; e()"],
        # The dashboard's browser tests need Debian's chromium and chromium-driver, as root.
        [py, "-m", "tests.browser.chromium"],
    ]
    for step in steps if fast else steps + slow_steps:
        code = run(*step)
        if code:
            print(f"dev.py: {' '.join(step[1:3])} failed", file=sys.stderr)
            return code
    return run(py, "-m", "pytest", *args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
