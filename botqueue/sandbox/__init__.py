"""A local Telegram Bot API server for tests, demos and development without a real bot.

It answers ``/bot<TOKEN>/<method>`` exactly as the Bot API does (envelope, status codes,
descriptions) from an in-memory world, and offers a control API under ``/_sandbox/`` to
change that world, inject faults and flood control, and read what the bot did.
"""

from .client import SandboxControl, SandboxControlError
from .server import SandboxServer, create_app, run_sandbox
from .state import SandboxState
from .world import DEFAULT_TOKEN, DEFAULT_WORLD, WorldSpec, load_world_file, parse_world

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_WORLD",
    "SandboxControl",
    "SandboxControlError",
    "SandboxServer",
    "SandboxState",
    "WorldSpec",
    "create_app",
    "load_world_file",
    "parse_world",
    "run_sandbox",
]
