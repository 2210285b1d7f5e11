"""The embedded default dataset: real photographs, synthetic distortions,
pseudo-MOS from full-reference metrics.  Works offline, builds in seconds.

Why this design
---------------
No IQA database may be downloaded at run time, yet the default benchmark
needs a model that really predicts quality.  So the references are the real
colour photographs that installed packages already ship (scikit-image,
scikit-learn, matplotlib and, when installed, pyiqa's Kodak-derived
calibration references and sample frames).  Each is downscaled (area
filter) so that its short side is at most ``max_short_side`` -- this also
washes out the sources' own JPEG artefacts -- and cut into
``crops_per_ref`` crops of ``crop_size`` px on an even grid.  Every crop
appears pristine and under 5 distortion types x 5 levels (the table
``DISTORTIONS``): Gaussian blur, white Gaussian noise, JPEG, contrast
reduction towards the mean grey, and colour quantisation (PIL's fast
octree, no dithering, so it shows as banding and false contours).

Pseudo-MOS (0-100, higher = better)
-----------------------------------
A label must be comparable across contents and distortion types, which no
single full-reference metric is; as for KADIS-700k, several metrics of the
distorted crop ``d`` against its pristine crop ``r`` are combined.  Each is
mapped linearly to 0-100 and clipped, then the three are averaged::

    q_ssim = 100 * clip(SSIM(d, r), 0, 1)             luma, Gaussian window
                                                      sigma 1.5, K = 0.01, 0.03
    q_gmsd = 100 * clip(1 - GMSD(d, r) / 0.30, 0, 1)  luma 0-255, 2x2 average
                                                      pooled, Prewitt, c = 170
    q_de   = 100 * clip(1 - dE(d, r) / 50, 0, 1)      mean CIE76 colour
                                                      difference, CIELAB D65
    q      = (q_ssim + q_gmsd + q_de) / 3
    MOS    = mean of q over the crops of the same photograph under the same
             distortion and level

A pristine crop scores exactly 100.  SSIM and GMSD carry structure (blur,
noise, blocking, banding); dE carries the colour and intensity shifts that
they barely see (contrast loss, a shrunken palette).  PSNR is deliberately
left out: it is the least comparable across contents (the same distortion
costs a busy crop many more dB than a flat one), which is exactly what a
pooled label must avoid.  With the levels in ``DISTORTIONS`` every type
spans about the same label range (level 1 ~ 90-96, level 5 ~ 48-55 on
average).

Why the label is pooled over a photograph's crops: a crop-level FR score
mostly measures how much *texture the reference crop had* (mild blur costs a
busy crop ten SSIM points and a patch of sky none), which a no-reference
model cannot see and a human rating the photograph does not score.  Measured
on the test split with the committed model, within a distortion level the
crop-level label correlated *negatively* with any NR prediction at the mild
levels.  Pooling gives each distorted photograph one label that its crops
share -- the convention of CNNIQA and its successors, whose patches inherit
their image's MOS -- while the label still comes from FR metrics alone.

Splits
------
Disjoint by content: each photograph is fixed to "train" or "test" in
``PHOTOS`` (one test photograph per shipping package, so the split survives
a missing package), with every crop and distortion of it in that split.
Each item's ``ref`` is its photograph and its ``group`` the distortion type
(``pristine`` for the reference crops): the strata a limited run samples
over (:func:`iqabench.data.sampling.subset`).

The generated arrays are cached as one compressed ``.npz`` under
``cache_dir("datasets", "embedded")``, named by :meth:`fingerprint`.
"""
from __future__ import annotations

import io
import zlib
from dataclasses import asdict, dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from iqabench.artifacts import atomic_write_bytes, cache_dir, config_key
from iqabench.contracts import IQADataset, Item
from iqabench.errors import DatasetError

from .. import bib

#: bump whenever the generated content changes (photos, distortions, labels)
GENERATOR_VERSION = 2
TRAIN, TEST = "train", "test"
PRISTINE = "pristine"
#: the fewest photographs per split that still make a usable dataset
MIN_PHOTOS = {TRAIN: 4, TEST: 1}


