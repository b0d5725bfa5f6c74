"""Gradio demo of C2F-Seg amodal segmentation: give the visible part of objects, get their full shapes.

Image tab. The visible masks live in the editor (`gr.ImageMask`): one brush colour is one object, numbered in
palette order (`c2f_hf.visualization.OBJECT_COLOURS`). With a SAM model configured (`C2F_HF_SAM_MODEL`, a Hub id
or folder, served through the pipeline's `visible_mask_model`), clicks and boxes on the prompt image give an
object's visible mask, written into the editor in its colour; painting adds to it or corrects it. One click on an
example loads its image and visible masks into the editor and shows the finished result. Results: a before/after
slider over the image (visible part tinted, hidden part hatched, each object outlined and numbered), the coarse
(VQ) and refined masks side by side, and a table whose columns add up (amodal = visible + hidden).

Video tab. A clip as a PNG film strip (frames side by side) or an animated GIF / APNG / WebP, plus a mask strip
of the same layout: each object's visible part painted in its colour of the palette on black (or a grayscale
label strip, value k = object k). There is no video tracker, so every frame needs its masks.

Models are loaded once (`load_segmenter`, `load_video_segmenter`) from `C2F_HF_MODEL` / `C2F_HF_VIDEO_MODEL` (a Hub
repo written by `c2f-hf export`, or a folder), else the models shipped in `c2f_hf`. Requests are queued and run
on CPU. A user's mistake (no image, nothing painted, a bad strip) is a `DemoInputError`: its message goes to the
status area, where it stays until the next action, and to the server log as one line.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw
from transformers import pipeline

import c2f_hf  # noqa: F401  (registers the pipelines)
from c2f_hf.checkpoints import default_model_path, default_video_model_path
from c2f_hf.cpu_memory import reuse_freed_memory
from c2f_hf.models.c2f_seg.image_processing_c2f_seg import load_rgb_image
from c2f_hf.models.c2f_seg.video_processing_c2f_seg import frames_from_file
from c2f_hf.visualization import OBJECT_COLOURS, draw_amodal_overlay, draw_filled_masks

logger = logging.getLogger("c2f_seg_space")

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
VIDEO_EXAMPLES_DIR = EXAMPLES_DIR / "video"
PAPER_URL = "https://arxiv.org/abs/2308.16825"
AUTHORS_CODE_URL = "https://github.com/amazon-science/c2f-seg"
SHIPPED_MODEL_CARD_URL = "https://huggingface.co/c2f-hf/c2f-seg-synthetic-tiny"
MAX_IMAGE_SIDE = 1024
MAX_VIDEO_FRAMES = 32
MIN_OBJECT_PIXELS = 16
COLOUR_NAMES = [name for name, _ in OBJECT_COLOURS]
COLOURS = np.array([colour for _, colour in OBJECT_COLOURS], dtype=np.float32)
CLICK_MODES = ["point on the object", "point on the background", "box: two opposite corners"]
TABLE_HEADERS = ["#", "visible", "hidden", "amodal", "occl. %", "score"]
VIDEO_TABLE_HEADERS = ["#", "frame", "visible", "hidden", "amodal", "occl. %", "score"]
TABLE_HELP = (
    "**#**: the object's number and colour; areas in pixels. **visible**: the visible mask given (painted, from "
    "SAM or an example); **hidden**: the pixels the model adds (its prediction of the hidden part); **amodal** = "
    "visible + hidden, the whole shape; **occl. %** = hidden / amodal; **score**: the model's mean token confidence "
    "(0 to 1), not a measured accuracy."
)
LEGEND_HTML = """
<div class="legend">
  <span><i class="swatch tint"></i>visible part (input): light tint</span>
  <span><i class="swatch hatch"></i>hidden part (predicted): hatched</span>
  <span><i class="swatch outline"></i>outline: whole predicted shape</span>
  <span>colour and number: one object</span>
