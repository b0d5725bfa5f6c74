"""Amodal datasets: the synthetic generator, the common `datasets` schema, converters of the public datasets,
and the object-crop transform used by training and evaluation."""

from ..lazy_exports import lazy_exports

# Each name is imported from its module on first use, so the synthetic generator (numpy only) does not pull in
# `datasets`, `pyarrow`, `pycocotools` or `scipy` (see `c2f_hf.lazy_exports`).
__getattr__ = lazy_exports(
    __name__,
    {
        "annotations": ("AnnotationError", "read_plain_pickle"),
        "coco_amodal": ("convert_coco_amodal", "convert_cocoa", "convert_kins"),
        "converters": ("ConversionOptions",),
        "mask_folders": ("convert_mask_folder",),
        "registry": ("CONVERTERS",),
        "schema": ("image_features", "load_amodal_dataset", "video_features", "write_split"),
        "synthetic": (
            "SHAPE_CATEGORIES",
            "SyntheticConfig",
            "generate_clip",
            "generate_clips",
            "generate_scene",
            "generate_scenes",
        ),
        "transforms": (
            "AmodalObjectDataset",
            "ObjectCropTransform",
            "VisibleMaskAugmentation",
            "collate_object_crops",
            "object_pair_index",
        ),
        "video_formats": ("convert_fishbowl", "convert_movid_a"),
    },
)

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
