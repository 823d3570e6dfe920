"""One quick reachability probe, so an offline user hears so in about a second instead of after a download's
or the hub's retries and timeouts."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

PROBE_SECONDS = 3.0


def unreachable_reason(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why ``url``'s host cannot be reached (a short phrase), or None when a TCP connection opens."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None  # file:// and the like: nothing to probe, the download itself will say
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except socket.gaierror:
        return f"cannot resolve {parts.hostname}"
    except TimeoutError:
        return f"no answer from {parts.hostname}:{port} within {timeout:g} s"
    except OSError as err:
        return f"{parts.hostname}:{port}: {err.strerror or err}"
    return None


def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """The Hugging Face hub answers (and ``HF_HUB_OFFLINE`` is not set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    return unreachable_reason("https://huggingface.co", timeout) is None
