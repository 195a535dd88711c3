"""Loading a user-supplied BotService from ``module:attribute``."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from .errors import ConfigurationError
from .service import BotService

_METHODS = ("invite_user", "remove_user", "verify_permissions")


def load_service(spec: str) -> BotService:
    """Import ``module:attribute``; a class or factory is called with no arguments.

    Raises:
        ConfigurationError: the spec is malformed, cannot be imported, or is not a service.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--service must be module:attribute, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a broken module is a configuration problem, not a crash
        raise ConfigurationError(
            f"--service: cannot import {module_name!r}: {type(error).__name__}: {error}"
        ) from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(f"--service: {module_name!r} has no {attribute!r}") from None
    if inspect.isclass(target) or (callable(target) and not _is_service(target)):
        target = target()
    if not _is_service(target):
        raise ConfigurationError(
            f"--service {spec!r} is not a BotService: it needs async {', '.join(_METHODS)}"
        )
    service: BotService = target
    return service


def _is_service(candidate: object) -> bool:
    return all(inspect.iscoroutinefunction(getattr(candidate, name, None)) for name in _METHODS)