# ------------------------------------------------------------ references ---
@dataclass(frozen=True)
class Photo:
    """A real photograph shipped inside an installed distribution."""

    id: str
    distribution: str  # as pip names it
    path: str  # relative to the distribution's install root
    split: str

    def locate(self) -> Path | None:
        """The file on disk, or None when its distribution is not installed."""
        try:
            path = Path(str(metadata.distribution(self.distribution).locate_file(self.path)))
        except metadata.PackageNotFoundError:
            return None
        return path if path.is_file() else None


_SK, _SL, _MPL, _PYIQA = "scikit-image", "scikit-learn", "matplotlib", "pyiqa"
PHOTOS: tuple[Photo, ...] = (
    Photo("astronaut", _SK, "skimage/data/astronaut.png", TRAIN),
    Photo("chelsea", _SK, "skimage/data/chelsea.png", TEST),
    Photo("coffee", _SK, "skimage/data/coffee.png", TRAIN),
    Photo("rocket", _SK, "skimage/data/rocket.jpg", TRAIN),
    Photo("motorcycle", _SK, "skimage/data/motorcycle_left.png", TRAIN),
    Photo("china", _SL, "sklearn/datasets/images/china.jpg", TEST),
    Photo("flower", _SL, "sklearn/datasets/images/flower.jpg", TRAIN),
    Photo("hopper", _MPL, "matplotlib/mpl-data/sample_data/grace_hopper.jpg", TEST),
    Photo("caps", _PYIQA, "ResultsCalibra/ref_dir/I03.bmp", TRAIN),
    Photo("portrait", _PYIQA, "ResultsCalibra/ref_dir/I04.bmp", TRAIN),
    Photo("boat", _PYIQA, "ResultsCalibra/ref_dir/I06.bmp", TRAIN),
    Photo("houses", _PYIQA, "ResultsCalibra/ref_dir/I08.bmp", TEST),
    Photo("lighthouse", _PYIQA, "ResultsCalibra/ref_dir/I19.bmp", TRAIN),
    Photo("garden", _PYIQA, "tests/test_efficiency_img_dir/frame_4wrwr48cdk6rbcjl.jpg", TRAIN),
    Photo("sunset", _PYIQA, "tests/test_efficiency_img_dir/frame_7gzdcz9sif0ekg31.jpg", TRAIN),
    Photo("snow", _PYIQA, "tests/test_efficiency_img_dir/frame_9ogwhvvy7gfj6jzh.jpg", TRAIN),
)


# ----------------------------------------------------------- distortions ---
Distort = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _blur(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="reflect")


def _noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return x + rng.normal(0.0, sigma, size=x.shape)


def _jpeg(x: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(_to_uint8(x)).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float64) / 255.0


