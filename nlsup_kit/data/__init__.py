"""Data: readers, the shipped and downloadable sets, and ``ensure_data``, the one call that finds or fetches them."""

from nlsup_kit.data.sources import ensure_data

__all__ = ["ensure_data"]
