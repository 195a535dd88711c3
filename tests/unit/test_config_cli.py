"""Settings from the environment, and the ``botqueue`` command run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from botqueue.config import load_settings
from botqueue.errors import ConfigurationError

TOKEN = "123456789:AAE-secret-token-value"
PREFIXES = ("BOT_OPERATIONS_", "BOTQUEUE_", "TELEGRAM_", "AWS_REGION", "USE_LOCALSTACK", "SQS_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the settings they set."""
    for name in list(os.environ):
        if name.upper().startswith(PREFIXES):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.aws_region == "us-east-1"
    assert settings.bot_operations_queue_url is None
    assert settings.telegram_bot_token is None
    assert settings.use_localstack is False
    assert settings.botqueue_concurrency == 10


def test_reads_the_specs_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "BOT_OPERATIONS_QUEUE_URL": "sqlite:///q.db",
        "BOT_OPERATIONS_DLQ_URL": "sqlite:///dlq.db",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "AWS_REGION": "eu-west-1",
        "USE_LOCALSTACK": "true",
        "SQS_ENDPOINT": "http://localhost:4566",
        "BOTQUEUE_CONCURRENCY": "7",
        "BOTQUEUE_WAIT_TIME": "0",
        "BOTQUEUE_SERVICE": "mymod:Service",
        "BOTQUEUE_LOG_LEVEL": "debug",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.bot_operations_queue_url == "sqlite:///q.db"
    assert settings.bot_operations_dlq_url == "sqlite:///dlq.db"
    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == TOKEN
    assert (settings.aws_region, settings.use_localstack) == ("eu-west-1", True)
    assert settings.sqs_endpoint == "http://localhost:4566"
    assert (settings.botqueue_concurrency, settings.botqueue_wait_time) == (7, 0.0)
    assert (settings.botqueue_service, settings.botqueue_log_level) == ("mymod:Service", "debug")
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)


def test_flags_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTQUEUE_CONCURRENCY", "7")
    monkeypatch.setenv("BOT_OPERATIONS_QUEUE_URL", "sqlite:///env.db")
    settings = load_settings(botqueue_concurrency=3, bot_operations_queue_url=None)
    assert settings.botqueue_concurrency == 3
    assert settings.bot_operations_queue_url == "sqlite:///env.db"  # None means "not given"


def test_empty_variable_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTQUEUE_CONCURRENCY", "")
    assert load_settings().botqueue_concurrency == 10


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOTQUEUE_CONCURRENCY", "abc"),
        ("BOTQUEUE_CONCURRENCY", "0"),
        ("BOTQUEUE_WAIT_TIME", "30"),
        ("BOTQUEUE_VISIBILITY_TIMEOUT", "-1"),
        ("BOTQUEUE_LOG_LEVEL", "loud"),
        ("USE_LOCALSTACK", "maybe"),
        ("TELEGRAM_INVITE_MODE", "approve"),
    ],
)
def test_malformed_value_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    text = str(caught.value)
    assert name in text
    assert "\n" not in text
    assert TOKEN not in text


def test_malformed_flag_is_named_too() -> None:
    with pytest.raises(ConfigurationError, match="BOTQUEUE_WAIT_TIME"):
        load_settings(botqueue_wait_time=-3)


