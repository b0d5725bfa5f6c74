"""Gradio demo of C2F-Seg amodal segmentation: paint the visible part of objects, get their full shapes.

One brush colour is one object. The model is loaded once (`load_segmenter`, cached) from the `C2F_HF_MODEL`
environment variable (a Hub repo written by `c2f-hf export`, or a local folder) or, without it, from the model
shipped in `c2f_hf`. Requests are queued and run on CPU.

`run_demo` holds the logic and raises `DemoInputError` with a readable message for bad input; `predict` is the
Gradio handler that turns those into `gr.Error` and the notes (downscaled or grayscale images) into `gr.Warning`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageFilter
from transformers import pipeline

try:
    import c2f_hf  # registers the "amodal-segmentation" task and the default model where the package is installed
except ModuleNotFoundError:  # a Space without the package loads a `c2f-hf export` repo with its own code
    c2f_hf = None

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_IMAGE_SIDE = 1024
MIN_OBJECT_PIXELS = 16
BRUSH_COLOURS = {
    "magenta": "#ff00ff",
    "sky blue": "#00bfff",
    "gold": "#ffd700",
    "orange": "#ff8c00",
    "violet": "#8a2be2",
    "white": "#ffffff",
}
VISIBLE_COLOUR = np.array([40, 200, 80], dtype=np.float32)
OCCLUDED_COLOUR = np.array([235, 40, 40], dtype=np.float32)
TABLE_HEADERS = ["object", "brush colour", "visible px", "amodal px", "occlusion rate (%)", "score"]
INSTRUCTIONS = f"""
# C2F-Seg: amodal segmentation

Paint over the **visible** part of an object and the model predicts its **full** shape, hidden parts included.

1. Upload an image (larger than {MAX_IMAGE_SIDE} px per side is scaled down) or click an example below.
2. Paint the visible part of each object. **One brush colour = one object**: for a second object pick another
   colour in the brush menu. The eraser removes strokes.
3. Press **Segment**. Green: the visible part you painted. Red: the hidden part the model predicts.
"""


class DemoInputError(ValueError):
    """Bad input, with a message meant for the user."""


@dataclass
class DemoOutput:
    """What one request produces: images `(H, W, 3)` uint8, one table row per object, and notes to show."""

    overlay: np.ndarray
    coarse: np.ndarray
    refined: np.ndarray
    rows: list[list]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def model_source() -> str:
    """`C2F_HF_MODEL` (Hub id or folder) or the folder of the model shipped in `c2f_hf`."""
    configured = os.environ.get("C2F_HF_MODEL")
    if configured:
        return configured
    if c2f_hf is None:
        raise RuntimeError("set C2F_HF_MODEL to a model repo made by `c2f-hf export`, or install c2f_hf")
    from c2f_hf.checkpoints import default_model_path

    return str(default_model_path())


@lru_cache(maxsize=1)
def load_segmenter():
    """The `amodal-segmentation` pipeline, loaded once per process."""
    return pipeline("amodal-segmentation", model=model_source(), trust_remote_code=True, device="cpu")


def _hex_to_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[index : index + 2], 16) for index in (1, 3, 5)], dtype=np.float32)


PALETTE = np.stack([_hex_to_rgb(colour) for colour in BRUSH_COLOURS.values()])


def _as_rgb(background: np.ndarray, notes: list[str]) -> np.ndarray:
    """`(H, W)`, `(H, W, 3)` or `(H, W, 4)` -> `(H, W, 3)` uint8; transparency over white; notes grayscale."""
    array = np.asarray(background)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise DemoInputError(f"Unsupported image: expected a colour or grayscale picture, got shape {array.shape}.")
    rgb = array[..., :3].astype(np.float32)
    if array.shape[2] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        rgb = rgb * alpha + 255.0 * (1.0 - alpha)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        notes.append("Grayscale image: used as RGB with three equal channels; the model was trained on colour images.")
    return rgb


def _painted_layer(editor_value: dict | None, shape: tuple[int, int]) -> np.ndarray:
    """The user's strokes as an `(H, W, 4)` RGBA layer of the image's size (transparent when nothing painted)."""
    layers = [layer for layer in (editor_value or {}).get("layers") or [] if layer is not None]
    if not layers:
        return np.zeros((*shape, 4), dtype=np.uint8)
    layer = np.asarray(layers[0])
    if layer.ndim != 3 or layer.shape[2] != 4:
        raise DemoInputError("The painted mask has no transparency channel; paint with the brush of the editor.")
    if layer.shape[:2] != shape:
        layer = np.asarray(Image.fromarray(layer, "RGBA").resize(shape[::-1], Image.NEAREST))
    return layer


def _downscale(image: np.ndarray, layer: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    height, width = image.shape[:2]
    scale = MAX_IMAGE_SIDE / max(height, width)
    if scale >= 1.0:
        return image, layer
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    notes.append(
        f"Large image: {width}x{height} pixels scaled down to {size[0]}x{size[1]} (limit {MAX_IMAGE_SIDE} px per "
        "side); results are shown at the smaller size."
    )
    image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    layer = np.asarray(Image.fromarray(layer, "RGBA").resize(size, Image.NEAREST))
    return image, layer


def read_editor(editor_value: dict | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`gr.ImageMask` value -> (image `(H, W, 3)` uint8, painted RGBA layer `(H, W, 4)`, notes)."""
    background = (editor_value or {}).get("background")
    if background is None:
        raise DemoInputError("No image: upload an image or click one of the examples first.")
    notes: list[str] = []
    image = _as_rgb(background, notes)
    if min(image.shape[:2]) < 8:
        raise DemoInputError(f"Image too small: {image.shape[1]}x{image.shape[0]} pixels; use at least 8x8.")
    layer = _painted_layer(editor_value, image.shape[:2])
    image, layer = _downscale(image, layer, notes)
    return image, layer, notes


