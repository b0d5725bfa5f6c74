"""How much of each object's hidden part its crop can hold: the ceiling of mIoU_occ for a crop's enlarge ratio.

The model sees and predicts only the crop around the visible mask (`mask_geometry.object_crop_box`, the visible
box scaled by `enlarge_ratio`), so hidden pixels outside the crop are lost whatever the model. A perfect model's
occluded-region IoU for an object is then `|hidden ∩ crop| / |hidden|`; its mean over the occluded objects of a
dataset is the highest mIoU_occ any model reaches with that ratio, and the share of all hidden pixels inside the
crops says the same per pixel. Use it to read a target (can a model reach it at this ratio?) and to choose the
ratio (`training.choose_defaults --enlarge-ratios`).

    python -m c2f_hf.evaluation.crop_reach --dataset simple --split test --enlarge-ratios 2 2.5 3
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..models.c2f_seg.mask_geometry import CropBox, object_crop_box
from ..models.c2f_seg.mask_policy import occluded_mask, to_bool_mask


@dataclass(frozen=True)
class CropReach:
    """For one enlarge ratio: the occluded objects counted, the mean over them of the hidden share inside the crop
    (the mIoU_occ ceiling, in [0, 1]) and the share of all their hidden pixels inside their crops."""

    enlarge_ratio: float
    num_occluded_objects: int
    miou_occ_ceiling: float
    hidden_pixels_in_crop: float


def pixels_inside(mask: np.ndarray, box: CropBox) -> int:
    """The number of true pixels of `mask (H, W)` bool inside `box`."""
    return int(mask[box.top : box.bottom, box.left : box.right].sum())


def crop_reach(objects: Iterable[tuple[np.ndarray, np.ndarray]], enlarge_ratios: Sequence[float]) -> list[CropReach]:
    """One `CropReach` per ratio, over `objects`: `(visible_mask, amodal_mask)` pairs of `(H, W)` masks. Objects with
    nothing hidden or an empty visible mask (no crop) are skipped. Raises ValueError for a ratio that is not
    positive or when no object is occluded."""
    for ratio in enlarge_ratios:
        if not ratio > 0:
            raise ValueError(f"enlarge_ratios: expected positive ratios, got {ratio}")
    inside, hidden_areas = [[] for _ in enlarge_ratios], []
    for visible, amodal in objects:
        visible = to_bool_mask(visible, "visible_mask")
        hidden = occluded_mask(amodal, visible)
        if not hidden.any() or not visible.any():
            continue
        hidden_areas.append(int(hidden.sum()))
        for counts, ratio in zip(inside, enlarge_ratios):
            counts.append(pixels_inside(hidden, object_crop_box(visible, ratio)))
    if not hidden_areas:
        raise ValueError("no occluded object with a visible mask: nothing for a crop to hold")
    areas = np.asarray(hidden_areas, dtype=np.float64)
    return [
        CropReach(
            float(ratio), len(areas), float(np.mean(np.asarray(counts) / areas)), float(sum(counts) / areas.sum())
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
        "| enlarge ratio | occluded objects | mIoU_occ ceiling | hidden pixels in the crop |",
        "|---:|---:|---:|---:|",
    ]
    for reach in reaches:
        lines.append(
            f"| {reach.enlarge_ratio:g} | {reach.num_occluded_objects} | {100 * reach.miou_occ_ceiling:.2f} "
            f"| {100 * reach.hidden_pixels_in_crop:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m c2f_hf.evaluation.crop_reach --dataset D [--split S] [--enlarge-ratios R ...] [--json]`."""
    from ..data.schema import load_amodal_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a dataset folder or Hub id in the common schema")
    parser.add_argument("--split", default="test")
    parser.add_argument("--enlarge-ratios", type=float, nargs="+", default=[2.0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    args = parser.parse_args(argv)
    reaches = crop_reach(dataset_objects(load_amodal_dataset(args.dataset, args.split)), args.enlarge_ratios)
    print(json.dumps([asdict(reach) for reach in reaches], indent=2) if args.json else format_table(reaches))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
