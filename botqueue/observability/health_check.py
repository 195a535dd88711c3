"""The client side of a worker's health endpoints: which URL ``botqueue health`` asks, and
how it reads the answer (no aiohttp or metrics library, so a container's check starts fast)."""

from __future__ import annotations

import urllib.error
import urllib.request

from ..config import load_settings


def health_url(ready: bool) -> str | None:
    """The configured worker's /healthz (or /readyz with ``ready``) URL, from
    BOTQUEUE_METRICS_HOST and BOTQUEUE_METRICS_PORT; None when no port is configured.

    Raises:
        ConfigurationError: a setting is malformed.
    """
    settings = load_settings()
    if settings.botqueue_metrics_port is None:
        return None
    host = settings.botqueue_metrics_host
    # A server bound to every interface is reached on loopback from inside its container.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.botqueue_metrics_port}/{'readyz' if ready else 'healthz'}"


def check(url: str, timeout: float) -> tuple[bool, str]:
    """GET ``url``: (answered 200, one line saying what it answered)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"{response.status} {response.read().decode()}"
    except urllib.error.HTTPError as error:
        return False, f"{error.code} {error.read().decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as error:
        return False, f"no answer: {error}"