def objects_from_layer(layer: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """One `(brush colour name, (H, W) bool visible mask)` per brush colour painted with at least
    `MIN_OBJECT_PIXELS` pixels, in palette order. Every painted pixel goes to the nearest palette colour."""
    painted = layer[..., 3] > 0
    if not painted.any():
        raise DemoInputError(
            "No visible mask painted: paint over the visible part of at least one object, then press Segment."
        )
    distances = ((layer[..., :3].astype(np.float32)[..., None, :] - PALETTE) ** 2).sum(axis=-1)
    nearest = distances.argmin(axis=-1)
    objects = []
    for index, name in enumerate(BRUSH_COLOURS):
        mask = painted & (nearest == index)
        if mask.sum() >= MIN_OBJECT_PIXELS:
            objects.append((name, mask))
    if not objects:
        raise DemoInputError(
            f"The painted strokes are too small (under {MIN_OBJECT_PIXELS} pixels per colour); paint a larger area."
        )
    return objects


def _outline(mask: np.ndarray) -> np.ndarray:
    eroded = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(5))) > 0
    return mask & ~eroded


def _blend(image: np.ndarray, mask: np.ndarray, colour: np.ndarray, alpha: float) -> None:
    image[mask] = (1.0 - alpha) * image[mask] + alpha * colour


def render_overlay(image: np.ndarray, objects: list[tuple[str, np.ndarray]], results: list[dict]) -> np.ndarray:
    """The image with each object's visible part in green, its predicted hidden part in red, and its amodal
    mask outlined in its brush colour."""
    canvas = image.astype(np.float32)
    for result in results:
        _blend(canvas, np.asarray(result["occluded_mask"]) > 0, OCCLUDED_COLOUR, 0.6)
    for _, visible in objects:
        _blend(canvas, visible, VISIBLE_COLOUR, 0.45)
    for (name, visible), result in zip(objects, results):
        canvas[_outline((np.asarray(result["amodal_mask"]) > 0) | visible)] = _hex_to_rgb(BRUSH_COLOURS[name])
    return canvas.astype(np.uint8)


def render_masks(image: np.ndarray, objects: list[tuple[str, np.ndarray]], masks: list[np.ndarray]) -> np.ndarray:
    """The dimmed image with each `(H, W)` bool mask filled in its object's brush colour."""
    canvas = image.astype(np.float32) * 0.45
    for (name, _), mask in zip(objects, masks):
        _blend(canvas, mask, _hex_to_rgb(BRUSH_COLOURS[name]), 0.75)
    return canvas.astype(np.uint8)


def _table_rows(objects: list[tuple[str, np.ndarray]], results: list[dict]) -> list[list]:
    rows = []
    for index, ((name, visible), result) in enumerate(zip(objects, results)):
        amodal = np.asarray(result["amodal_mask"]) > 0
        rate = round(100.0 * result["occlusion_rate"], 1)
        rows.append([index + 1, name, int(visible.sum()), int(amodal.sum()), rate, round(result["score"], 3)])
    return rows


