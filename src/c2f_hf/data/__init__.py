"""Amodal datasets: the synthetic generator, the common `datasets` schema, converters of the public datasets,
and the object-crop transform used by training and evaluation."""

from .converters import CONVERTERS, AnnotationError, convert_cocoa, convert_fishbowl, convert_kins, convert_movid_a
from .schema import image_features, load_amodal_dataset, video_features, write_split
from .synthetic import SHAPE_CATEGORIES, SyntheticConfig, generate_clip, generate_clips, generate_scene, generate_scenes
from .transforms import (
    AmodalObjectDataset,
    ObjectCropTransform,
    VisibleMaskAugmentation,
    collate_object_crops,
    object_pair_index,
)

__all__ = [
    "CONVERTERS",
    "SHAPE_CATEGORIES",
    "AmodalObjectDataset",
    "AnnotationError",
    "ObjectCropTransform",
    "SyntheticConfig",
    "VisibleMaskAugmentation",
    "collate_object_crops",
    "convert_cocoa",
    "convert_fishbowl",
    "convert_kins",
    "convert_movid_a",
    "generate_clip",
    "generate_clips",
    "generate_scene",
    "generate_scenes",
    "image_features",
    "load_amodal_dataset",
    "object_pair_index",
    "video_features",
    "write_split",
]