def _contrast(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    return x.mean() + factor * (x - x.mean())


def _quantise(x: np.ndarray, colours: float, rng: np.random.Generator) -> np.ndarray:
    img = Image.fromarray(_to_uint8(x)).quantize(
        colors=int(colours), method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    return np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0


@dataclass(frozen=True)
class Distortion:
    """One distortion type; ``levels`` go from mild to severe."""

    name: str
    levels: tuple[float, ...]
    apply: Distort


DISTORTIONS: tuple[Distortion, ...] = (
    Distortion("blur", (0.8, 1.5, 2.5, 4.0, 7.0), _blur),  # Gaussian sigma, px
    Distortion("noise", (0.015, 0.03, 0.05, 0.08, 0.12), _noise),  # sigma, [0,1] units
    Distortion("jpeg", (35, 18, 10, 6, 3), _jpeg),  # PIL quality
    Distortion("contrast", (0.8, 0.65, 0.5, 0.35, 0.22), _contrast),  # kept fraction
    Distortion("quantise", (48, 24, 12, 6, 3), _quantise),  # palette size
)


# ------------------------------------------------- full-reference metrics ---
# Each function takes a stack of distorted images ``d`` (N,H,W,3, float in
# [0,1]) and their common reference ``r`` (H,W,3), so that the reference's
# share of the work is done once per crop, not once per distortion.

#: linear mapping of each metric to 0-100: the value that maps to 0 (and 100)
GMSD_AT_ZERO = 0.30
DELTA_E_AT_ZERO = 50.0
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03
GMSD_C = 170.0
_LUMA = np.array([0.299, 0.587, 0.114])
_PREWITT = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0
_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_D65 = np.array([0.95047, 1.0, 1.08883])


def _luma(x: np.ndarray) -> np.ndarray:
    return x @ _LUMA


def _ssim(d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Mean SSIM of the luma (Wang et al. 2004, Gaussian window), per image."""
    c1, c2 = SSIM_K1**2, SSIM_K2**2

    def g(a: np.ndarray) -> np.ndarray:
        sigma = (0,) * (a.ndim - 2) + (SSIM_SIGMA, SSIM_SIGMA)
        return ndimage.gaussian_filter(a, sigma=sigma, mode="reflect", truncate=SSIM_TRUNCATE)

    yd, yr = _luma(d), _luma(r)
    mu_d, mu_r = g(yd), g(yr)
    var_d = g(yd * yd) - mu_d**2
    var_r = g(yr * yr) - mu_r**2
    cov = g(yd * yr) - mu_d * mu_r
    num = (2 * mu_d * mu_r + c1) * (2 * cov + c2)
    den = (mu_d**2 + mu_r**2 + c1) * (var_d + var_r + c2)
    return (num / den).mean(axis=(1, 2))


def _gradient_magnitude(x: np.ndarray) -> np.ndarray:
    """GMSD's gradient map: luma 0-255, 2x2 average pooled, Prewitt."""
    y = _luma(x) * 255.0
    h, w = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
    y = y[..., :h, :w].reshape(*y.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))
    lead = (1,) * (y.ndim - 2)
    gx = ndimage.correlate(y, _PREWITT.reshape(lead + (3, 3)), mode="nearest")
    gy = ndimage.correlate(y, _PREWITT.T.reshape(lead + (3, 3)), mode="nearest")
    return np.sqrt(gx**2 + gy**2)


def _gmsd(d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Gradient magnitude similarity deviation (Xue et al. 2014), per image."""
    md, mr = _gradient_magnitude(d), _gradient_magnitude(r)
    gms = (2 * md * mr + GMSD_C) / (md**2 + mr**2 + GMSD_C)
    return gms.reshape(len(gms), -1).std(axis=1)


def _lab(x: np.ndarray) -> np.ndarray:
    """sRGB in [0,1] -> CIELAB (D65)."""
    x = x.astype(np.float32)  # float32 halves the cost; dE needs no more
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    xyz = lin @ (_RGB_TO_XYZ.T / _D65).astype(np.float32)
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], -1)


def _delta_e(d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Mean CIE76 colour difference, per image."""
    return np.sqrt(((_lab(d) - _lab(r)) ** 2).sum(-1)).mean(axis=(1, 2))


def pseudo_mos(d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The label of each distorted image in ``d`` against the reference ``r``.

    ``d`` is N,H,W,3 and ``r`` H,W,3, float in [0,1]; returns N labels in
    [0, 100] (the module docstring has the formula).
    """
    parts = (
        np.clip(_ssim(d, r), 0, 1),
        np.clip(1 - _gmsd(d, r) / GMSD_AT_ZERO, 0, 1),
        np.clip(1 - _delta_e(d, r) / DELTA_E_AT_ZERO, 0, 1),
    )
    return 100.0 * np.mean(parts, axis=0)


# ------------------------------------------------------------- generator ---
@dataclass(frozen=True)
class EmbeddedConfig:
    """What the generated content depends on (hashed into the fingerprint)."""

    crop_size: int = 192
    crops_per_ref: int = 6
    max_short_side: int = 384
    seed: int = 0
    photos: tuple[str, ...] = ()  # restrict to these photo ids (empty: all)


@dataclass
class EmbeddedData:
    """The generated dataset as arrays (one row per image)."""

    images: np.ndarray  # N,H,W,3 uint8
    mos: np.ndarray  # N float32
    names: np.ndarray  # N str
    refs: np.ndarray  # N str
    splits: np.ndarray  # N str

    def to_npz(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, **asdict(self))
        return buf.getvalue()

    @classmethod
    def from_npz(cls, path: Path) -> "EmbeddedData":
        with np.load(path, allow_pickle=False) as z:
            return cls(**{k: z[k] for k in ("images", "mos", "names", "refs", "splits")})


def available_photos(config: EmbeddedConfig) -> list[tuple[Photo, Path]]:
    """The configured photographs whose source file is installed here."""
    wanted = [p for p in PHOTOS if not config.photos or p.id in config.photos]
    unknown = set(config.photos) - {p.id for p in PHOTOS}
    if unknown:
        raise DatasetError(f"embedded dataset: unknown photo(s) {sorted(unknown)}; known: {[p.id for p in PHOTOS]}")
    found = [(p, path) for p in wanted if (path := p.locate()) is not None]
    for split, least in MIN_PHOTOS.items():
        asked = [p for p in wanted if p.split == split]
        have = [p for p, _ in found if p.split == split]
        if len(have) < min(least, len(asked)):
            missing = ", ".join(f"{p.id} ({p.distribution}: {p.path})" for p in asked if p not in have)
            raise DatasetError(
                f"embedded dataset: only {len(have)} {split} photograph(s) are installed, need {least}; "
                f"missing: {missing}"
            )
    return found


def _load_photo(photo: Photo, path: Path, max_short_side: int) -> np.ndarray:
    try:
        img = Image.open(path).convert("RGB")
    except Exception as exc:
        raise DatasetError(f"embedded dataset: cannot read photo {photo.id!r} at {path}: {exc}") from None
    scale = max_short_side / min(img.size)
    if scale < 1:
        size = (round(img.width * scale), round(img.height * scale))
        img = img.resize(size, Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float64) / 255.0


def _crop_grid(shape: tuple[int, ...], size: int, count: int) -> list[tuple[int, int]]:
    """``count`` top-left corners of ``size`` crops spread evenly over the image."""
    h, w = shape[:2]
    if min(h, w) < size:
        raise DatasetError(f"embedded dataset: photo of {w}x{h} is smaller than crop_size {size}")
    rows = max(1, min(count, round(np.sqrt(count * h / w))))
    cols = -(-count // rows)
    ys = np.linspace(0, h - size, rows).round().astype(int)
    xs = np.linspace(0, w - size, cols).round().astype(int)
    return [(int(y), int(x)) for y in ys for x in xs][:count]


def _versions(crop: np.ndarray, photo_id: str, crop_no: int, seed: int) -> tuple[list[str], np.ndarray]:
    """The pristine crop and all its distortions, as uint8 (names, stack)."""
    names, out = [PRISTINE], [_to_uint8(crop)]
    for dist in DISTORTIONS:
        for level_no, level in enumerate(dist.levels, start=1):
            key = f"{photo_id}_c{crop_no}_{dist.name}_{level_no}"
            rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
            names.append(f"{dist.name}_{level_no}")
            out.append(_to_uint8(dist.apply(crop, level, rng)))
    return names, np.stack(out)


def distortion_type(name: str) -> str:
    """The distortion type of a generated image's name (``"pristine"`` for a
    reference): ``<photo>_c<crop>_<type>_<level>`` or ``<photo>_c<crop>_pristine``."""
    return PRISTINE if name.endswith(f"_{PRISTINE}") else name.rsplit("_", 2)[1]


def generate(config: EmbeddedConfig = EmbeddedConfig()) -> EmbeddedData:
    """Build the dataset from the installed photographs (no cache involved)."""
    images, mos, names, refs, splits = [], [], [], [], []
    for photo, path in available_photos(config):
        full = _load_photo(photo, path, config.max_short_side)
        crop_labels = []
        for crop_no, (y, x) in enumerate(_crop_grid(full.shape, config.crop_size, config.crops_per_ref), start=1):
            crop = full[y : y + config.crop_size, x : x + config.crop_size]
            versions, stack = _versions(crop, photo.id, crop_no, config.seed)
            dist = stack.astype(np.float64) / 255.0
            crop_labels.append(pseudo_mos(dist, dist[0]))
            images.append(stack)
            names += [f"{photo.id}_c{crop_no}_{v}" for v in versions]
            refs += [photo.id] * len(versions)
            splits += [photo.split] * len(versions)
        # one label per distorted photograph, shared by its crops (module docstring)
        photo_labels = np.mean(crop_labels, axis=0)
        mos += [photo_labels] * len(crop_labels)
    return EmbeddedData(
        images=np.concatenate(images),
        mos=np.concatenate(mos).astype(np.float32),
        names=np.array(names),
        refs=np.array(refs),
        splits=np.array(splits),
    )


def fingerprint(config: EmbeddedConfig) -> str:
    """Hash of the generator version, its parameters and the installed sources."""
    sources = [(p.id, p.split, path.stat().st_size) for p, path in available_photos(config)]
    distortions = [(d.name, d.levels) for d in DISTORTIONS]
    label = [SSIM_SIGMA, SSIM_K1, SSIM_K2, GMSD_C, GMSD_AT_ZERO, DELTA_E_AT_ZERO]
    return config_key(
        {
            "generator": GENERATOR_VERSION,
            "config": asdict(config),
            "sources": sources,
            "distortions": distortions,
            "label": label,
        }
    )


def load_or_generate(config: EmbeddedConfig) -> EmbeddedData:
    """The cached arrays for ``config``, generating and caching them if absent."""
    path = cache_dir("datasets", "embedded") / f"{fingerprint(config)}.npz"
    if path.exists():
        try:
            return EmbeddedData.from_npz(path)
        except Exception:  # a corrupt cache entry is rebuilt, not fatal
            pass
    data = generate(config)
    atomic_write_bytes(path, data.to_npz())
    return data


# --------------------------------------------------------------- dataset ---
class EmbeddedDataset(IQADataset):
    """Offline default: bundled photographs x synthetic distortions, FR pseudo-MOS."""

    name = "embedded"
    #: what its pseudo-MOS is built from: KADIS-700k's weak labels over SSIM and GMSD
    citation = bib.EMBEDDED
    description = "Photographs shipped by installed packages x 5 synthetic distortions x 5 levels, FR pseudo-MOS 0-100"
    mos_range = (0.0, 100.0)

    def __init__(self, crop_size: int = 192, crops_per_ref: int = 6, seed: int = 0) -> None:
        self.config = EmbeddedConfig(crop_size=crop_size, crops_per_ref=crops_per_ref, seed=seed)

    @cached_property
    def data(self) -> EmbeddedData:
        """Generated (or read from the cache) on first use, not on construction."""
        return load_or_generate(self.config)

    def splits(self) -> list[str]:
        return [TRAIN, TEST]

    def items(self, split: str) -> list[Item]:
        if split not in self.splits():
            raise DatasetError(f"dataset {self.name!r} has no split {split!r} (splits: {', '.join(self.splits())})")
        d = self.data
        return [
            Item(name=str(d.names[i]), mos=float(d.mos[i]), source=int(i), ref=str(d.refs[i]),
                 group=distortion_type(str(d.names[i])))
            for i in np.flatnonzero(d.splits == split)
        ]

    def load(self, item: Item) -> torch.Tensor:
        index = item.source
        if not isinstance(index, int) or not 0 <= index < len(self.data.images):
            raise DatasetError(f"dataset {self.name!r}: item {item.name!r} has no image (source {index!r})")
        return torch.from_numpy(self.data.images[index]).permute(2, 0, 1).float().div_(255.0)

    def fingerprint(self) -> str:
        return f"{self.name}-{fingerprint(self.config)}"
