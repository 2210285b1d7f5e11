"""Reading images from disk, validated, as float RGB tensors.

Documented conversions (never a crash): grayscale is replicated to three
channels; an alpha channel is discarded (as pyiqa and PIL's ``convert``
do); palette, CMYK and YCbCr images are converted to RGB; 16-bit images are
scaled by 1/65535 and 8-bit ones by 1/255.  A missing, truncated or
undecodable file is a :class:`DatasetError` naming the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def read_rgb(path: str | Path) -> np.ndarray:
    """HxWx3 float32 array in [0, 1]."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in _SIXTEEN_BIT:
                arr = np.asarray(im, dtype=np.float32) / 65535.0
                arr = np.repeat(arr[..., None], 3, axis=2)
            elif im.mode == "F":
                arr = np.repeat(np.clip(np.asarray(im, dtype=np.float32), 0, 1)[..., None], 3, axis=2)
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: cannot decode image ({exc})") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
        raise DatasetError(f"{path}: unexpected image shape {arr.shape}")
    return np.clip(arr, 0.0, 1.0)


def load_image(path: str | Path):
    """3xHxW float32 torch tensor in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(read_rgb(path).transpose(2, 0, 1)))
