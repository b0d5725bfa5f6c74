"""Checks that keep what users hand the converters in its bounds, run before anything reads or decodes it.

- Files named by data (a json's `file_name`, a listed folder's entries) must resolve inside the root they belong
  to: absolute names, `..` that climbs out and symlinks that lead out are refused, so no other file of the machine
  can end up in a dataset (and on the Hub with `data push`).
- Images are opened with PIL and verified; an image over `MAX_IMAGE_PIXELS` is refused by its header before any
  pixel is decoded (a decompression bomb), and its size is compared with what the annotation says.
- COCO RLEs are checked before pycocotools sees them: `size` two positive integers within `MAX_IMAGE_PIXELS`,
  counts non-negative integers that sum to exactly height x width (pycocotools leaves the rest of its buffer
  unwritten when they sum to less, and writes past it when they sum to more), compressed counts decoded here first.
  Polygon coordinates must be finite and near the image (pycocotools allocates per pixel of every edge).
- Mask PNGs of users' layouts must be binary (0/255 or 0/1): an anti-aliased or resized mask is refused rather
  than read as "non-zero = object".

Every refusal is an `AnnotationError` (a ValueError) whose message names the file and the record or field.
"""

import contextlib
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

MAX_IMAGE_PIXELS = 2**27
MAX_POLYGON_EXTENT = 2
# A compressed RLE count of more than 7 characters (35 bits) is beyond any mask within MAX_IMAGE_PIXELS.
MAX_COUNT_CHARACTERS = 7


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the file and the field."""


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_image_size(height: Any, width: Any, source: str) -> tuple[int, int]:
    """`(height, width)` as ints when both are positive integers and their product is within `MAX_IMAGE_PIXELS`;
    else AnnotationError naming `source` ("<file>: <record>: field ...")."""
    if not (_is_integer(height) and _is_integer(width)) or height <= 0 or width <= 0:
        raise AnnotationError(f"{source}: size [{height!r}, {width!r}] should be two positive integers")
    if height * width > MAX_IMAGE_PIXELS:
        raise AnnotationError(
            f"{source}: size {height}x{width} ({height * width} pixels) exceeds the limit of {MAX_IMAGE_PIXELS} pixels"
        )
    return int(height), int(width)


def inside_root(root: Path, path: Path, source: str) -> Path:
    """`path` (lexically under `root`) when it also resolves inside `root`, following symlinks; else AnnotationError
    naming `source`."""
    if not Path(path).resolve().is_relative_to(Path(root).resolve()):
        raise AnnotationError(
            f"{source}: {path} leads outside {root} (a '..' or a symlink); only files inside the root are read"
        )
    return Path(path)


def contained_path(root: Path, name: Any, source: str) -> Path:
    """`root / name` for a relative `name` that stays inside `root`; AnnotationError naming `source` for an
    absolute name or one that leads outside (`..`, symlinks)."""
    if not isinstance(name, str) or not name:
        raise AnnotationError(f"{source}: should be a non-empty file name, got {name!r}")
    if Path(name).is_absolute():
        raise AnnotationError(
            f"{source}: {name!r} is an absolute path; file names are read relative to {root} and nothing outside "
            "it is read"
        )
    return inside_root(root, Path(root) / name, f"{source} {name!r}")


@contextlib.contextmanager
def open_image(path: Path, source: str = "") -> Iterator[PIL.Image.Image]:
    """A lazily opened PIL image whose header is within `MAX_IMAGE_PIXELS`; AnnotationError naming `path` (and
    `source`) for a file that is no image or is too large to decode."""
    prefix = f"{path}: {source}" if source else f"{path}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(path)
    except PIL.Image.DecompressionBombError as error:
        raise AnnotationError(f"{prefix}: refused to decode: {error}") from None
    except (PIL.UnidentifiedImageError, OSError) as error:
        raise AnnotationError(f"{prefix}: not a readable image ({error})") from None
    with image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise AnnotationError(
                f"{prefix}: refused to decode: image size ({width * height} pixels) exceeds the limit of "
                f"{MAX_IMAGE_PIXELS} pixels"
            )
        yield image


def checked_image_file(path: Path, source: str, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """`(width, height)` of the image file `path` once PIL has verified it; AnnotationError naming `path` and
    `source` when it is no image, too large, or not of `size` `(width, height)`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{source}: file {path} does not exist")
    with open_image(path, source) as image:
        try:
            image.verify()
        except Exception as error:  # PIL raises many kinds for a damaged file (SyntaxError, struct.error, ...)
            raise AnnotationError(f"{path}: {source}: not a readable image ({error})") from None
        found = image.size
    if size is not None and tuple(size) != found:
        raise AnnotationError(
            f"{path}: {source}: the image is {found[0]}x{found[1]} (width x height), its annotation says "
            f"{size[0]}x{size[1]}"
        )
    return found