def run_demo(editor_value: dict | None, num_steps: int, seed: int, threshold: float) -> DemoOutput:
    """Segment every painted object of the editor's image; raises DemoInputError for bad input."""
    image, layer, notes = read_editor(editor_value)
    objects = objects_from_layer(layer)
    segmenter = load_segmenter()
    start = time.perf_counter()
    results = segmenter(
        image,
        visible_masks=[mask for _, mask in objects],
        num_steps=int(num_steps),
        seed=int(seed),
        threshold=float(threshold),
        return_coarse=True,
        batch_size=len(objects),
    )
    seconds = time.perf_counter() - start
    coarse = [np.asarray(result["coarse_amodal_mask"]) > 0 for result in results]
    refined = [np.asarray(result["amodal_mask"]) > 0 for result in results]
    return DemoOutput(
        overlay=render_overlay(image, objects, results),
        coarse=render_masks(image, objects, coarse),
        refined=render_masks(image, objects, refined),
        rows=_table_rows(objects, results),
        notes=notes,
        seconds=seconds,
    )


def predict(editor_value: dict | None, num_steps: int, seed: int, threshold: float):
    """Gradio handler: (overlay, coarse, refined, table, status). Bad input becomes a `gr.Error` message."""
    try:
        output = run_demo(editor_value, num_steps, seed, threshold)
    except DemoInputError as error:
        raise gr.Error(str(error)) from error
    for note in output.notes:
        gr.Warning(note)
    count = len(output.rows)
    plural = "s" if count > 1 else ""
    summary = f"{count} object{plural} in {output.seconds:.2f} s ({output.seconds / count:.2f} s per object)."
    status = "\n\n".join([summary, *output.notes])
    return output.overlay, output.coarse, output.refined, output.rows, status


def example_rows() -> list[list]:
    """`[editor value, K, seed, threshold]` for every `NAME.png` + `NAME_mask.png` pair in `examples/`."""
    rows = []
    for mask_path in sorted(EXAMPLES_DIR.glob("*_mask.png")):
        image_path = mask_path.with_name(mask_path.name.replace("_mask.png", ".png"))
        editor_value = {"background": str(image_path), "layers": [str(mask_path)], "composite": str(image_path)}
        rows.append([editor_value, 3, 0, 0.5])
    return rows


def build_demo() -> gr.Blocks:
    """The Blocks app (queued; one request at a time, since the CPU is the bottleneck)."""
    brush = gr.Brush(colors=list(BRUSH_COLOURS.values()), default_color=BRUSH_COLOURS["magenta"], color_mode="fixed")
    with gr.Blocks(title="C2F-Seg amodal segmentation") as demo:
        gr.Markdown(INSTRUCTIONS)
        with gr.Row():
            with gr.Column(scale=3):
                editor = gr.ImageMask(
                    label="Image: paint the visible part of each object (one colour per object)",
                    type="numpy",
                    image_mode="RGBA",
                    format="png",
                    brush=brush,
                    sources=["upload", "clipboard"],
                    elem_id="editor",
                )
            with gr.Column(scale=2):
                num_steps = gr.Slider(1, 8, value=3, step=1, label="MaskGIT steps K")
                seed = gr.Number(value=0, precision=0, label="Seed (same seed, same result)")
                threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Mask threshold")
                segment = gr.Button("Segment", variant="primary", elem_id="segment")
                status = gr.Markdown(elem_id="status")
        with gr.Row():
            overlay = gr.Image(label="Amodal mask: visible (green) and hidden (red)", elem_id="overlay", format="png")
            coarse = gr.Image(label="Coarse mask (VQ decoder)", elem_id="coarse", format="png")
            refined = gr.Image(label="Refined amodal mask", elem_id="refined", format="png")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Objects", interactive=False, elem_id="objects")
        inputs = [editor, num_steps, seed, threshold]
        gr.Examples(example_rows(), inputs=inputs, label="Examples (visible masks already painted)")
        segment.click(predict, inputs=inputs, outputs=[overlay, coarse, refined, table, status], api_name="segment")
    return demo.queue(default_concurrency_limit=1)


demo = build_demo()

if __name__ == "__main__":
    load_segmenter()
    demo.launch()
