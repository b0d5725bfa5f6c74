"""Amodal datasets: the synthetic generator, the common `datasets` schema, converters of the public datasets,
and the object-crop transform used by training and evaluation."""

from .annotations import AnnotationError, read_plain_pickle
from .coco_amodal import convert_coco_amodal, convert_cocoa, convert_kins
from .converters import ConversionOptions
from .mask_folders import convert_mask_folder
from .registry import CONVERTERS
from .schema import image_features, load_amodal_dataset, video_features, write_split
from .synthetic import SHAPE_CATEGORIES, SyntheticConfig, generate_clip, generate_clips, generate_scene, generate_scenes
from .transforms import (
    AmodalObjectDataset,
    ObjectCropTransform,
    VisibleMaskAugmentation,
    collate_object_crops,
    object_pair_index,
)
from .video_formats import convert_fishbowl, convert_movid_a

__all__ = [
    "CONVERTERS",
    "SHAPE_CATEGORIES",
    "AmodalObjectDataset",
    "AnnotationError",
    "ConversionOptions",
    "ObjectCropTransform",
    "SyntheticConfig",
    "VisibleMaskAugmentation",
    "collate_object_crops",
    "convert_coco_amodal",
    "convert_cocoa",
    "convert_fishbowl",
    "convert_kins",
    "convert_mask_folder",
    "convert_movid_a",
    "generate_clip",
    "generate_clips",
    "generate_scene",
    "generate_scenes",
    "image_features",
    "load_amodal_dataset",
    "object_pair_index",
    "read_plain_pickle",
    "video_features",
    "write_split",
]