</div>
"""
CSS = """
.legend {display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 0.9em; margin: 4px 0;}
.legend .swatch {display: inline-block; width: 1.1em; height: 1.1em; margin-right: 5px; vertical-align: -0.2em;
  border: 2px solid #ff00ff; box-sizing: border-box;}
.legend .tint {background: rgba(255, 0, 255, 0.35);}
.legend .hatch {background: repeating-linear-gradient(45deg, #ff00ff 0 3px, #222 3px 6px);}
.legend .outline {background: transparent;}
.chip {display: inline-block; padding: 0 6px; margin: 1px 2px; border-radius: 4px; color: #000; font-weight: 600;
  border: 1px solid #555;}
#status {min-height: 2.5em;}
.caption p {margin: 0 !important;}
#video_overlays .grid-wrap {height: auto !important; max-height: none !important;}
#video_overlays .grid-container {grid-template-columns: repeat(4, minmax(0, 1fr)) !important;}
@media (max-width: 600px) {
  #objects th, #objects td, #tracks th, #tracks td {padding: 2px 3px !important;}
  #objects .cell-wrap, #tracks .cell-wrap {padding: 2px !important;}
  #objects th *, #objects .cell-wrap *, #tracks th *, #tracks .cell-wrap * {font-size: 11px !important;}
}
.problem {background: #fff3cd; color: #5c4400; border-left: 4px solid #e0a800; padding: 6px 10px; border-radius: 4px;}
"""


class DemoInputError(ValueError):
    """Bad input, with a message meant for the user."""


@dataclass
class DemoOutput:
    """What one image request produces: the image and overlay `(H, W, 3)` uint8, the coarse and refined masks
    drawn `(H, W, 3)` uint8, one table row per object, the objects' numbers, and notes to show."""

    image: np.ndarray
    overlay: np.ndarray
    coarse: np.ndarray
    refined: np.ndarray
    rows: list[list]
    numbers: list[int]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class VideoDemoOutput:
    """What one video request produces: one `(H, W, 3)` uint8 overlay per frame, one table row per object and
    frame, and the seconds the model took."""

    overlays: list[np.ndarray]
    rows: list[list]
    seconds: float = 0.0


def _configured_or_shipped(variable: str, video: bool) -> str:
    """The Hub id or folder in environment variable `variable`, else the folder of the matching shipped model."""
    configured = os.environ.get(variable)
    if configured:
        return configured
    return str(default_video_model_path() if video else default_model_path())


def model_source() -> str:
    """`C2F_HF_MODEL` (Hub id or folder) or the folder of the model shipped in `c2f_hf`."""
    return _configured_or_shipped("C2F_HF_MODEL", video=False)


def video_model_source() -> str:
    """`C2F_HF_VIDEO_MODEL` (Hub id or folder) or the folder of the video model shipped in `c2f_hf`."""
    return _configured_or_shipped("C2F_HF_VIDEO_MODEL", video=True)


# Read once at start: the layout (prompt image or not) is built from it.
SAM_MODEL_SOURCE = os.environ.get("C2F_HF_SAM_MODEL") or None


def sam_model_source() -> str | None:
    """`C2F_HF_SAM_MODEL` as it was at start (a SAM Hub id such as facebook/sam-vit-base, or a folder), or None:
    painting only."""
    return SAM_MODEL_SOURCE


def model_card_url() -> str:
    """Where the image model's card is: its Hub page for a Hub id, else the shipped model's Hub repo."""
    source = model_source()
    if os.environ.get("C2F_HF_MODEL") and not Path(source).exists():
        return f"https://huggingface.co/{source}"
    return SHIPPED_MODEL_CARD_URL


@lru_cache(maxsize=1)
def load_segmenter():
    """The `amodal-segmentation` pipeline (with SAM as its visible-mask source when configured), loaded once, its
    model converted with `optimize_for_cpu()`."""
    segmenter = pipeline(
        "amodal-segmentation",
        model=model_source(),
        trust_remote_code=True,
        device="cpu",
        visible_mask_model=sam_model_source(),
    )
    segmenter.model.optimize_for_cpu()
    return segmenter


@lru_cache(maxsize=1)
def load_video_segmenter():
    """The `video-amodal-segmentation` pipeline, loaded once per process, its model converted with
    `optimize_for_cpu()`."""
    segmenter = pipeline("video-amodal-segmentation", model=video_model_source(), trust_remote_code=True, device="cpu")
    segmenter.model.optimize_for_cpu()
    return segmenter


def default_settings() -> tuple[int, float]:
    """The image model's own defaults: MaskGIT steps K (`config.num_sampling_steps`) and its processor's mask
    threshold. The controls and the examples start there."""
    segmenter = load_segmenter()
    return int(segmenter.model.config.num_sampling_steps), float(segmenter.image_processor.mask_threshold)


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def problem(message: str) -> str:
    """Log a user's mistake as one line and return it as status Markdown."""
    logger.warning("input problem: %s", message)
    return f'<div class="problem">⚠ {message}</div>'


def object_chip(number: int) -> str:
    """HTML: "object `number`" on a background of its colour."""
    return f'<span class="chip" style="background:{_hex(OBJECT_COLOURS[number - 1][1])}">{number}</span>'


# ---- reading images and masks -------------------------------------------------------------------------------------


def prepare_image(array: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Any image array -> (`(H, W, 3)` uint8 RGB at most `MAX_IMAGE_SIDE` per side, notes for the user)."""
    notes: list[str] = []
    try:
        rgb = load_rgb_image(np.asarray(array))
    except ValueError as error:
        raise DemoInputError(f"Unsupported image: {str(error).split(': ', 1)[-1]}.") from error
    if min(rgb.shape[:2]) < 8:
        raise DemoInputError(f"Image too small: {rgb.shape[1]}x{rgb.shape[0]} pixels; use at least 8x8.")
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        notes.append("Grayscale image: used as RGB with three equal channels; the model was trained on colour images.")
    height, width = rgb.shape[:2]
    scale = MAX_IMAGE_SIDE / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        notes.append(
            f"Large image: {width}x{height} pixels scaled down to {size[0]}x{size[1]} (limit {MAX_IMAGE_SIDE} px per "
            "side); results are shown at the smaller size."
        )
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    return rgb, notes


def _resized_layer(layer: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An RGBA layer `(h, w, 4)` resized (nearest) to `shape` `(H, W)`."""
    if layer.shape[:2] == shape:
        return layer
    return np.asarray(Image.fromarray(layer, "RGBA").resize(shape[::-1], Image.NEAREST))


def painted_layer(editor_value: dict | None, shape: tuple[int, int]) -> np.ndarray:
    """The editor's strokes as one `(H, W, 4)` RGBA layer of the image's size (later layers drawn over earlier
    ones; transparent when nothing is painted)."""
    merged = np.zeros((*shape, 4), dtype=np.uint8)
    for layer in (editor_value or {}).get("layers") or []:
        if layer is None:
            continue
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4:
            raise DemoInputError("The painted mask has no transparency channel; paint with the brush of the editor.")
        layer = _resized_layer(layer, shape)
        merged[layer[..., 3] > 0] = layer[layer[..., 3] > 0]
    return merged


def read_editor(editor_value: dict | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`gr.ImageMask` value -> (image `(H, W, 3)` uint8, painted RGBA layer `(H, W, 4)`, notes)."""
    background = (editor_value or {}).get("background")
    if background is None:
        raise DemoInputError("No image: upload an image or click one of the examples first.")
    image, notes = prepare_image(background)
    return image, painted_layer(editor_value, np.asarray(background).shape[:2]), notes


def nearest_colour_labels(rgb: np.ndarray) -> np.ndarray:
    """`(H, W)` int: for every pixel of `(H, W, 3)` the number (1, 2, ...) of the nearest palette colour."""
    distances = ((rgb.astype(np.float32)[..., None, :] - COLOURS) ** 2).sum(axis=-1)
    return distances.argmin(axis=-1) + 1


def masks_from_layer(layer: np.ndarray) -> dict[int, np.ndarray]:
    """Object number -> `(H, W)` bool visible mask, for every palette colour painted on the RGBA `layer`."""
    painted = layer[..., 3] > 0
    labels = np.where(painted, nearest_colour_labels(layer[..., :3]), 0)
    return {int(number): labels == number for number in np.unique(labels) if number > 0}


def objects_from_layer(layer: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """One `(object number, (H, W) bool visible mask)` per colour painted with at least `MIN_OBJECT_PIXELS`
    pixels, in number order. Raises DemoInputError when there is none."""
    masks = masks_from_layer(layer)
    if not masks:
        raise DemoInputError(
            "No visible mask: paint over the visible part of at least one object (or click it, with SAM), then "
            "press Segment."
        )
    objects = [(number, mask) for number, mask in sorted(masks.items()) if mask.sum() >= MIN_OBJECT_PIXELS]
    if not objects:
        raise DemoInputError(
            f"The painted strokes are too small (under {MIN_OBJECT_PIXELS} pixels per colour); paint a larger area."
        )
    return objects


def layer_from_masks(masks: dict[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """`(H, W, 4)` RGBA layer with object k's `(H, W)` bool mask opaque in its palette colour."""
    layer = np.zeros((*shape, 4), dtype=np.uint8)
    for number, mask in sorted(masks.items()):
        layer[mask] = (*OBJECT_COLOURS[number - 1][1], 255)
    return layer


def composite(image: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8: the RGBA `layer` drawn at 60% over `image` (what the editor shows)."""
    alpha = (layer[..., 3:] > 0) * 0.6
    return (image * (1 - alpha) + layer[..., :3] * alpha).round().astype(np.uint8)


def brush_size(shape: tuple[int, int]) -> int:
    """Brush radius in pixels for an image of `shape` `(H, W)`: about 1/60 of its shorter side."""
    return max(2, round(min(shape) / 60))


def brush_for(shape: tuple[int, int] | None) -> gr.Brush:
    """The editor's brush: the object colours only, sized for an image of `shape` (gradio's auto size without)."""
    return gr.Brush(
        colors=[_hex(colour) for _, colour in OBJECT_COLOURS],
        default_color=_hex(OBJECT_COLOURS[0][1]),
        color_mode="fixed",
        default_size=brush_size(shape) if shape else "auto",
    )


def editor_update(image: np.ndarray, layer: np.ndarray) -> dict:
    """Update of the editor: `image` with the visible masks of `layer` (its `value`, as the handlers receive it),
    the brush sized for it (`brush`)."""
    value = {"background": image, "layers": [layer], "composite": composite(image, layer)}
    return gr.update(value=value, brush=brush_for(image.shape[:2]))


# ---- SAM prompts ----------------------------------------------------------------------------------------------------


def empty_prompts() -> dict:
    """Prompt state: per object number its points, labels and box; the object being prompted; a box corner."""
    return {"objects": {}, "current": 1, "corner": None}


def sam_mask(image: np.ndarray, prompt: dict) -> np.ndarray:
    """The `(H, W)` bool visible mask SAM gives for one object's prompt (`points`, `labels`, `box`)."""
    arguments = {}
    if prompt["points"]:
        arguments["input_points"], arguments["input_labels"] = [prompt["points"]], [prompt["labels"]]
    if prompt["box"]:
        arguments["input_boxes"] = [prompt["box"]]
    try:
        return load_segmenter().visible_mask_source(Image.fromarray(image), **arguments)[0].mask
    except ValueError as error:
        raise DemoInputError(f"SAM found no mask for this prompt ({str(error).split(': ', 1)[-1]}).") from error


def add_click(prompts: dict, mode: str, x: int, y: int) -> bool:
    """Record a click at pixel `(x, y)` for the current object in `prompts`; True when the object now has a
    prompt SAM can run (a point, or a box after its second corner)."""
    prompt = prompts["objects"].setdefault(str(prompts["current"]), {"points": [], "labels": [], "box": None})
    if mode == CLICK_MODES[2]:
        if prompts["corner"] is None:
            prompts["corner"] = [x, y]
            return bool(prompt["points"])
        (x0, y0), prompts["corner"] = prompts["corner"], None
        prompt["box"] = [min(x0, x), min(y0, y), max(x0, x) + 1, max(y0, y) + 1]
        return True
    prompt["points"].append([x, y])
    prompt["labels"].append(1 if mode == CLICK_MODES[0] else 0)
    return any(prompt["labels"]) or prompt["box"] is not None


def draw_prompts(image: np.ndarray, layer: np.ndarray, prompts: dict) -> np.ndarray:
    """`(H, W, 3)` uint8: the image with the editor's visible masks drawn in their colours (`composite`), each
    object's points (its colour: on the object, black: background), boxes, and a pending box corner as a cross."""
    picture = Image.fromarray(composite(image, layer))
    draw = ImageDraw.Draw(picture)
    radius = max(4, min(image.shape[:2]) // 60)
    for number, prompt in prompts["objects"].items():
        colour = OBJECT_COLOURS[int(number) - 1][1]
        if prompt["box"]:
            draw.rectangle(prompt["box"], outline=colour, width=max(2, radius // 2))
        for (x, y), label in zip(prompt["points"], prompt["labels"]):
            box = (x - radius, y - radius, x + radius, y + radius)
            draw.ellipse(box, fill=colour if label else (0, 0, 0), outline=(255, 255, 255), width=2)
    if prompts["corner"]:
        x, y = prompts["corner"]
        draw.line((x - 2 * radius, y, x + 2 * radius, y), fill=(255, 255, 255), width=2)
        draw.line((x, y - 2 * radius, x, y + 2 * radius), fill=(255, 255, 255), width=2)
    return np.asarray(picture)


# ---- image requests -------------------------------------------------------------------------------------------------


def _as_bool(mask) -> np.ndarray:
    return np.asarray(mask) > 0


def table_rows(numbers: list[int], results: list[dict]) -> list[list]:
    """One row per object from the pipeline's results: visible, hidden (occluded) and amodal pixel counts of the
    same masks, the occlusion rate (%) and the score."""
    rows = []
    for number, result in zip(numbers, results):
        visible, hidden = _as_bool(result["visible_mask"]), _as_bool(result["occluded_mask"])
        amodal = _as_bool(result["amodal_mask"])
        rate = round(100.0 * result["occlusion_rate"], 1)
        rows.append([number, int(visible.sum()), int(hidden.sum()), int(amodal.sum()), rate, round(result["score"], 2)])
    return rows


def run_demo(editor_value: dict | None, num_steps: int, seed: int, threshold: float) -> DemoOutput:
    """Segment every object painted in the editor; raises DemoInputError for bad input."""
    image, layer, notes = read_editor(editor_value)
    objects = objects_from_layer(_resized_layer(layer, image.shape[:2]))
    segmenter = load_segmenter()
    start = time.perf_counter()
    results = segmenter(
        image,
        visible_masks=[mask for _, mask in objects],
        num_steps=int(num_steps),
        seed=int(seed),
        mask_threshold=float(threshold),
        union_with_visible=True,
        return_coarse=True,
        batch_size=len(objects),
    )
    seconds = time.perf_counter() - start
    numbers = [number for number, _ in objects]
    colours = [OBJECT_COLOURS[number - 1][1] for number in numbers]
    visibles = [_as_bool(result["visible_mask"]) for result in results]
    refined = [_as_bool(result["amodal_mask"]) for result in results]
    return DemoOutput(
        image=image,
        overlay=draw_amodal_overlay(image, visibles, refined, colours),
        coarse=draw_filled_masks(image, [_as_bool(result["coarse_amodal_mask"]) for result in results], colours),
        refined=draw_filled_masks(image, refined, colours),
        rows=table_rows(numbers, results),
        numbers=numbers,
        notes=notes,
        seconds=seconds,
    )


def result_status(output: DemoOutput) -> str:
    """Status Markdown for a finished request: objects, time, what to look at, and the notes."""
    count = len(output.rows)
    chips = " ".join(object_chip(number) for number in output.numbers)
    summary = (
        f"Done: {count} object{'s' if count > 1 else ''} {chips} in {output.seconds:.2f} s. "
        "Hatched = hidden part the model predicts; drag the slider to compare with the input."
    )
    return "\n\n".join([summary, *output.notes])


def predict(editor_value: dict | None, num_steps: int, seed: int, threshold: float):
    """Gradio handler: (before/after pair, coarse, refined, table, status). A user's mistake empties the results
    and puts its message in the status."""
    try:
        output = run_demo(editor_value, num_steps, seed, threshold)
    except DemoInputError as error:
        return None, None, None, None, problem(str(error))
    slider = (output.image, output.overlay)
    return slider, output.coarse, output.refined, output.rows, result_status(output)


def load_image(picture: np.ndarray | None, current: np.ndarray | None):
    """Gradio handler for an upload: (prompt image, working image, editor, prompts, status). The image is
    scaled down at once, the editor gets it with no mask and a brush sized for it. Gradio also reports an upload
    when this app itself sets an image (an example, a SAM mask): the working image `current` coming back is no
    new image, and changes nothing."""
    if picture is None or (current is not None and np.array_equal(np.asarray(picture)[..., :3], current)):
        return (gr.skip(),) * 5
    try:
        image, notes = prepare_image(picture)
    except DemoInputError as error:
        return None, None, gr.skip(), empty_prompts(), problem(str(error))
    how = "click on an object (SAM) or paint it" if sam_model_source() else "paint its visible part"
    status = "\n\n".join(
        [f"Image loaded ({image.shape[1]}x{image.shape[0]}). For object {object_chip(1)}: {how}.", *notes]
    )
    empty = np.zeros((*image.shape[:2], 4), dtype=np.uint8)
    return image, image, editor_update(image, empty), empty_prompts(), status


def click_prompt(image: np.ndarray | None, prompts: dict, mode: str, editor_value: dict | None, event: gr.SelectData):
    """Gradio handler for a click on the prompt image: (prompt image, editor, prompts, status). Runs SAM for the
    current object once its prompt is complete and writes the mask into the editor in the object's colour."""
    if image is None:
        return gr.skip(), gr.skip(), prompts, problem("No image: upload one or click an example first.")
    x, y = (int(value) for value in event.index)
    number = prompts["current"]
    layer = _resized_layer(painted_layer(editor_value, image.shape[:2]), image.shape[:2])
    status = f"Object {object_chip(number)}: first corner set; click the opposite corner."
    if add_click(prompts, mode, x, y):
        try:
            mask = sam_mask(image, prompts["objects"][str(number)])
        except DemoInputError as error:
            return draw_prompts(image, layer, prompts), gr.skip(), prompts, problem(str(error))
        masks = {**masks_from_layer(layer), number: mask}
        layer = layer_from_masks(masks, image.shape[:2])
        status = (
            f"Object {object_chip(number)}: SAM mask of {int(mask.sum())} px. Click more points to refine it, "
            "press **Next object**, or **Segment**."
        )
    return draw_prompts(image, layer, prompts), editor_update(image, layer), prompts, status


def next_object(prompts: dict, editor_value: dict | None):
    """Gradio handler: (prompts, status) with the next free object number as the one being prompted."""
    layer = (editor_value or {}).get("layers") or []
    used = set(masks_from_layer(np.asarray(layer[0]))) if layer and layer[0] is not None else set()
    used |= {int(number) for number in prompts["objects"]}
    free = [number for number in range(1, len(OBJECT_COLOURS) + 1) if number not in used]
    if not free:
        return prompts, problem(f"At most {len(OBJECT_COLOURS)} objects; clear the objects to start again.")
    prompts = {**prompts, "current": free[0], "corner": None}
    return prompts, f"Object {object_chip(free[0])}: click on it."


def clear_objects(image: np.ndarray | None):
    """Gradio handler: (prompt image, editor, prompts, status) with every object removed."""
    if image is None:
        return gr.skip(), gr.skip(), empty_prompts(), "Nothing to clear."
    empty = np.zeros((*image.shape[:2], 4), dtype=np.uint8)
    return image, editor_update(image, empty), empty_prompts(), f"Objects cleared. Object {object_chip(1)} next."


def example_result(editor_value: dict | None):
    """Gradio handler of an example click: the example's image in the prompt image and the editor (with its
    visible masks), the controls back at the model's defaults, and the finished result."""
    num_steps, threshold = default_settings()
    try:
        image, layer, _ = read_editor(editor_value)
    except DemoInputError as error:
        return (gr.skip(),) * 7 + (None, None, None, None, problem(str(error)))
    layer = _resized_layer(layer, image.shape[:2])
    results = predict({"background": image, "layers": [layer]}, num_steps, 0, threshold)
    prompts = empty_prompts()
    prompts["current"] = max(masks_from_layer(layer), default=0) + 1
    return (
        draw_prompts(image, layer, prompts),
        image,
        editor_update(image, layer),
        prompts,
        num_steps,
        0,
        threshold,
        *results,
    )


# ---- video requests -------------------------------------------------------------------------------------------------


def _split_strip(strip: np.ndarray, num_frames: int, name: str) -> list[np.ndarray]:
    """A strip of `num_frames` equal frames side by side -> the frames (views into `strip`)."""
    height, width = strip.shape[:2]
    if width % num_frames:
        raise DemoInputError(
            f"The {name} is {width} pixels wide, which does not split into {num_frames} frames of equal width."
        )
    frame_width = width // num_frames
    if min(height, frame_width) < 8 or max(height, frame_width) > MAX_IMAGE_SIDE:
        raise DemoInputError(
            f"Frames of {frame_width}x{height} pixels: use between 8 and {MAX_IMAGE_SIDE} pixels per side."
        )
    return [strip[:, index * frame_width : (index + 1) * frame_width] for index in range(num_frames)]


def labels_from_mask_strip(mask_strip: np.ndarray) -> np.ndarray:
    """`(H, W)` int labels from a mask strip: a grayscale label strip (value k = object k) as it is, a colour
    strip (objects in their palette colours on black) by nearest palette colour for every non-black pixel."""
    strip = np.asarray(mask_strip)
    if strip.ndim == 3 and strip.shape[2] == 4:
        strip = strip[..., :3]
    gray = strip.ndim == 2 or (
        np.array_equal(strip[..., 0], strip[..., 1]) and np.array_equal(strip[..., 1], strip[..., 2])
    )
    if gray:
        labels = (strip if strip.ndim == 2 else strip[..., 0]).astype(np.int64)
        if labels.max() <= len(OBJECT_COLOURS):
            return labels
    coloured = np.atleast_3d(strip)[..., :3] if strip.ndim == 3 else np.repeat(strip[..., None], 3, axis=2)
    return np.where(coloured.max(axis=-1) > 60, nearest_colour_labels(coloured), 0)


def clip_frames(clip_file: str | None, frames_strip: np.ndarray | None, num_frames: int) -> list[np.ndarray]:
    """The clip's `(H, W, 3)` uint8 frames from an animated file (GIF, APNG, WebP) or else the film strip."""
    if clip_file:
        try:
            frames = [np.asarray(frame) for frame in frames_from_file(clip_file)]
        except ValueError as error:
            raise DemoInputError(f"Unreadable clip: {str(error).split(': ', 1)[-1]}.") from error
        if not 1 <= len(frames) <= MAX_VIDEO_FRAMES:
            raise DemoInputError(f"The clip has {len(frames)} frames; use 1 to {MAX_VIDEO_FRAMES}.")
        return frames
    if frames_strip is None:
        raise DemoInputError("No clip: upload a frames strip or an animated GIF, or click one of the example clips.")
    if not 1 <= num_frames <= MAX_VIDEO_FRAMES:
        raise DemoInputError(f"Number of frames: expected 1 to {MAX_VIDEO_FRAMES}, got {num_frames}.")
    return _split_strip(prepare_video_strip(frames_strip), num_frames, "frames strip")


def prepare_video_strip(strip: np.ndarray) -> np.ndarray:
    """A frames strip as `(H, W, 3)` uint8 RGB (no downscaling: frames must keep the mask strip's layout)."""
    try:
        return load_rgb_image(np.asarray(strip))
    except ValueError as error:
        raise DemoInputError(f"Unsupported frames strip: {str(error).split(': ', 1)[-1]}.") from error


def read_video_inputs(
    clip_file: str | None, frames_strip: np.ndarray | None, mask_strip: np.ndarray | None, num_frames: int
) -> tuple[list[np.ndarray], list[tuple[int, np.ndarray]]]:
    """(animated clip or film strip, mask strip, frame count of a strip) -> (frames `(H, W, 3)` uint8, one
    `(object number, (F, H, W) bool visible masks)` per object present, in number order)."""
    frames = clip_frames(clip_file, frames_strip, int(num_frames))
    if mask_strip is None:
        raise DemoInputError("No mask strip: upload the visible masks of every frame side by side (see above).")
    labels = labels_from_mask_strip(mask_strip)
    height, width = frames[0].shape[:2]
    if labels.shape != (height, width * len(frames)):
        raise DemoInputError(
            f"The mask strip is {labels.shape[1]}x{labels.shape[0]} pixels but {len(frames)} frames of "
            f"{width}x{height} need a {width * len(frames)}x{height} strip (frames side by side)."
        )
    label_frames = np.stack(_split_strip(labels, len(frames), "mask strip"))
    numbers = [int(value) for value in np.unique(label_frames) if value != 0]
    if not numbers:
        raise DemoInputError("The mask strip is empty: paint each object's visible part in its colour.")
    if max(numbers) > len(OBJECT_COLOURS):
        raise DemoInputError(f"The mask strip uses label {max(numbers)}; labels go from 1 to {len(OBJECT_COLOURS)}.")
    return frames, [(number, label_frames == number) for number in numbers]


def _segment_track(frames: list[np.ndarray], number: int, visible: np.ndarray, seed: int, greedy: bool) -> dict:
    """One object's video pipeline result for its `(F, H, W)` visible masks; the pipeline's complaints (e.g. hidden
    in a whole window) become a DemoInputError naming the object."""
    try:
        segmenter = load_video_segmenter()
        return segmenter(frames, visible_masks=[list(visible)], seed=seed, greedy=greedy, union_with_visible=True)[0]
    except ValueError as error:
        raise DemoInputError(f"Object {number}: {str(error).split(': ', 1)[-1]}.") from error


def _video_rows(objects: list[tuple[int, np.ndarray]], results: list[dict]) -> list[list]:
    """One row per object and frame: visible, hidden and amodal areas, occlusion rate (%) and the frame's score."""
    rows = []
    for (number, visible), result in zip(objects, results):
        for frame, visible_mask in enumerate(visible):
            amodal = _as_bool(result["amodal_masks"][frame])
            hidden = int((amodal & ~visible_mask).sum())
            rate = round(100.0 * result["occlusion_rates"][frame], 1)
            score = round(result["scores"][frame], 2)
            rows.append([number, frame, int(visible_mask.sum()), hidden, int(amodal.sum()), rate, score])
    return rows


def _video_overlays(
    frames: list[np.ndarray], objects: list[tuple[int, np.ndarray]], results: list[dict]
) -> list[np.ndarray]:
    """`draw_amodal_overlay` of every frame, from each object's `(F, H, W)` visible masks and per-frame results."""
    colours = [OBJECT_COLOURS[number - 1][1] for number, _ in objects]
    return [
        draw_amodal_overlay(
            image,
            [visible[frame] for _, visible in objects],
            [_as_bool(result["amodal_masks"][frame]) for result in results],
            colours,
        )
        for frame, image in enumerate(frames)
    ]


def run_video_demo(
    clip_file: str | None,
    frames_strip: np.ndarray | None,
    mask_strip: np.ndarray | None,
    num_frames: int,
    seed: int,
    greedy: bool,
) -> VideoDemoOutput:
    """Segment every object of a clip in every frame; raises DemoInputError for bad input."""
    frames, objects = read_video_inputs(clip_file, frames_strip, mask_strip, num_frames)
    load_video_segmenter()
    start = time.perf_counter()
    results = [_segment_track(frames, number, visible, int(seed), bool(greedy)) for number, visible in objects]
    seconds = time.perf_counter() - start
    return VideoDemoOutput(
        overlays=_video_overlays(frames, objects, results), rows=_video_rows(objects, results), seconds=seconds
    )


def predict_video(
    clip_file: str | None,
    frames_strip: np.ndarray | None,
    mask_strip: np.ndarray | None,
    num_frames: int,
    seed: int,
    greedy: bool,
):
    """Gradio handler: (gallery of per-frame overlays, table, status). A user's mistake empties the results and
    puts its message in the status."""
    try:
        output = run_video_demo(clip_file, frames_strip, mask_strip, num_frames, seed, greedy)
    except DemoInputError as error:
        return None, None, problem(str(error))
    gallery = [(overlay, f"frame {frame}") for frame, overlay in enumerate(output.overlays)]
    numbers = sorted({row[0] for row in output.rows})
    chips = " ".join(object_chip(number) for number in numbers)
    status = f"Done: {len(numbers)} object{'s' if len(numbers) > 1 else ''} {chips} over {len(gallery)} frames in "
    return gallery, output.rows, status + f"{output.seconds:.2f} s. Hatched = hidden part the model predicts."


# ---- examples and layout --------------------------------------------------------------------------------------------


def example_rows() -> list[list]:
    """`[editor value]` for every `NAME.png` + `NAME_mask.png` pair in `examples/`, the masks drawn into the
    composite so that the example's thumbnail shows them."""
    rows = []
    for mask_path in sorted(EXAMPLES_DIR.glob("*_mask.png")):
        image_path = mask_path.with_name(mask_path.name.replace("_mask.png", ".png"))
        image = np.asarray(Image.open(image_path).convert("RGB"))
        layer = np.asarray(Image.open(mask_path).convert("RGBA"))
        rows.append([{"background": image, "layers": [layer], "composite": composite(image, layer)}])
    return rows


def example_labels() -> list[str]:
    """Readable names of the examples, in `example_rows` order ("photo_mug_behind_box" -> "photo: mug behind box")."""
    names = [path.name.removesuffix("_mask.png") for path in sorted(EXAMPLES_DIR.glob("*_mask.png"))]
    return [name.replace("_", " ", 1).replace(" ", ": ", 1).replace("_", " ") for name in names]


def video_example_rows() -> list[list]:
    """`[clip file, frames strip, mask strip, frames, seed, greedy]` for every `NAME_frames.png` +
    `NAME_masks.png` pair in `examples/video/` (8 frames each, as `make_examples.py` writes them)."""
    rows = []
    for frames_path in sorted(VIDEO_EXAMPLES_DIR.glob("*_frames.png")):
        mask_path = frames_path.with_name(frames_path.name.replace("_frames.png", "_masks.png"))
        rows.append([None, str(frames_path), str(mask_path), 8, 0, False])
    return rows


def video_example_label(frames_path: str) -> str:
    """The button text of a video example: its clip and how many objects it labels."""
    labels = labels_from_mask_strip(np.asarray(Image.open(frames_path.replace("_frames.png", "_masks.png"))))
    count = len(np.unique(labels)) - 1
    return f"{Path(frames_path).stem.removesuffix('_frames').replace('_', ' ')}: {count} objects"


def header_markdown() -> str:
    """What the page is, where it comes from and how far to trust it."""
    return f"""
# C2F-Seg: see the hidden part of objects
Give the **visible** part of an object (click it, paint it, or pick an example) and the model predicts its
**whole** shape, the hidden part included (*amodal segmentation*).
[Paper (Gao et al., ICCV 2023)]({PAPER_URL}) · [model card]({model_card_url()}) ·
[authors' code]({AUTHORS_CODE_URL}) · this demo: the `c2f_hf` transformers package.

**How far to trust it:** the default model is tiny and was trained on **synthetic shapes only** (discs,
rectangles, stars, ... over flat backgrounds). It completes simple shapes; on real photos expect rough guesses.
"""


def sam_help() -> str:
    """The line above the prompt controls: how to click, or why clicking is off."""
    if sam_model_source():
        return (
            f"**1. Click** an object (SAM: `{sam_model_source()}`) or draw a box with two clicks; one object per "
            "prompt, numbered in colour. **2. Correct** in the editor below if needed. **3. Segment.**"
        )
    return (
        "**Paint** the visible part of each object in the editor; **one colour = one object** (pick the next "
        "colour in the brush menu for the next object), then **Segment**. Click prompting needs a SAM model: this "
        "Space has none configured (`C2F_HF_SAM_MODEL`)."
    )


def _prompt_controls() -> tuple:
    """The SAM prompt image under its click mode and buttons (hidden when no SAM is configured)."""
    with gr.Group(visible=bool(sam_model_source())):
        mode = gr.Radio(CLICK_MODES, value=CLICK_MODES[0], label="A click adds", elem_id="click_mode")
        with gr.Row():
            next_button = gr.Button("Next object", size="sm", elem_id="next_object")
            clear_button = gr.Button("Clear objects", size="sm", elem_id="clear_objects")
        prompt_image = gr.Image(
            label="Click to prompt SAM",
            type="numpy",
            sources=["upload", "clipboard"],
            height=340,
            elem_id="prompt_image",
        )
    return prompt_image, mode, next_button, clear_button


def _settings() -> tuple:
    """K, seed and threshold in a closed accordion, starting at the model's defaults."""
    num_steps, threshold = default_settings()
    with gr.Accordion("Advanced settings", open=False):
        steps = gr.Slider(
            1,
            8,
            value=num_steps,
            step=1,
            label="MaskGIT steps K",
            info=f"Rounds of token sampling for the coarse mask; this model was trained for K = {num_steps}.",
        )
        seed = gr.Number(value=0, precision=0, label="Seed", info="Same seed and inputs, same result.")
        mask_threshold = gr.Slider(
            0.05,
            0.95,
            value=threshold,
            step=0.05,
            label="Mask threshold",
            info="Probability above which a pixel counts as the object; lower gives larger masks.",
        )
    return steps, seed, mask_threshold


SCROLL_TO_RESULT_JS = "() => document.querySelector('#result')?.scrollIntoView({behavior: 'smooth', block: 'nearest'})"


def _editor() -> gr.ImageMask:
    """The editor holding the visible masks: the upload point without SAM, in an accordion for corrections with
    SAM (whose prompt image is then the upload point)."""
    chips = " ".join(object_chip(number) for number in range(1, len(OBJECT_COLOURS) + 1))
    gr.Markdown(f"**Visible masks**: paint to add or correct; brush colour = object {chips}", elem_id="editor_help")
    return gr.ImageMask(
        show_label=False,
        type="numpy",
        image_mode="RGBA",
        format="png",
        brush=brush_for(None),
        sources=[] if sam_model_source() else ["upload", "clipboard"],
        layers=False,
        elem_id="editor",
    )


def _captioned_image(caption: str, elem_id: str) -> gr.Image:
    """An output image under a Markdown caption (a caption, unlike a label, wraps instead of hiding under the
    image's buttons on a phone)."""
    with gr.Column(min_width=140):
        gr.Markdown(caption, elem_classes="caption")
        return gr.Image(show_label=False, format="png", buttons=["fullscreen"], elem_id=elem_id)


def _results() -> tuple:
    """The result slider, the coarse and refined masks side by side, and the objects table with its help."""
    gr.HTML(LEGEND_HTML)
    gr.Markdown("**Result**: drag the handle to compare the input with the amodal masks.", elem_classes="caption")
    result = gr.ImageSlider(show_label=False, type="numpy", format="png", buttons=["fullscreen"], elem_id="result")
    with gr.Row():
        coarse = _captioned_image("**Step 1: coarse** (decoded VQ tokens)", "coarse")
        refined = _captioned_image("**Step 2: refined** (final amodal mask)", "refined")
    table = gr.Dataframe(headers=TABLE_HEADERS, label="Objects", interactive=False, wrap=True, elem_id="objects")
    gr.Markdown(TABLE_HELP)
    return result, coarse, refined, table


def _image_tab() -> None:
    """The image UI: prompts, editor and examples on the left; button, status and results on the right."""
    image_state, prompts = gr.State(None), gr.State(empty_prompts())
    gr.Markdown(sam_help(), elem_id="how_to")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            prompt_image, mode, next_button, clear_button = _prompt_controls()
            if sam_model_source():
                examples_slot = gr.Column()
                with gr.Accordion("Paint to add to or correct the masks", open=False):
                    editor = _editor()
            else:
                editor = _editor()
                examples_slot = gr.Column()
        with gr.Column(scale=1, min_width=300):
            segment = gr.Button("Segment", variant="primary", elem_id="segment")
            status = gr.Markdown("Upload an image or click an example.", elem_id="status")
            result, coarse, refined, table = _results()
            steps, seed, mask_threshold = _settings()
    inputs = [editor, steps, seed, mask_threshold]
    result_outputs = [result, coarse, refined, table, status]
    with examples_slot:
        examples = gr.Examples(
            example_rows(),
            inputs=[editor],
            fn=example_result,
            outputs=[prompt_image, image_state, editor, prompts, steps, seed, mask_threshold, *result_outputs],
            run_on_click=True,
            cache_examples=False,
            label="Examples (visible masks included): one click shows the result",
        )
    examples.dataset.click(None, js=SCROLL_TO_RESULT_JS)
    upload_outputs = [prompt_image, image_state, editor, prompts, status]
    prompt_image.upload(load_image, [prompt_image, image_state], upload_outputs, api_visibility="private")
    editor.upload(
        lambda value, current: load_image((value or {}).get("background"), current),
        [editor, image_state],
        upload_outputs,
        api_visibility="private",
    )
    prompt_image.select(
        click_prompt, [image_state, prompts, mode, editor], [prompt_image, editor, prompts, status], api_name="click"
    )
    next_button.click(next_object, [prompts, editor], [prompts, status], api_visibility="private")
    clear_button.click(clear_objects, image_state, [prompt_image, editor, prompts, status], api_visibility="private")
    segment.click(predict, inputs=inputs, outputs=result_outputs, api_name="segment")
    segment.click(None, js=SCROLL_TO_RESULT_JS)


def _video_tab() -> None:
    """The video UI: the clip and mask strip, controls, the per-frame gallery, the table and the example clips."""
    gr.Markdown(f"""
Track objects through a short clip: the video model predicts each object's **whole** shape in every frame, also
in frames where it is completely hidden. Give the clip as a **film strip** (frames side by side, PNG) or an
**animated GIF / APNG / WebP** (at most {MAX_VIDEO_FRAMES} frames), and a **mask strip** of the same layout: each
object's visible part painted in its colour {" ".join(object_chip(n) for n in range(1, len(OBJECT_COLOURS) + 1))}
on black (a grayscale strip with value k for object k works too). No video tracker is built in, so prompts on the
first frame cannot be carried through the clip: every frame needs its masks. An object may vanish for some
frames but must be visible in at least one frame of every window of the model.
""")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            frames_strip = gr.Image(
                label="Frames strip",
                type="numpy",
                image_mode="RGB",
                sources=["upload", "clipboard"],
                elem_id="frames_strip",
            )
            clip_file = gr.File(
                label="…or an animated clip",
                file_types=[".gif", ".png", ".webp"],
                type="filepath",
                elem_id="clip_file",
            )
            mask_strip = gr.Image(
                label="Mask strip",
                type="numpy",
                image_mode="RGB",
                sources=["upload", "clipboard"],
                elem_id="mask_strip",
            )
        with gr.Column(scale=2, min_width=300):
            segment = gr.Button("Segment clip", variant="primary", elem_id="segment_video")
            status = gr.Markdown(elem_id="video_status")
            with gr.Accordion("Advanced settings", open=False):
                num_frames = gr.Number(
                    value=8,
                    precision=0,
                    label="Frames in the strip",
                    info="How many frames the film strip holds (ignored for an animated clip).",
                )
                seed = gr.Number(value=0, precision=0, label="Seed", info="Same seed and inputs, same result.")
                greedy = gr.Checkbox(
                    value=False,
                    label="Greedy decoding",
                    info="Most likely token everywhere instead of sampling (the seed has no effect).",
                )
            examples_slot = gr.Column()
    gr.HTML(LEGEND_HTML)
    gallery = gr.Gallery(
        label="Per frame: amodal masks",
        columns=4,
        height="auto",
        object_fit="contain",
        format="png",
        elem_id="video_overlays",
    )
    table = gr.Dataframe(
        headers=VIDEO_TABLE_HEADERS,
        label="Objects per frame",
        interactive=False,
        wrap=True,
        max_height=320,
        elem_id="tracks",
    )
    gr.Markdown(TABLE_HELP)
    inputs = [clip_file, frames_strip, mask_strip, num_frames, seed, greedy]
    outputs = [gallery, table, status]
    rows = video_example_rows()
    with examples_slot:
        gr.Examples(
            rows,
            inputs=inputs,
            fn=predict_video,
            outputs=outputs,
            run_on_click=True,
            cache_examples=False,
            example_labels=[video_example_label(row[1]) for row in rows],
            label="Example clips (synthetic, 8 frames): one click shows the result",
        )
    segment.click(predict_video, inputs=inputs, outputs=outputs, api_name="segment_video")


def build_demo() -> gr.Blocks:
    """The Blocks app with an image and a video tab (queued; one request at a time, since the CPU is the
    bottleneck)."""
    with gr.Blocks(title="C2F-Seg amodal segmentation") as demo:
        gr.Markdown(header_markdown(), elem_id="header")
        with gr.Tab("Image", elem_id="image_tab"):
            _image_tab()
        with gr.Tab("Video", elem_id="video_tab"):
            _video_tab()
    return demo.queue(default_concurrency_limit=1)


def launch(**kwargs):
    """`demo.launch` with the page's CSS (gradio 6 takes it at launch) and `kwargs` (server name, port, ...), in a
    process whose allocator keeps freed memory for reuse (`c2f_hf.cpu_memory.reuse_freed_memory`: full-size
    activation maps then cost no page faults)."""
    logger.info("allocator keeps freed memory for reuse: %s", reuse_freed_memory())
    return demo.launch(css=CSS, **kwargs)


demo = build_demo()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    launch()
