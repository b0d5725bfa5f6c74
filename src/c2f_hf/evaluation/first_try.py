"""What a new user tries first: a disc, a square and a triangle, each half hidden by a blue box, and the same
shapes with the box beside them, hiding nothing.

The scenes are drawn as a user draws them in the Space (one flat-coloured shape on a light background, one box in
front, exact visible masks) and segmented through `pipeline("amodal-segmentation")` with the model's defaults,
seed 0 as the Space's first run. For each half-hidden shape it reports the IoU of the amodal mask and of its
hidden half (IoU_full and IoU_occ of `c2f_hf.evaluation.metrics`); for each unhidden shape the invented area, the
predicted pixels outside the shape over the shape's area (the right answer is 0). The scenes are not a training
set or a validation set of any shipped model.

    python -m c2f_hf.evaluation.first_try --model FOLDER_OR_HUB_ID
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

from .metrics import bool_invented_area, bool_iou, bool_occluded_iou

logger = logging.getLogger(__name__)

FIRST_TRY_SHAPES = ("disc", "square", "triangle")
IMAGE_SIZE = (320, 240)  # width, height: the Space's photo examples' size
_CENTRE = (150, 120)
_RADIUS = 60
_BACKGROUND, _SHAPE_COLOUR, _BOX_COLOUR = (235, 235, 230), (210, 45, 40), (40, 80, 200)


@dataclass(frozen=True)
class FirstTryScene:
    """One scene: `image` `(H, W, 3)` uint8, the shape's `visible_mask` and `amodal_mask` `(H, W)` bool."""

    shape: str
    hidden: bool
    image: np.ndarray
    visible_mask: np.ndarray
    amodal_mask: np.ndarray


@dataclass(frozen=True)
class FirstTryResult:
    """The numbers of one scene: `iou_full` and `iou_occ` for a hidden shape, `invented_area` for an unhidden one."""

    shape: str
    hidden: bool
    iou_full: float
    iou_occ: float | None
    invented_area: float


def _drawn(draw: ImageDraw.ImageDraw, shape: str, fill: tuple[int, int, int] | int) -> None:
    x, y = _CENTRE
    if shape == "disc":
        draw.ellipse((x - _RADIUS, y - _RADIUS, x + _RADIUS, y + _RADIUS), fill=fill)
    elif shape == "square":
        draw.rectangle((x - _RADIUS, y - _RADIUS, x + _RADIUS, y + _RADIUS), fill=fill)
    elif shape == "triangle":
        draw.polygon([(x, y - _RADIUS), (x + _RADIUS, y + _RADIUS), (x - _RADIUS, y + _RADIUS)], fill=fill)
    else:
        raise ValueError(f"shape must be one of {FIRST_TRY_SHAPES}, got {shape!r}")


def _box(hidden: bool) -> tuple[int, int, int, int]:
    """The box `(left, top, right, bottom)`: over the shape's right half, or beside it (6 px from its right edge)."""
    x, y = _CENTRE
    left = x if hidden else x + _RADIUS + 6
    return left, y - _RADIUS - 25, left + 85, y + _RADIUS + 25


def first_try_scene(shape: str, hidden: bool = True) -> FirstTryScene:
    """`shape` ("disc", "square" or "triangle") with a box over its right half (`hidden`) or beside it."""
    image = Image.new("RGB", IMAGE_SIZE, _BACKGROUND)
    amodal = Image.new("L", IMAGE_SIZE, 0)
    box = Image.new("L", IMAGE_SIZE, 0)
    _drawn(ImageDraw.Draw(image), shape, _SHAPE_COLOUR)
    _drawn(ImageDraw.Draw(amodal), shape, 255)
    ImageDraw.Draw(image).rectangle(_box(hidden), fill=_BOX_COLOUR)
    ImageDraw.Draw(box).rectangle(_box(hidden), fill=255)
    amodal_mask = np.asarray(amodal) > 0
    return FirstTryScene(shape, hidden, np.asarray(image), amodal_mask & ~(np.asarray(box) > 0), amodal_mask)


def first_try_scenes() -> list[FirstTryScene]:
    """Every shape half hidden, then every shape with the box beside it."""
    return [first_try_scene(shape, hidden) for hidden in (True, False) for shape in FIRST_TRY_SHAPES]


def score_first_try(scene: FirstTryScene, pred_amodal_mask: np.ndarray) -> FirstTryResult:
    """The numbers of a predicted amodal mask `(H, W)` bool for `scene`."""
    return FirstTryResult(
        scene.shape,
        scene.hidden,
        bool_iou(pred_amodal_mask, scene.amodal_mask),
        bool_occluded_iou(pred_amodal_mask, scene.amodal_mask, scene.visible_mask),
        bool_invented_area(pred_amodal_mask, scene.amodal_mask),
    )


def run_first_try(segmenter, seed: int = 0, **options) -> list[FirstTryResult]:
    """Segment every `first_try_scenes` scene with an `amodal-segmentation` pipeline and score it; `options` go to
    each call (e.g. `num_steps`, `greedy`, `mask_threshold`)."""
    results = []
    for scene in first_try_scenes():
        (result,) = segmenter(scene.image, visible_masks=[scene.visible_mask], seed=seed, **options)
        results.append(score_first_try(scene, np.asarray(result["amodal_mask"]) > 0))
    return results


def results_table(results: list[FirstTryResult]) -> str:
    """A Markdown table of `results`, IoUs and invented areas in percent."""
    lines = ["| shape | box | IoU_full | IoU_occ | invented area |", "|---|---|---:|---:|---:|"]
    for item in results:
        occ = "n/a" if item.iou_occ is None else f"{100 * item.iou_occ:.1f}"
        box = "over its right half" if item.hidden else "beside it"
        lines.append(f"| {item.shape} | {box} | {100 * item.iou_full:.1f} | {occ} | {100 * item.invented_area:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m c2f_hf.evaluation.first_try [--model M] [--seed S] [--greedy] [--json]`."""
    from transformers import pipeline

    from ..checkpoints import default_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="folder or Hub id (default: the shipped default model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--greedy", action="store_true", help="argmax decoding instead of seeded sampling")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    segmenter = pipeline("amodal-segmentation", model=args.model or str(default_model_path()))
    results = run_first_try(segmenter, seed=args.seed, **({"greedy": True} if args.greedy else {}))
    print(json.dumps([asdict(item) for item in results], indent=2) if args.json else results_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
