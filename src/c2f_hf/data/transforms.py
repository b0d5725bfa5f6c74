"""The object-crop transform used by training and evaluation.

A dataset row (one image, several objects, `schema.image_features()`) becomes one sample per object: the image,
the visible mask and the targets cropped with the authors' crop rule (`object_crop_box`, enlarge ratio uniform in
[1.5, 3] for training; for evaluation 2.0, or a saved image processor's with
`ObjectCropTransform.from_image_processor`) and resized to `crop_size`. In training the crops are flipped
horizontally with probability 0.5 and the input visible mask is augmented like the authors'
(`VisibleMaskAugmentation`). Randomness comes from `numpy.random.default_rng([seed, epoch, index])`, so a
sample depends only on the base seed, the epoch and its index.

The crop box is taken from the input visible mask (ground truth or pre-detected) before augmentation, or with
`crop_from="amodal"` from the ground-truth amodal mask: the authors crop COCOA's ground-truth objects from the
annotation's (amodal) `bbox`, which gives the model the true extent of the object (docs/reproducing.md); an
unmatched detection has no amodal mask and keeps its visible box. Augmentation acts on the resized crop, with the
authors' pixel sizes (given for their 256-pixel crops) scaled to the crop's side, so a 128-pixel crop is perturbed
as much, relative to the object, as theirs. `crop_box` is the box in the unflipped image, so `paste_crop(prediction,
CropBox.from_list(crop_box), image_height, image_width)` pastes an (unflipped) prediction back.

With pre-detected visible masks, a sample is a detection matched to a ground-truth object; evaluation may also ask
for the unmatched detections (`include_unmatched=True`), whose targets are empty: there is no object to segment.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from scipy import ndimage

from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.mask_geometry import (
    CropBox,
    crop_image,
    crop_mask,
    grown_crop_box,
    object_crop_box,
    reaches_crop_border,
)

VISIBLE_SOURCES = ("gt", "predicted")
_DECODER = datasets.Image()


@dataclass(frozen=True)
class VisibleMaskAugmentation:
    """The authors' visible-mask augmentation: with `blur_probability` a Gaussian blur (`blur_size` square,
    `blur_sigma`); else with `morphology_probability` 1-4 repeated dilations (`dilation_probability`) or erosions
    with random rectangular kernels of `min_kernel`..`max_kernel` pixels, each followed by a blur with
    `blur_after_morphology_probability`; otherwise unchanged; then threshold at `threshold`.

    Pixel sizes are the authors', for masks of `reference_size` pixels; a mask of side S gets kernels and blur
    scaled by S / `reference_size` (kernel sides rounded, at least 1), the same random draws at every size.
    """

    blur_probability: float = 0.2
    morphology_probability: float = 0.4
    dilation_probability: float = 0.55
    min_repeats: int = 1
    max_repeats: int = 4
    min_kernel: int = 5
    max_kernel: int = 13
    blur_after_morphology_probability: float = 0.1
    blur_size: int = 35
    blur_sigma: float = 11.0
    threshold: float = 0.5
    reference_size: int = 256

    def scale(self, mask: np.ndarray) -> float:
        """How much larger the `(H, W)` mask is than the authors' crops (by its width)."""
        return mask.shape[-1] / self.reference_size

    def blur(self, mask: np.ndarray) -> np.ndarray:
        """Gaussian blur of a `(H, W)` float mask, `blur_size` x `blur_size` support at the reference size,
        mirrored borders."""
        sigma = self.blur_sigma * self.scale(mask)
        return ndimage.gaussian_filter(
            mask, sigma=sigma, truncate=(self.blur_size // 2) / self.blur_sigma, mode="mirror"
        )

    def morphology(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Repeated dilations or erosions of a `(H, W)` float mask with random rectangular kernels."""
        operation = ndimage.grey_dilation if rng.random() < self.dilation_probability else ndimage.grey_erosion
        scale = self.scale(mask)
        for _ in range(int(rng.integers(self.min_repeats, self.max_repeats + 1))):
            sides = rng.integers(self.min_kernel, self.max_kernel + 1, size=2)
            kernel = tuple(max(1, round(float(side) * scale)) for side in sides)
            mask = operation(mask, size=kernel)
            if rng.random() < self.blur_after_morphology_probability:
                mask = self.blur(mask)
        return mask

    def __call__(self, visible_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`(H, W)` mask in {0, 1} -> augmented `(H, W)` float32 mask in {0, 1}."""
        mask = np.asarray(visible_mask, dtype=np.float32)
        choice = rng.random()
        if choice < self.blur_probability:
            mask = self.blur(mask)
        elif choice < self.blur_probability + self.morphology_probability:
            mask = self.morphology(mask, rng)
        return (mask > self.threshold).astype(np.float32)


CROP_SOURCES = ("visible", "amodal")


def check_crop_source(crop_from) -> None:
    """Raise ValueError unless `crop_from` is one of `CROP_SOURCES`."""
    if crop_from not in CROP_SOURCES:
        raise ValueError(f"crop_from: expected one of {CROP_SOURCES}, got {crop_from!r}")


@dataclass(frozen=True)
class ObjectCropTransform:
    """Crops one object of a decoded image. `enlarge_range` is used in training, `enlarge_ratio` otherwise;
    `crop_from` ("visible" or "amodal") is the mask the crop box is taken from. In training, with probability
    `second_crop_probability`, a crop that the amodal mask reaches past (`reaches_crop_border`) is replaced by the
    second crop inference takes (`second_crop`), grown from the true amodal mask at a ratio drawn from
    `second_crop_range`; with 0 (the default) no random number is drawn for it."""

    crop_size: int = 256
    training: bool = False
    enlarge_range: tuple[float, float] = (1.5, 3.0)
    enlarge_ratio: float = 2.0
    flip_probability: float = 0.5
    augmentation: VisibleMaskAugmentation | None = VisibleMaskAugmentation()
    crop_from: str = "visible"
    second_crop_probability: float = 0.0
    second_crop_range: tuple[float, float] = (1.5, 2.0)

    def __post_init__(self):
        check_crop_source(self.crop_from)

    @classmethod
    def from_image_processor(
        cls, image_processor: C2FSegImageProcessor, crop_from: str = "visible"
    ) -> "ObjectCropTransform":
        """The evaluation crops of a (saved) image processor: its `crop_resolution` and `enlarge_ratio`, no
        augmentation, so evaluation crops objects exactly like the processor and the pipelines (with
        `crop_from="visible"`)."""
        return cls(
            crop_size=image_processor.crop_resolution,
            training=False,
            enlarge_ratio=image_processor.enlarge_ratio,
            crop_from=crop_from,
        )

    def __call__(
        self,
        image: np.ndarray,
        visible_mask: np.ndarray,
        visible_mask_target: np.ndarray,
        amodal_mask: np.ndarray,
        rng: np.random.Generator,
    ) -> dict[str, torch.Tensor]:
        """`image` `(H, W, 3)` uint8 and `(H, W)` bool masks (input visible, clean visible, amodal) -> crops
        `pixel_values` `(3, S, S)` in [0, 1], `visible_masks`, `visible_mask_targets`, `amodal_masks` `(1, S, S)`
        in {0, 1}, `crop_box` `(4,)` long (top, left, bottom, right) and `flipped` bool."""
        enlarge_ratio, flipped = self.draw_geometry(rng)
        from_amodal = self.crop_from == "amodal" and amodal_mask.any()
        box = object_crop_box(amodal_mask if from_amodal else visible_mask, enlarge_ratio)
        box = self.maybe_second_crop(box, visible_mask, amodal_mask, rng)
        sample = {
            "pixel_values": crop_image(image, box, self.crop_size),
            "visible_masks": self.augment(crop_mask(visible_mask, box, self.crop_size)[None], rng)[0],
            "visible_mask_targets": crop_mask(visible_mask_target, box, self.crop_size),
            "amodal_masks": crop_mask(amodal_mask, box, self.crop_size),
        }
        return self.finish(sample, box, flipped)

    def draw_geometry(self, rng: np.random.Generator) -> tuple[float, bool]:
        """The enlarge ratio and whether to flip: drawn in training, fixed (`enlarge_ratio`, no flip) otherwise."""
        enlarge_ratio = float(rng.uniform(*self.enlarge_range)) if self.training else self.enlarge_ratio
        flipped = self.training and bool(rng.random() < self.flip_probability)
        return enlarge_ratio, flipped

    def maybe_second_crop(
        self, box: CropBox, visible_mask: np.ndarray, amodal_mask: np.ndarray, rng: np.random.Generator
    ) -> CropBox:
        """In training, with probability `second_crop_probability`, the second crop of an object whose `(H, W)`
        bool amodal mask reaches past `box`: `grown_crop_box` around amodal ∪ visible; otherwise `box`."""
        if not self.training or self.second_crop_probability == 0:
            return box
        chosen, ratio = rng.random() < self.second_crop_probability, float(rng.uniform(*self.second_crop_range))
        if not chosen or not reaches_crop_border(amodal_mask, box):
            return box
        return grown_crop_box(box, amodal_mask | visible_mask, ratio)

    def augment(self, visible_crops: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """The authors' visible-mask augmentation of `(N, 1, S, S)` crops, in training only."""
        if not self.training or self.augmentation is None:
            return visible_crops
        return torch.stack([torch.from_numpy(self.augmentation(mask[0].numpy(), rng))[None] for mask in visible_crops])

    @staticmethod
    def finish(sample: dict[str, torch.Tensor], box: CropBox, flipped: bool) -> dict[str, torch.Tensor]:
        """Flip every crop horizontally if asked and add `crop_box` and `flipped`."""
        if flipped:
            sample = {key: value.flip(-1) for key, value in sample.items()}
        sample["crop_box"] = torch.tensor(box.to_list(), dtype=torch.long)
        sample["flipped"] = torch.tensor(flipped)
        return sample


def decode_rgb(value: dict) -> np.ndarray:
    """An encoded `Image()` value (`{"bytes", "path"}`) -> `(H, W, 3)` uint8 RGB."""
    return np.array(_DECODER.decode_example(value).convert("RGB"))


def decode_mask(value: dict) -> np.ndarray:
    """An encoded mask `Image()` value -> `(H, W)` bool (pixels above 127)."""
    return np.asarray(_DECODER.decode_example(value).convert("L")) > 127


def object_pair_index(dataset: datasets.Dataset, column: str = "objects", matched_only: bool = False) -> np.ndarray:
    """`(N, 2)` int64 `(row, position)` of every entry of list column `column`, read from Arrow without decoding
    any image. With `matched_only`, keep entries whose `object_index` field is >= 0 (matched predictions)."""
    pairs = []
    offset = 0
    for table in dataset.select_columns([column]).with_format("arrow").iter(batch_size=1024):
        lists = table.column(column).combine_chunks()
        lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        rows = np.repeat(np.arange(len(lengths)) + offset, lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions = np.arange(lengths.sum()) - starts
        if matched_only:
            matched = pc.struct_field(pc.list_flatten(lists), "object_index").to_numpy(zero_copy_only=False) >= 0
            rows, positions = rows[matched], positions[matched]
        pairs.append(np.stack([rows, positions], axis=1))
        offset += len(lengths)
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def _list_entry(table: pa.Table, column: str, position: int) -> dict:
    """Entry `position` of list column `column` of a one-row Arrow table, as Python (image bytes not decoded)."""
    return table.column(column)[0].values[position].as_py()


@dataclass(frozen=True)
class _SampleMasks:
    """The full-size masks of one sample, numpy bool `(H, W)`: the input visible mask (ground truth or detected)
    and the targets; `object_index` -1 for an unmatched detection, `prediction_index` -1 for ground-truth input."""

    visible_mask: np.ndarray
    visible_mask_target: np.ndarray
    amodal_mask: np.ndarray
    object_index: int
    prediction_index: int
    occlusion_rate: float

    def description(self) -> str:
        """Which object or detection this is, for error messages."""
        if self.prediction_index < 0:
            return f"object {self.object_index}"
        matched = "no object" if self.object_index < 0 else f"object {self.object_index}"
        return f"prediction {self.prediction_index} ({matched})"


def _object_masks(
    target: dict, object_index: int, visible_mask: np.ndarray | None = None, prediction_index: int = -1
) -> _SampleMasks:
    """The masks of ground-truth object `target` (an `objects` entry); `visible_mask` is the input visible mask
    when it is detection `prediction_index`, None for the object's own."""
    visible_mask_target = decode_mask(target["visible_mask"])
    return _SampleMasks(
        visible_mask=visible_mask_target if visible_mask is None else visible_mask,
        visible_mask_target=visible_mask_target,
        amodal_mask=decode_mask(target["amodal_mask"]),
        object_index=object_index,
        prediction_index=prediction_index,
        occlusion_rate=target["occlusion_rate"],
    )


def _detection_masks(table: pa.Table, prediction_index: int) -> _SampleMasks:
    """The masks of detection `prediction_index` of a one-row table: its matched object's targets, or all-zero
    targets (occlusion rate 0) when it matches no object."""
    prediction = _list_entry(table, "predicted_visible_masks", prediction_index)
    visible_mask = decode_mask(prediction["visible_mask"])
    object_index = prediction["object_index"]
    if object_index >= 0:
        return _object_masks(_list_entry(table, "objects", object_index), object_index, visible_mask, prediction_index)
    empty = np.zeros_like(visible_mask)
    return _SampleMasks(visible_mask, empty, empty, -1, prediction_index, 0.0)


class AmodalObjectDataset(torch.utils.data.Dataset):
    """Per-object crops of an image dataset (`schema.image_features()`), one sample per (row, object) pair.

    The pair index is computed once from the lengths of the `objects` column (or, with
    `visible_source="predicted"`, of `predicted_visible_masks`, keeping the predictions matched to an object
    unless `include_unmatched`). Rows are read lazily through an Arrow view of `dataset`; a sample decodes the
    image and only its own object's masks. Call `set_epoch` between epochs to draw new augmentations.

    A sample holds the crops of `ObjectCropTransform` plus `image_index`, `object_index`, `prediction_index`
    (-1 for ground-truth input), `image_height`, `image_width` (long scalars) and `occlusion_rate` (float).
    An unmatched detection (only with `include_unmatched`) is cropped from its detected mask like any other; its
    `object_index` is -1, its targets `visible_mask_targets` and `amodal_masks` are all zero and its
    `occlusion_rate` is 0.

    Args:
        dataset: an image dataset in the common schema.
        crop_size: side S of the crops.
        training: random enlarge ratio, flip and visible-mask augmentation (see `ObjectCropTransform`).
        seed: base seed of the per-sample random generators.
        visible_source: "gt" (the objects' visible masks) or "predicted" (`predicted_visible_masks`).
        transform: the crop transform; default `ObjectCropTransform(crop_size, training)`.
        include_unmatched: with `visible_source="predicted"`, also yield the detections matched to no object
            (for AP over every detection in evaluation; training uses matched detections only).
    """

    def __init__(
        self,
        dataset: datasets.Dataset,
        crop_size: int = 256,
        training: bool = False,
        seed: int = 0,
        visible_source: str = "gt",
        transform: ObjectCropTransform | None = None,
        include_unmatched: bool = False,
    ) -> None:
        if visible_source not in VISIBLE_SOURCES:
            raise ValueError(f"visible_source must be one of {VISIBLE_SOURCES}, got {visible_source!r}")
        if visible_source == "predicted" and "predicted_visible_masks" not in dataset.column_names:
            raise ValueError(
                "visible_source='predicted' needs a 'predicted_visible_masks' column; "
                f"the dataset has {dataset.column_names} (convert with --predictions)"
            )
        if include_unmatched and visible_source != "predicted":
            raise ValueError(f"include_unmatched=True needs visible_source='predicted', got {visible_source!r}")
        self.transform = transform or ObjectCropTransform(crop_size=crop_size, training=training)
        self.visible_source = visible_source
        self.seed = seed
        self.epoch = 0
        self._rows = dataset.with_format("arrow")
        column = "objects" if visible_source == "gt" else "predicted_visible_masks"
        matched_only = visible_source == "predicted" and not include_unmatched
        self.pairs = object_pair_index(dataset, column, matched_only=matched_only)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def _sample(self, index: int) -> tuple[int, _SampleMasks, np.ndarray]:
        """Sample `index`'s row index, masks and `(H, W, 3)` uint8 image."""
        row_index, position = (int(value) for value in self.pairs[index])
        table = self._rows[row_index]
        if self.visible_source == "predicted":
            masks = _detection_masks(table, position)
        else:
            masks = _object_masks(_list_entry(table, "objects", position), position)
        if not masks.visible_mask.any():
            raise ValueError(f"row {row_index}, {masks.description()}: the input visible mask is empty, cannot crop")
        return row_index, masks, decode_rgb(table.column("image")[0].as_py())

    def input_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample `index`'s `(H, W, 3)` uint8 image and `(H, W)` bool input visible mask, uncropped (for a second
        crop, `second_crop.with_second_crops`)."""
        _, masks, image = self._sample(index)
        return image, masks.visible_mask

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row_index, masks, image = self._sample(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sample = self.transform(image, masks.visible_mask, masks.visible_mask_target, masks.amodal_mask, rng)
        sample.update(
            image_index=torch.tensor(row_index),
            object_index=torch.tensor(masks.object_index),
            prediction_index=torch.tensor(masks.prediction_index),
            occlusion_rate=torch.tensor(masks.occlusion_rate, dtype=torch.float32),
            image_height=torch.tensor(image.shape[0]),
            image_width=torch.tensor(image.shape[1]),
        )
        return sample


def collate_object_crops(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack samples of `AmodalObjectDataset`: crops become `(batch, C, S, S)`, scalars `(batch,)`,
    `crop_box` `(batch, 4)`."""
    if not samples:
        raise ValueError("collate_object_crops got an empty list of samples")
    return {key: torch.stack([sample[key] for sample in samples]) for key in samples[0]}


def crop_boxes(batch: dict[str, torch.Tensor]) -> list[CropBox]:
    """The `CropBox` of each sample of a collated batch (for `paste_crop`)."""
    return [CropBox.from_list(box.tolist()) for box in batch["crop_box"]]
