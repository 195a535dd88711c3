"""The public API: every exported name resolves, the version has one source, and every
name the README and docs/ tell users to import exists."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

import botqueue

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FROM_IMPORT = re.compile(r"from (botqueue[\w.]*) import \(?([\w, ]+)\)?")
DOTTED = re.compile(r"`(botqueue(?:\.\w+)+)[`(]")
FILE_SUFFIXES = {"db", "py", "md", "toml", "json", "yaml", "html"}


def test_every_exported_name_resolves() -> None:
    for name in botqueue.__all__:
        assert getattr(botqueue, name) is not None, name
    assert set(botqueue.__all__) <= set(dir(botqueue))


def test_what_users_catch_and_receive_is_exported() -> None:
    from botqueue.errors import FatalError
    from botqueue.transports import ReceivedMessage

    assert botqueue.FatalError is FatalError
    assert botqueue.ReceivedMessage is ReceivedMessage


@pytest.mark.parametrize("name", ["decide", "build_operation", "decode_operation"])
def test_plumbing_is_not_at_the_top_level(name: str) -> None:
    assert name not in botqueue.__all__
    assert not hasattr(botqueue, name)


def test_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, _, name = attr.rpartition(".")
    assert getattr(importlib.import_module(module), name) == botqueue.__version__
    # The installed distribution's metadata says the same (dev.py reinstalls on changes).
    assert importlib.metadata.version("botqueue") == botqueue.__version__


def test_the_telegram_service_is_exported_where_the_docs_say() -> None:
    from botqueue.telegram import TelegramBotService
    from botqueue.telegram.service import TelegramBotService as defined

    assert TelegramBotService is defined


def _documented_names() -> list[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for doc in DOCS:
        text = doc.read_text()
        for module, names in FROM_IMPORT.findall(text):
            for name in filter(None, (n.strip() for n in names.split(","))):
                found.add((module, name.split(" as ")[0]))
        for dotted in DOTTED.findall(text):
            if dotted.rsplit(".", 1)[1] not in FILE_SUFFIXES:
                found.add((dotted, ""))
    return sorted(found)


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_the_docs_name_some_imports() -> None:
    names = _documented_names()
    assert ("botqueue.telegram", "TelegramBotService") in names
    assert len(names) >= 10


@pytest.mark.parametrize(("module", "name"), _documented_names())
def test_every_name_the_docs_use_imports(module: str, name: str) -> None:
    target = _resolve(module)
    if name:
        assert hasattr(target, name), f"{module} has no {name}"