# -- the command line, as a separate process ---------------------------------------------------


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith(PREFIXES)}
    clean["BOT_OPERATIONS_QUEUE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    return subprocess.run(
        [sys.executable, "-m", "botqueue", *args],
        env={**clean, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _fails_with_one_line(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert all(name in lines[0] for name in names), lines[0]


USER = ("--user-id", "5", "--channel", "@somechan", "--subscription-id", "s1")


def test_enqueue_then_stats(tmp_path: Path) -> None:
    commands = [
        ("invite", *USER, "--order-id", "o1"),
        ("remove", *USER, "--reason", "refund"),
        ("verify", "--channel", "@somechan", "--listing-id", "l1"),
    ]
    ids = []
    for command in commands:
        result = _run(tmp_path, "enqueue", *command)
        assert result.returncode == 0, result.stderr
        (message_id,) = result.stdout.split()
        ids.append(message_id)
    assert len(set(ids)) == 3
    result = _run(tmp_path, "stats", "--json")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    figures = json.loads(line)
    assert set(figures) == {"visible", "in_flight", "dead_letters", "oldest_age_seconds"}
    assert (figures["visible"], figures["in_flight"], figures["dead_letters"]) == (3, 0, 0)


def test_queue_url_flag_overrides_env(tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    sent = _run(tmp_path, "enqueue", "verify", "--channel", "@somechan", "--queue-url", other)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(_run(tmp_path, "stats", "--queue-url", other).stdout)["visible"] == 1
    assert json.loads(_run(tmp_path, "stats", "--json").stdout)["visible"] == 0


def test_invalid_reason(tmp_path: Path) -> None:
    _fails_with_one_line(_run(tmp_path, "enqueue", "remove", *USER, "--reason", "bogus"), "reason")
    assert json.loads(_run(tmp_path, "stats").stdout)["visible"] == 0


def test_enqueue_invite_with_an_invite_mode(tmp_path: Path) -> None:
    result = _run(
        tmp_path, "enqueue", "invite", *USER, "--order-id", "o1", "--invite-mode", "join_request"
    )
    assert result.returncode == 0, result.stderr
    bad = _run(tmp_path, "enqueue", "invite", *USER, "--order-id", "o2", "--invite-mode", "x")
    assert bad.returncode == 2 and "--invite-mode" in bad.stderr
    assert json.loads(_run(tmp_path, "stats").stdout)["visible"] == 1


def test_a_bad_invite_mode_setting_stops_the_worker(tmp_path: Path) -> None:
    result = _run(tmp_path, "worker", "--service", "x:y", TELEGRAM_INVITE_MODE="approve")
    _fails_with_one_line(result, "TELEGRAM_INVITE_MODE")


def test_invalid_channel(tmp_path: Path) -> None:
    result = _run(tmp_path, "enqueue", "verify", "--channel", "chan")
    _fails_with_one_line(result, "channelId")


def test_malformed_env_for_worker(tmp_path: Path) -> None:
    result = _run(tmp_path, "worker", "--service", "x:y", BOTQUEUE_CONCURRENCY="abc")
    _fails_with_one_line(result, "BOTQUEUE_CONCURRENCY")


def test_token_never_appears_in_errors(tmp_path: Path) -> None:
    result = _run(
        tmp_path, "worker", "--service", "x:y", TELEGRAM_BOT_TOKEN=TOKEN, BOTQUEUE_WAIT_TIME="30"
    )
    _fails_with_one_line(result, "BOTQUEUE_WAIT_TIME")
    assert TOKEN not in result.stderr + result.stdout


def test_worker_needs_a_service(tmp_path: Path) -> None:
    _fails_with_one_line(_run(tmp_path, "worker"), "--service")


def test_worker_service_must_import(tmp_path: Path) -> None:
    _fails_with_one_line(
        _run(tmp_path, "worker", "--service", "nosuchmodule:thing"), "nosuchmodule"
    )


def test_unknown_queue_url_scheme(tmp_path: Path) -> None:
    result = _run(tmp_path, "stats", "--json", BOT_OPERATIONS_QUEUE_URL="ftp://x")
    _fails_with_one_line(result, "BOT_OPERATIONS_QUEUE_URL")


def test_dlq_purge_needs_yes(tmp_path: Path) -> None:
    result = _run(tmp_path, "dlq", "purge")
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert "Traceback" not in result.stderr


def test_dlq_list_json_on_empty_dlq(tmp_path: Path) -> None:
    result = _run(tmp_path, "dlq", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [(), ("--all", "some-id")])
def test_dlq_redrive_needs_ids_or_all(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = _run(tmp_path, "dlq", "redrive", *args)
    assert result.returncode == 2
    assert "--all" in result.stderr
    assert "Traceback" not in result.stderr


def test_help(tmp_path: Path) -> None:
    result = _run(tmp_path, "--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in ("worker", "enqueue", "stats", "dlq"))


@pytest.mark.parametrize("command", [["stats"], ["stats", "--watch"], ["dashboard"]])
@pytest.mark.parametrize("url", ["notaurl", "ftp://host/metrics", "http:///metrics"])
def test_a_metrics_url_that_is_not_http_is_a_usage_error(
    command: list[str], url: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "botqueue", *command, "--metrics-url", url],
        env={**os.environ, "BOT_OPERATIONS_QUEUE_URL": f"sqlite:///{tmp_path / 'q.db'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"Invalid value for '--metrics-url': {url!r} is not an http(s):// URL" in done.stderr
    assert "Traceback" not in done.stderr
