"""Image files as 8-bit RGB: the one decoder every image source reads with, so a file that checks decodes as it
trains."""

from __future__ import annotations

from nlsup_kit.errors import NlsupError


def rgb(path: str):
    """Any PIL mode as 8-bit RGB: 16/32-bit greyscale scaled down (``convert`` would clip it to white),
    palette and alpha flattened, CMYK converted. A truncated file fails with its name."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                pixels = np.asarray(image, dtype=np.float64)
                peak = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
                image = Image.fromarray(np.clip(pixels / peak * 255.0, 0, 255).astype(np.uint8), mode="L")
            elif image.mode == "P":
                image = image.convert("RGBA")
            return image.convert("RGB")
    except OSError as err:
        raise NlsupError(f"{path}: not a readable image ({err})") from None
