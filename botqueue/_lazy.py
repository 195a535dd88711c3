"""Lazy package exports (PEP 562): a public name is imported on its first use.

``import botqueue`` (and so every CLI command) would otherwise import pydantic, structlog,
the transports and the consumer before doing anything; ``botqueue --help`` needs none of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any


def lazy_exports(
    package: str,
    origin: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    exported: Sequence[str],
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` resolving each name in ``origin`` (name to
    submodule) on first access, then caching it in the package's ``namespace``."""

    def getattr_(name: str) -> object:
        module = origin.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value  # resolved once; later lookups do not come here
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *exported})

    return getattr_, dir_
