"""The attacked image as a user gets it back: an 8-bit file.

An attack returns float pixels; whoever saves the image and reloads it (or
uploads it to a service) gets 8-bit values, and a JPEG re-encoding on the
way loses more.  A cell with a *delivery* scores what comes back, not the
float tensor: ``png`` rounds each pixel to the nearest of 256 levels
(lossless PNG stores exactly that), ``jpeg`` encodes that with PIL's
libjpeg encoder at ``quality`` (PIL's default 4:2:0 chroma subsampling, as
OpenCV's encoder the MSU methodology uses) and decodes it again.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

#: the suffix of the file each delivery writes
SUFFIX = {"png": ".png", "jpeg": ".jpg"}


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Bx3xHxW floats in [0, 1] -> BxHxWx3 uint8, rounded to the nearest level."""
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def encode(x: torch.Tensor, jpeg_quality: int = 0) -> list[bytes]:
    """Each image of the batch as a PNG file (``jpeg_quality`` 0) or a JPEG file."""
    out = []
    for arr in to_uint8(x):
        buf = io.BytesIO()
        if jpeg_quality:
            Image.fromarray(arr).save(buf, format="JPEG", quality=int(jpeg_quality))
        else:
            Image.fromarray(arr).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def decode(blobs: list[bytes], like: torch.Tensor) -> torch.Tensor:
    """The files decoded to a float batch on ``like``'s device and dtype."""
    arrs = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.float32) / 255.0 for b in blobs]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).to(like.device, like.dtype)


def deliver(x: torch.Tensor, jpeg_quality: int = 0) -> tuple[torch.Tensor, list[bytes]]:
    """The batch as it comes back from its files, and the files."""
    blobs = encode(x, jpeg_quality)
    return decode(blobs, x).contiguous(), blobs
