"""nlsup-kit: contrastive sentence embeddings with non-linguistic supervision (SimCSE, VisualCSE, AudioCSE).

Layout follows the data flow: ``data`` -> ``embeddings`` (image/audio tokens) -> ``encoder`` (the shared
Transformer) -> ``losses`` -> ``trainer`` -> ``evaluation`` / ``export``. Recipes live in ``recipes``.
"""

__version__ = "0.1.0"