def binary_mask(mask: np.ndarray, path: Path) -> np.ndarray:
    """`(H, W)` bool of a mask PNG whose values are 0/255 or 0/1; AnnotationError naming `path` otherwise."""
    values = np.unique(mask)
    if not (set(values.tolist()) <= {0, 255} or set(values.tolist()) <= {0, 1}):
        shown = ", ".join(str(value) for value in values[:6]) + (", ..." if len(values) > 6 else "")
        raise AnnotationError(
            f"{path}: the mask is not binary (values {shown}; expected 0 and 255, or 0 and 1): an anti-aliased or "
            "resized mask would be read as the object wherever it is non-zero"
        )
    return mask > 0


def compressed_counts(counts: str | bytes, source: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string, decoded as pycocotools' `rleFrString` does; AnnotationError
    naming `source` for characters outside its alphabet or a truncated count."""
    if isinstance(counts, str) and not counts.isascii():
        raise AnnotationError(f"{source}: compressed counts should be ASCII characters")
    text = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    values: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            code = text[position] - 48 if position < len(text) else -1
            if not 0 <= code < 64 or shift >= 5 * MAX_COUNT_CHARACTERS:
                raise AnnotationError(f"{source}: compressed counts are malformed at character {position}")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position, shift = position + 1, shift + 5
            if not more and code & 0x10:
                value |= -1 << shift
        values.append(value + values[-2] if len(values) > 2 else value)
    return values


def checked_rle_counts(counts: Any, height: int, width: int, source: str) -> list[int] | bytes:
    """The counts of an RLE of size `(height, width)`: a list of non-negative integers, or compressed bytes whose
    runs are, summing to exactly `height * width`; AnnotationError naming `source` otherwise."""
    if isinstance(counts, np.ndarray):
        counts = counts.tolist()
    if isinstance(counts, list):
        if not all(_is_integer(value) for value in counts):
            raise AnnotationError(f"{source}: counts should be integers")
        runs = [int(value) for value in counts]
    elif isinstance(counts, (str, bytes)):
        runs = compressed_counts(counts, source)
    else:
        raise AnnotationError(f"{source}: counts should be a list of integers or a string, got {type(counts).__name__}")
    if any(run < 0 for run in runs):
        raise AnnotationError(f"{source}: counts should be non-negative")
    if sum(runs) != height * width:
        raise AnnotationError(
            f"{source}: counts sum to {sum(runs)}, expected height x width = {height * width} (every pixel once)"
        )
    return runs if isinstance(counts, list) else (counts.encode("ascii") if isinstance(counts, str) else counts)


def check_polygon_coordinates(polygons: list[list], height: int, width: int, source: str) -> None:
    """AnnotationError naming `source` when a coordinate is not finite or lies farther from the image than
    `MAX_POLYGON_EXTENT` times its size."""
    limit = MAX_POLYGON_EXTENT * max(height, width)
    for polygon in polygons:
        if not all(math.isfinite(float(value)) and abs(float(value)) <= limit for value in polygon):
            raise AnnotationError(
                f"{source}: polygon coordinates should be finite and within {limit} px of the image origin"
            )


__all__ = [
    "MAX_IMAGE_PIXELS",
    "AnnotationError",
    "binary_mask",
    "check_image_size",
    "check_polygon_coordinates",
    "checked_image_file",
    "checked_rle_counts",
    "compressed_counts",
    "contained_path",
    "inside_root",
    "open_image",
]
