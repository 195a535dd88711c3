"""The operator's web dashboard (``botqueue dashboard``): the queue at a glance and the dead
letters' manual review, served by aiohttp with Jinja2 templates and one small page script.

See docs/dashboard.md. Nothing here is imported unless the dashboard is used.
"""

from __future__ import annotations

from .app import check_binding, create_app, serve

__all__ = ["check_binding", "create_app", "serve"]
