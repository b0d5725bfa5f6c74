"""How much of each object's hidden part its crop can hold: the ceiling of mIoU_occ for a crop's enlarge ratio.

The model sees and predicts only the crop around the visible mask (`mask_geometry.object_crop_box`, the visible
box scaled by `enlarge_ratio`), so hidden pixels outside the crop are lost whatever the model. A perfect model's
occluded-region IoU for an object is then `|hidden ∩ crop| / |hidden|`; its mean over the occluded objects of a
dataset is the highest mIoU_occ any model reaches with that ratio, and the share of all hidden pixels inside the
crops says the same per pixel. Use it to read a target (can a model reach it at this ratio?) and to choose the
ratio (`training.choose_defaults --enlarge-ratios`).

With `second_crop_ratio` the crop is the image processor's second crop where a perfect first prediction (the amodal
mask inside the first crop) reaches a side of the crop where the image goes on (`mask_geometry.reaches_crop_border`
and `grown_crop_box`, as `second_crop.with_second_crops` grows it): the ceiling with a second crop.

    python -m c2f_hf.evaluation.crop_reach --dataset simple --split test --enlarge-ratios 2 2.5 3
    python -m c2f_hf.evaluation.crop_reach --dataset simple --split test --second-crop-ratio 1.75
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..models.c2f_seg.mask_geometry import CropBox, grown_crop_box, object_crop_box, reaches_crop_border
from ..models.c2f_seg.mask_policy import occluded_mask, to_bool_mask


@dataclass(frozen=True)
class CropReach:
    """For one enlarge ratio (and second crop ratio, None for one crop): the occluded objects counted, the mean over
    them of the hidden share inside the crop (the mIoU_occ ceiling, in [0, 1]) and the share of all their hidden
    pixels inside their crops."""

    enlarge_ratio: float
    num_occluded_objects: int
    miou_occ_ceiling: float
    hidden_pixels_in_crop: float
    second_crop_ratio: float | None = None


def pixels_inside(mask: np.ndarray, box: CropBox) -> int:
    """The number of true pixels of `mask (H, W)` bool inside `box`."""
    return int(mask[box.top : box.bottom, box.left : box.right].sum())


def reached_box(
    visible: np.ndarray, amodal: np.ndarray, enlarge_ratio: float, second_crop_ratio: float | None
) -> CropBox:
    """The crop of an object with `(H, W)` bool masks: the authors' crop, or with `second_crop_ratio` its second
    crop when the amodal mask inside it (a perfect first prediction) reaches a side where the image goes on."""
    box = object_crop_box(visible, enlarge_ratio)
    if second_crop_ratio is None:
        return box
    seen = np.zeros_like(amodal)
    seen[box.top : box.bottom, box.left : box.right] = amodal[box.top : box.bottom, box.left : box.right]
    return grown_crop_box(box, seen | visible, second_crop_ratio) if reaches_crop_border(seen, box) else box


def crop_reach(
    objects: Iterable[tuple[np.ndarray, np.ndarray]],
    enlarge_ratios: Sequence[float],
    second_crop_ratio: float | None = None,
) -> list[CropReach]:
    """One `CropReach` per ratio, over `objects`: `(visible_mask, amodal_mask)` pairs of `(H, W)` masks, with one
    crop or, with `second_crop_ratio`, the second crop of a perfect first prediction (`reached_box`). Objects with
    nothing hidden or an empty visible mask (no crop) are skipped. Raises ValueError for a ratio that is not
    positive or when no object is occluded."""
    for ratio in enlarge_ratios:
        if not ratio > 0:
            raise ValueError(f"enlarge_ratios: expected positive ratios, got {ratio}")
    if second_crop_ratio is not None and not second_crop_ratio > 0:
        raise ValueError(f"second_crop_ratio: expected a positive number, got {second_crop_ratio}")
    inside, hidden_areas = [[] for _ in enlarge_ratios], []
    for visible, amodal in objects:
        visible, amodal = to_bool_mask(visible, "visible_mask"), to_bool_mask(amodal, "amodal_mask")
        hidden = occluded_mask(amodal, visible)
        if not hidden.any() or not visible.any():
            continue
        hidden_areas.append(int(hidden.sum()))
        for counts, ratio in zip(inside, enlarge_ratios):
            counts.append(pixels_inside(hidden, reached_box(visible, amodal, ratio, second_crop_ratio)))
    if not hidden_areas:
        raise ValueError("no occluded object with a visible mask: nothing for a crop to hold")
    areas = np.asarray(hidden_areas, dtype=np.float64)
    return [
        CropReach(
            float(ratio),
            len(areas),
            float(np.mean(np.asarray(counts) / areas)),
            float(sum(counts) / areas.sum()),
            second_crop_ratio,
        )
        for ratio, counts in zip(enlarge_ratios, inside)
    ]


def dataset_objects(dataset) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """`(visible_mask, amodal_mask)` of every object of an image dataset in the common schema (`data.schema`)."""
    for row in dataset:
        for entry in row["objects"]:
            yield to_bool_mask(entry["visible_mask"], "visible_mask"), to_bool_mask(entry["amodal_mask"], "amodal_mask")


def format_table(reaches: Sequence[CropReach]) -> str:
    """A markdown table of the reaches, in percent."""
    lines = [
        "| enlarge ratio | second crop | occluded objects | mIoU_occ ceiling | hidden pixels in the crop |",
        "|---:|---:|---:|---:|---:|",
    ]
    for reach in reaches:
        second = "none" if reach.second_crop_ratio is None else f"{reach.second_crop_ratio:g}"
        lines.append(
            f"| {reach.enlarge_ratio:g} | {second} | {reach.num_occluded_objects} | "
            f"{100 * reach.miou_occ_ceiling:.2f} | {100 * reach.hidden_pixels_in_crop:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m c2f_hf.evaluation.crop_reach --dataset D [--split S] [--enlarge-ratios R ...]
    [--second-crop-ratio R] [--json]`."""
    from ..data.schema import load_amodal_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a dataset folder or Hub id in the common schema")
    parser.add_argument("--split", default="test")
    parser.add_argument("--enlarge-ratios", type=float, nargs="+", default=[2.0])
    parser.add_argument(
        "--second-crop-ratio", type=float, help="the ceiling with the image processor's second crop at this ratio"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    args = parser.parse_args(argv)
    objects = dataset_objects(load_amodal_dataset(args.dataset, args.split))
    try:
        reaches = crop_reach(objects, args.enlarge_ratios, args.second_crop_ratio)
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps([asdict(reach) for reach in reaches], indent=2) if args.json else format_table(reaches))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
