"""`c2f-hf demo`: the main job on the embedded default. It draws a held-out synthetic scene (test split of the
data seed the shipped model was trained with; `--seed` picks the scene and the sampling seed), runs the
`amodal-segmentation` pipeline with the shipped model on the visible masks of its objects, writes the image, an
overlay (`visualization.draw_amodal_overlay`: visible part green, predicted occluded part red) and a JSON of
per-object results, and prints a table comparing each prediction with the true amodal mask."""

import argparse
import json
from pathlib import Path

import numpy as np
import PIL.Image
from transformers import pipeline

from .checkpoints import default_model_path
from .data.synthetic import SyntheticConfig, generate_scene, scene_rng
from .evaluation import iou, occluded_iou
from .visualization import draw_amodal_overlay

DATA_SEED = 0


def run_demo(model: str | Path, out: Path, seed: int = 0, greedy: bool = False) -> list[dict]:
    """Segment one synthetic scene; returns one dict per object (IoU against the true amodal mask included)."""
    scene = generate_scene(SyntheticConfig(), scene_rng(DATA_SEED, seed, "test"))
    segmenter = pipeline("amodal-segmentation", model=str(model), trust_remote_code=False)
    visible_masks = [scene_object.visible_mask for scene_object in scene.objects]
    predictions = segmenter(scene.image, visible_masks=visible_masks, seed=seed, greedy=greedy)
    out.mkdir(parents=True, exist_ok=True)
    amodal_masks = [np.asarray(prediction["amodal_mask"]) > 0 for prediction in predictions]
    PIL.Image.fromarray(scene.image).save(out / "scene.png")
    PIL.Image.fromarray(draw_amodal_overlay(scene.image, visible_masks, amodal_masks)).save(out / "overlay.png")
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
    (out / "results.json").write_text(json.dumps({"model": str(model), "seed": seed, "objects": results}, indent=2))
    return results


def _format_table(results: list[dict]) -> str:
    lines = ["object  category   occlusion  IoU_full  IoU_occ  score"]
    for index, result in enumerate(results):
        occluded = "n/a" if result["iou_occ"] is None else f"{result['iou_occ']:.3f}"
        lines.append(
            f"{index:>6}  {result['category']:<9}  {result['true_occlusion_rate']:>9.2f}  "
            f"{result['iou_full']:>8.3f}  {occluded:>7}  {result['score']:.3f}"
        )
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    model = args.model or default_model_path()
    results = run_demo(model, Path(args.out), seed=args.seed, greedy=args.greedy)
    print(_format_table(results))
    print(f"wrote {Path(args.out) / 'scene.png'}, overlay.png and results.json (model: {model})")
    return 0


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="segment a synthetic scene with the shipped model")
    parser.add_argument("--model", help="model folder or Hub id (default: the shipped tiny model)")
    parser.add_argument("--out", default="outputs/demo", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="scene and sampling seed")
    parser.add_argument("--greedy", action="store_true", help="deterministic argmax decoding")
    parser.set_defaults(handler=_run)
