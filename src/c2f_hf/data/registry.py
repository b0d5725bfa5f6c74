"""`CONVERTERS`: every `c2f-hf data convert` source by name, each `(root, out, options) -> {split: rows}`."""

from collections.abc import Callable
from pathlib import Path

from .coco_amodal import convert_coco_amodal, convert_cocoa, convert_kins
from .converters import ConversionOptions
from .mask_folders import convert_mask_folder
from .video_formats import convert_fishbowl, convert_movid_a

Converter = Callable[[Path, Path, ConversionOptions], dict[str, int]]
CONVERTERS: dict[str, Converter] = {
    "kins": convert_kins,
    "cocoa": convert_cocoa,
    "fishbowl": convert_fishbowl,
    "movid_a": convert_movid_a,
    "coco_amodal": convert_coco_amodal,
    "mask_folder": convert_mask_folder,
}

__all__ = ["CONVERTERS", "Converter"]
