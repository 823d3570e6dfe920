"""One quick reachability probe, so an offline user hears so within seconds instead of after a download's or
the hub's retries and timeouts. It asks for the headers of the very address about to be used: any HTTP answer
(even an error status) means the server is there; no route, a refused connection or silence is reported."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

PROBE_SECONDS = 3.0


def unreachable_reason(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why ``url`` cannot be reached (a short phrase), or None when its server answers."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return None  # file:// and the like: nothing to probe, the download itself will say
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # an answer, if not the hoped-for one: the download reports the status
    except urllib.error.URLError as err:
        reason = err.reason
    except OSError as err:  # a timeout while waiting for the answer
        reason = err
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve {host}"
    if isinstance(reason, TimeoutError):
        return f"no answer from {host} within {timeout:g} s"
    return f"{host}: {getattr(reason, 'strerror', None) or reason}"


def hub_endpoint() -> str:
    """The Hugging Face hub address, or the mirror that ``HF_ENDPOINT`` names (as huggingface_hub reads it)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_unreachable_reason(timeout: float = PROBE_SECONDS) -> str | None:
    """Why the hub cannot be used now (``HF_HUB_OFFLINE``, or the probe's answer), or None."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return "HF_HUB_OFFLINE is set"
    return unreachable_reason(hub_endpoint(), timeout)
