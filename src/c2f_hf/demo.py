"""`c2f-hf demo`: the main job on the embedded default. It draws a held-out synthetic scene (test split of the
data seed the shipped model was trained with; `--seed` picks the scene and the sampling seed), runs the
`amodal-segmentation` pipeline with the shipped model on the visible masks of its objects, and writes

- `demo.png`, one figure to read at a glance: input | visible masks (given) | predicted amodal masks | true amodal
  masks, each object in its own colour and number, visible parts tinted, hidden parts hatched, with a legend that
  names each object and its IoU (`c2f_hf.visualization`, which the Space draws with too);
- `scene.png`, the input image;
- `results.json`, per object its category, true and predicted occlusion rates, score, IoU_full and IoU_occ;

and prints the same per-object table.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import PIL.Image
from PIL import ImageDraw
from transformers import pipeline

from .checkpoints import default_model_path
from .data.synthetic import SyntheticConfig, generate_scene, scene_rng
from .evaluation.metrics import iou, occluded_iou
from .visualization import amodal_legend_entries, draw_amodal_overlay, draw_legend, upscale

DATA_SEED = 0
PANEL_SIDE = 512
TITLE_HEIGHT = 28
PANEL_GAP = 8


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    """`panel` `(H, W, 3)` with `title` written on a white band of `TITLE_HEIGHT` pixels above it."""
    band = PIL.Image.new("RGB", (panel.shape[1], TITLE_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    draw.text((panel.shape[1] // 2, TITLE_HEIGHT // 2), title, fill=(0, 0, 0), anchor="mm", font_size=18)
    return np.concatenate([np.asarray(band), panel])


def demo_figure(
    image: np.ndarray,
    visible_masks: list[np.ndarray],
    predicted_masks: list[np.ndarray],
    true_masks: list[np.ndarray],
    object_names: list[str],
) -> np.ndarray:
    """`(h, w, 3)` uint8 figure: input | visible | predicted | ground truth, each panel `image` `(H, W, 3)` drawn
    with the `(H, W)` bool masks of every object and upscaled to about `PANEL_SIDE`, titled, with a legend of
    `object_names` (one per object) under it."""
    panels = [
        (image, "input"),
        (draw_amodal_overlay(image, visible_masks, visible_masks), "visible masks (given)"),
        (draw_amodal_overlay(image, visible_masks, predicted_masks), "predicted amodal masks"),
        (draw_amodal_overlay(image, visible_masks, true_masks), "ground truth amodal masks"),
    ]
    titled = [_titled(upscale(panel, PANEL_SIDE), title) for panel, title in panels]
    gap = np.full((titled[0].shape[0], PANEL_GAP, 3), 255, dtype=np.uint8)
    row = np.concatenate([part for panel in titled for part in (panel, gap)][:-1], axis=1)
    entries = amodal_legend_entries(len(object_names))
    entries[2:] = [(name, colour, kind) for name, (_, colour, kind) in zip(object_names, entries[2:])]
    return np.concatenate([row, draw_legend(row.shape[1], entries)])


def run_demo(model: str | Path, out: Path, seed: int = 0, greedy: bool = False) -> list[dict]:
    """Segment one synthetic scene; writes demo.png, scene.png and results.json into `out` and returns one dict
    per object (IoU against the true amodal mask included)."""
    scene = generate_scene(SyntheticConfig(), scene_rng(DATA_SEED, seed, "test"))
    segmenter = pipeline("amodal-segmentation", model=str(model), trust_remote_code=False)
    visible_masks = [scene_object.visible_mask for scene_object in scene.objects]
    predictions = segmenter(scene.image, visible_masks=visible_masks, seed=seed, greedy=greedy)
    amodal_masks = [np.asarray(prediction["amodal_mask"]) > 0 for prediction in predictions]
    results = [
        {
            "category": scene_object.category,
            "true_occlusion_rate": round(scene_object.occlusion_rate, 4),
            "predicted_occlusion_rate": round(prediction["occlusion_rate"], 4),
            "score": round(prediction["score"], 4),
            "iou_full": round(iou(predicted, scene_object.amodal_mask), 4),
            "iou_occ": occluded_iou(predicted, scene_object.amodal_mask, scene_object.visible_mask),
        }
        for scene_object, prediction, predicted in zip(scene.objects, predictions, amodal_masks)
    ]
    names = [f"{number} {result['category']}: IoU {result['iou_full']:.2f}" for number, result in enumerate(results, 1)]
    true_masks = [scene_object.amodal_mask for scene_object in scene.objects]
    out.mkdir(parents=True, exist_ok=True)
    figure = demo_figure(scene.image, visible_masks, amodal_masks, true_masks, names)
    PIL.Image.fromarray(figure).save(out / "demo.png")
    PIL.Image.fromarray(scene.image).save(out / "scene.png")
    (out / "results.json").write_text(json.dumps({"model": str(model), "seed": seed, "objects": results}, indent=2))
    return results


def _format_table(results: list[dict]) -> str:
    lines = ["object  category   occlusion  IoU_full  IoU_occ  score"]
    for number, result in enumerate(results, start=1):
        occluded = "n/a" if result["iou_occ"] is None else f"{result['iou_occ']:.3f}"
        lines.append(
            f"{number:>6}  {result['category']:<9}  {result['true_occlusion_rate']:>9.2f}  "
            f"{result['iou_full']:>8.3f}  {occluded:>7}  {result['score']:.3f}"
        )
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    model = args.model or default_model_path()
    out = Path(args.out)
    results = run_demo(model, out, seed=args.seed, greedy=args.greedy)
    print(_format_table(results))
    print(
        f"wrote {out / 'demo.png'} (input | visible | predicted | truth), scene.png and results.json (model: {model})"
    )
    return 0


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `demo` (its one-line help is `c2f_hf.cli.COMMANDS`')."""
    parser = subparsers.add_parser("demo")
    parser.add_argument("--model", help="model folder or Hub id (default: the shipped tiny model)")
    parser.add_argument("--out", default="outputs/demo", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="scene and sampling seed")
    parser.add_argument("--greedy", action="store_true", help="deterministic argmax decoding")
    parser.set_defaults(handler=_run)
