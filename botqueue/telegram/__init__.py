"""The Telegram side: the bot service, the error mapping and flood control.

``from botqueue.telegram import TelegramBotService`` imports python-telegram-bot on first use
of the name (PEP 562), so that importing the package alone costs nothing.
"""

import typing

from .._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from .service import TelegramBotService
    from .settings import ServiceConfig, service_config

__all__ = ["ServiceConfig", "TelegramBotService", "service_config"]

_ORIGIN = {
    "ServiceConfig": "settings",
    "TelegramBotService": "service",
    "service_config": "settings",
}

__getattr__, __dir__ = _lazy_exports(__name__, _ORIGIN, globals(), __all__)
