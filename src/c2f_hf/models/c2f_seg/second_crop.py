"""A second crop for the objects whose first prediction reaches past their crop (`second_crop_ratio`).

The authors' crop is the visible mask's box scaled by `enlarge_ratio` (2) about its centre, so a hidden part that
goes on more than half the box beyond it is cut off: a disc hidden up to its centre keeps only half its hidden half
in the crop. When the image processor's `second_crop_ratio` is set, every object whose thresholded amodal
prediction touches a side of its crop box where the image goes on (`mask_geometry.reaches_crop_border`) is
predicted once more, from `mask_geometry.grown_crop_box`: the first box grown to hold the crop box of the first
prediction (with the visible mask) at `second_crop_ratio`. The second prediction, all its outputs and its crop box
replace the first. One round only: each further round moves the visible mask further off the crop's centre, where
training never put it.

`with_second_crops` is the one implementation; the pipeline and the evaluation runner (so `c2f-hf evaluate`,
`c2f-hf predict` and `choose_defaults`) call it with their own way to read an object's image and to run the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .image_processing_c2f_seg import C2FSegImageProcessor
from .mask_geometry import CropBox, grown_crop_box, reaches_crop_border

# (indices of the objects, their pixel_values (n, 3, S, S), their visible_masks (n, 1, S, S)) -> the model's
# generation output for those n objects.
GenerateObjects = Callable[[list[int], torch.Tensor, torch.Tensor], object]
# index of an object -> its `(H, W, 3)` uint8 image and `(H, W)` bool input visible mask.
ObjectArrays = Callable[[int], tuple[np.ndarray, np.ndarray]]


def reaching_objects(amodal_masks: Sequence[np.ndarray], crop_boxes: Sequence[CropBox]) -> list[int]:
    """The indices of the objects whose full-size `(H, W)` bool amodal mask reaches a side of its crop box where
    the image goes on (`reaches_crop_border`): those a second crop is for."""
    return [
        index
        for index, (mask, box) in enumerate(zip(amodal_masks, crop_boxes, strict=True))
        if reaches_crop_border(mask, box)
    ]


def _replaced_rows(first, second, indices: list[int]):
    """`first` (a generation output of N objects) with rows `indices` taken from `second` (one of len(indices))."""
    positions = torch.tensor(indices, dtype=torch.long)
    for name, value in list(first.items()):
        if isinstance(value, torch.Tensor) and value.ndim > 0 and name in second:
            merged = value.clone()
            merged[positions.to(value.device)] = second[name].to(device=value.device, dtype=value.dtype)
            first[name] = merged
    return first


def with_second_crops(
    output,
    crop_boxes: torch.Tensor,
    image_sizes: Sequence[tuple[int, int]],
    object_arrays: ObjectArrays,
    generate: GenerateObjects,
    processor: C2FSegImageProcessor,
    mask_threshold: float | None = None,
):
    """Predict again, from a second crop, the objects whose first prediction reaches past their crop.

    Args:
        output: the model's generation output for N objects (`amodal_masks (N, 1, S, S)` probabilities and the
            other per-object tensors of `C2FSegGenerationOutput`).
        crop_boxes: `(N, 4)` long, their first crop boxes (top, left, bottom, right).
        image_sizes: the `(height, width)` of each object's image.
        object_arrays: `object_arrays(i)` -> object i's `(H, W, 3)` uint8 image and `(H, W)` bool input visible
            mask; called only for the objects cropped again.
        generate: `generate(indices, pixel_values, visible_masks)` runs the model on those objects' second crops
            (on the model's device, with each object's own random generator) and returns its generation output.
        processor: crops (`crop_objects`), pastes and thresholds (`post_process_amodal_masks`); its
            `second_crop_ratio` (None: the output comes back unchanged).
        mask_threshold: the threshold the decision uses (default the processor's), as the results will.

    Returns:
        `(output, crop_boxes)`: the rows of the objects cropped again replaced by their second prediction and box.
    """
    if processor.second_crop_ratio is None or len(crop_boxes) == 0:
        return output, crop_boxes
    pasted = processor.post_process_amodal_masks(
        output["amodal_masks"], crop_boxes, image_sizes, range(len(crop_boxes)), mask_threshold
    )
    masks = [mask[0].numpy() for mask in pasted]
    boxes = [CropBox.from_list(box) for box in crop_boxes.tolist()]
    indices = reaching_objects(masks, boxes)
    if not indices:
        return output, crop_boxes
    images, visible_masks = zip(*(object_arrays(index) for index in indices))
    second = [
        grown_crop_box(boxes[index], masks[index] | visible, processor.second_crop_ratio)
        for index, visible in zip(indices, visible_masks)
    ]
    crops = processor.crop_objects(list(images), list(visible_masks), second)
    output = _replaced_rows(output, generate(indices, crops["pixel_values"], crops["visible_masks"]), indices)
    crop_boxes = crop_boxes.clone()
    crop_boxes[torch.tensor(indices)] = torch.tensor([box.to_list() for box in second], dtype=torch.long)
    return output, crop_boxes


__all__ = ["reaching_objects", "with_second_crops"]
