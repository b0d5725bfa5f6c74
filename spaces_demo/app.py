"""Gradio demo of C2F-Seg amodal segmentation: paint the visible part of objects, get their full shapes.

Image tab: one brush colour is one object. The model is loaded once (`load_segmenter`, cached) from the
`C2F_HF_MODEL` environment variable (a Hub repo written by `c2f-hf export`, or a local folder) or, without it, from
the model shipped in `c2f_hf`. Requests are queued and run on CPU.

Video tab: a clip as a film strip (frames side by side) plus a label strip of the same layout (pixel value k = the
visible part of object k in that frame). The video model is loaded once (`load_video_segmenter`) from
`C2F_HF_VIDEO_MODEL` (a `save_pretrained` folder or Hub repo of a video C2F-Seg model) or the video model shipped in
`c2f_hf`.

This file is UI only: image loading, the mask policy (union with the painted visible mask, occluded masks,
occlusion rates) and the pictures come from `c2f_hf` (the image processor through the pipelines, and
`c2f_hf.visualization`, which `c2f-hf demo` draws with too). `run_demo` / `run_video_demo` raise `DemoInputError`
with a readable message for bad input; `predict` / `predict_video` are the Gradio handlers that turn those into
`gr.Error` and the notes (downscaled or grayscale images) into `gr.Warning`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image
from transformers import AutoConfig, pipeline

import c2f_hf  # noqa: F401  (registers the pipelines)
from c2f_hf.checkpoints import default_model_path, default_video_model_path
from c2f_hf.image_processing_c2f_seg import load_rgb_image
from c2f_hf.visualization import draw_amodal_overlay, draw_filled_masks

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
VIDEO_EXAMPLES_DIR = EXAMPLES_DIR / "video"
MAX_IMAGE_SIDE = 1024
MAX_VIDEO_FRAMES = 32
MIN_OBJECT_PIXELS = 16
BRUSH_COLOURS = {
    "magenta": "#ff00ff",
    "sky blue": "#00bfff",
    "gold": "#ffd700",
    "orange": "#ff8c00",
    "violet": "#8a2be2",
    "white": "#ffffff",
}
TABLE_HEADERS = ["object", "brush colour", "visible px", "amodal px", "occlusion rate (%)", "score"]
VIDEO_TABLE_HEADERS = ["object", "colour", "frame", "visible px", "amodal px", "occlusion rate (%)", "score"]
TITLE = "# C2F-Seg: amodal segmentation"
INSTRUCTIONS = f"""
Paint over the **visible** part of an object and the model predicts its **full** shape, hidden parts included.

1. Upload an image (larger than {MAX_IMAGE_SIDE} px per side is scaled down) or click an example below.
2. Paint the visible part of each object. **One brush colour = one object**: for a second object pick another
   colour in the brush menu. The eraser removes strokes.
3. Press **Segment**. Green: the visible part you painted. Red: the hidden part the model predicts.
"""
VIDEO_INSTRUCTIONS = f"""
Track objects through a short clip: the video model predicts each object's **full** shape in every frame, also in
frames where the object is completely hidden.

1. Click an example clip below, or upload your own as two PNG strips of the same size: the **frames** side by side
   (a film strip), and a grayscale **mask strip** with the same layout whose pixel value k marks the visible part
   of object k in that frame (k from 1 to {len(BRUSH_COLOURS)}; 0 elsewhere). Set the number of frames in the strip.
2. Press **Segment clip**. Each frame is shown with the visible parts in green, the predicted hidden parts in red
   and each object outlined in its colour.

The model works on windows of a few consecutive frames: an object may vanish for some frames, but it must be
visible in at least one frame of every window.
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


def default_num_steps() -> int:
    """The image model's own default MaskGIT steps K (`config.num_sampling_steps`): the slider starts there."""
    return AutoConfig.from_pretrained(model_source(), trust_remote_code=True).num_sampling_steps


@lru_cache(maxsize=1)
def load_segmenter():
    """The `amodal-segmentation` pipeline, loaded once per process."""
    return pipeline("amodal-segmentation", model=model_source(), trust_remote_code=True, device="cpu")


@lru_cache(maxsize=1)
def load_video_segmenter():
    """The `video-amodal-segmentation` pipeline, loaded once per process."""
    return pipeline("video-amodal-segmentation", model=video_model_source(), trust_remote_code=True, device="cpu")


def _hex_to_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[index : index + 2], 16) for index in (1, 3, 5))


PALETTE = np.array([_hex_to_rgb(colour) for colour in BRUSH_COLOURS.values()], dtype=np.float32)


def _as_rgb(background: np.ndarray, notes: list[str]) -> np.ndarray:
    """`(H, W)`, `(H, W, 3)` or `(H, W, 4)` -> `(H, W, 3)` uint8 as the image processor reads it (transparency over
    white); notes a grayscale image."""
    try:
        rgb = load_rgb_image(np.asarray(background))
    except ValueError as error:
        raise DemoInputError(f"Unsupported image: {str(error).split(': ', 1)[-1]}.") from error
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


def _colours(objects: list[tuple[str, np.ndarray]]) -> list[tuple[int, int, int]]:
    return [_hex_to_rgb(BRUSH_COLOURS[name]) for name, _ in objects]


def render_overlay(
    image: np.ndarray, objects: list[tuple[str, np.ndarray]], amodal_masks: list[np.ndarray]
) -> np.ndarray:
    """The image with each object's visible part in green, its predicted hidden part in red, and its amodal
    mask outlined in its brush colour (`c2f_hf.visualization.draw_amodal_overlay`)."""
    return draw_amodal_overlay(image, [visible for _, visible in objects], amodal_masks, _colours(objects))


def render_masks(image: np.ndarray, objects: list[tuple[str, np.ndarray]], masks: list[np.ndarray]) -> np.ndarray:
    """The dimmed image with each `(H, W)` bool mask filled in its object's brush colour."""
    return draw_filled_masks(image, masks, _colours(objects))


def _as_bool(mask) -> np.ndarray:
    return np.asarray(mask) > 0


def _table_rows(objects: list[tuple[str, np.ndarray]], results: list[dict]) -> list[list]:
    rows = []
    for index, ((name, visible), result) in enumerate(zip(objects, results)):
        amodal_area = int(_as_bool(result["amodal_mask"]).sum())
        rate = round(100.0 * result["occlusion_rate"], 1)
        rows.append([index + 1, name, int(visible.sum()), amodal_area, rate, round(result["score"], 3)])
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
        mask_threshold=float(threshold),
        union_with_visible=True,
        return_coarse=True,
        batch_size=len(objects),
    )
    seconds = time.perf_counter() - start
    coarse = [_as_bool(result["coarse_amodal_mask"]) for result in results]
    refined = [_as_bool(result["amodal_mask"]) for result in results]
    return DemoOutput(
        overlay=render_overlay(image, objects, refined),
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


def read_video_strips(
    frames_strip: np.ndarray | None, mask_strip: np.ndarray | None, num_frames: int
) -> tuple[list[np.ndarray], list[tuple[str, np.ndarray]]]:
    """(film strip, label strip, frame count) -> (frames `(H, W, 3)` uint8, one `(colour name, (F, H, W) bool
    visible masks)` per label value present, in label order)."""
    if frames_strip is None or mask_strip is None:
        raise DemoInputError("No clip: upload a frames strip and a mask strip, or click one of the example clips.")
    num_frames = int(num_frames)
    if not 1 <= num_frames <= MAX_VIDEO_FRAMES:
        raise DemoInputError(f"Number of frames: expected 1 to {MAX_VIDEO_FRAMES}, got {num_frames}.")
    labels = np.asarray(mask_strip)
    labels = labels[..., 0] if labels.ndim == 3 else labels
    frames_strip = _as_rgb(frames_strip, [])
    if labels.shape != frames_strip.shape[:2]:
        raise DemoInputError(
            f"The mask strip is {labels.shape[1]}x{labels.shape[0]} pixels but the frames strip is "
            f"{frames_strip.shape[1]}x{frames_strip.shape[0]}: they must have the same size and layout."
        )
    frames = _split_strip(frames_strip, num_frames, "frames strip")
    label_frames = np.stack(_split_strip(labels, num_frames, "mask strip"))
    values = [int(value) for value in np.unique(label_frames) if value != 0]
    if not values:
        raise DemoInputError("The mask strip is empty: mark the visible part of each object with its label 1, 2, ...")
    if max(values) > len(BRUSH_COLOURS):
        raise DemoInputError(f"The mask strip uses label {max(values)}; labels go from 1 to {len(BRUSH_COLOURS)}.")
    names = list(BRUSH_COLOURS)
    return frames, [(names[value - 1], label_frames == value) for value in values]


def _segment_track(
    frames: list[np.ndarray], number: int, name: str, visible: np.ndarray, seed: int, greedy: bool
) -> dict:
    """One object's video pipeline result for its `(F, H, W)` visible masks; the pipeline's complaints (e.g. hidden
    in a whole window) become a DemoInputError naming the object."""
    try:
        segmenter = load_video_segmenter()
        return segmenter(frames, visible_masks=[list(visible)], seed=seed, greedy=greedy, union_with_visible=True)[0]
    except ValueError as error:
        reason = str(error).split(": ", 1)[-1]
        raise DemoInputError(f"Object {number} ({name}): {reason}.") from error


def _video_rows(objects: list[tuple[str, np.ndarray]], results: list[dict]) -> list[list]:
    """One row per object and frame: visible and amodal areas, occlusion rate (%) and the frame's score."""
    rows = []
    for number, ((name, visible), result) in enumerate(zip(objects, results), start=1):
        for frame, visible_mask in enumerate(visible):
            area = int(_as_bool(result["amodal_masks"][frame]).sum())
            rate = round(100.0 * result["occlusion_rates"][frame], 1)
            rows.append([number, name, frame, int(visible_mask.sum()), area, rate, round(result["scores"][frame], 3)])
    return rows


def _video_overlays(
    frames: list[np.ndarray], objects: list[tuple[str, np.ndarray]], results: list[dict]
) -> list[np.ndarray]:
    """`render_overlay` of every frame, from each object's `(F, H, W)` visible masks and per-frame results."""
    return [
        render_overlay(
            image,
            [(name, visible[frame]) for name, visible in objects],
            [_as_bool(result["amodal_masks"][frame]) for result in results],
        )
        for frame, image in enumerate(frames)
    ]


def run_video_demo(
    frames_strip: np.ndarray | None, mask_strip: np.ndarray | None, num_frames: int, seed: int, greedy: bool
) -> VideoDemoOutput:
    """Segment every labelled object of a clip in every frame; raises DemoInputError for bad input."""
    frames, objects = read_video_strips(frames_strip, mask_strip, num_frames)
    load_video_segmenter()
    start = time.perf_counter()
    results = [
        _segment_track(frames, number, name, visible, int(seed), bool(greedy))
        for number, (name, visible) in enumerate(objects, start=1)
    ]
    seconds = time.perf_counter() - start
    return VideoDemoOutput(
        overlays=_video_overlays(frames, objects, results),
        rows=_video_rows(objects, results),
        seconds=seconds,
    )


def predict_video(
    frames_strip: np.ndarray | None, mask_strip: np.ndarray | None, num_frames: int, seed: int, greedy: bool
):
    """Gradio handler: (gallery of per-frame overlays, table, status). Bad input becomes a `gr.Error` message."""
    try:
        output = run_video_demo(frames_strip, mask_strip, num_frames, seed, greedy)
    except DemoInputError as error:
        raise gr.Error(str(error)) from error
    gallery = [(overlay, f"frame {frame}") for frame, overlay in enumerate(output.overlays)]
    count = len({row[0] for row in output.rows})
    plural = "s" if count > 1 else ""
    status = f"{count} object{plural} over {len(gallery)} frames in {output.seconds:.2f} s."
    return gallery, output.rows, status


def example_rows() -> list[list]:
    """`[editor value, K, seed, threshold]` for every `NAME.png` + `NAME_mask.png` pair in `examples/`."""
    rows = []
    for mask_path in sorted(EXAMPLES_DIR.glob("*_mask.png")):
        image_path = mask_path.with_name(mask_path.name.replace("_mask.png", ".png"))
        editor_value = {"background": str(image_path), "layers": [str(mask_path)], "composite": str(image_path)}
        rows.append([editor_value, 3, 0, 0.5])
    return rows


def video_example_rows() -> list[list]:
    """`[frames strip, mask strip, frames, seed, greedy]` for every `NAME_frames.png` + `NAME_masks.png` pair in
    `examples/video/` (8 frames each, as `make_examples.py` writes them)."""
    rows = []
    for frames_path in sorted(VIDEO_EXAMPLES_DIR.glob("*_frames.png")):
        mask_path = frames_path.with_name(frames_path.name.replace("_frames.png", "_masks.png"))
        rows.append([str(frames_path), str(mask_path), 8, 0, False])
    return rows


def _image_tab() -> None:
    """The image UI: editor, controls, three result images, the objects table and the examples."""
    brush = gr.Brush(colors=list(BRUSH_COLOURS.values()), default_color=BRUSH_COLOURS["magenta"], color_mode="fixed")
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
            num_steps = gr.Slider(1, 8, value=default_num_steps(), step=1, label="MaskGIT steps K")
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


def _video_tab() -> None:
    """The video UI: the two strips, controls, the per-frame gallery, the table and the example clips."""
    gr.Markdown(VIDEO_INSTRUCTIONS)
    with gr.Row():
        with gr.Column(scale=3):
            frames_strip = gr.Image(label="Frames strip (frames side by side)", type="numpy", image_mode="RGB")
            mask_strip = gr.Image(label="Mask strip (pixel value k = object k)", type="numpy", image_mode="L")
        with gr.Column(scale=2):
            num_frames = gr.Number(value=8, precision=0, label="Frames in the strip")
            seed = gr.Number(value=0, precision=0, label="Seed (same seed, same result)")
            greedy = gr.Checkbox(value=False, label="Greedy decoding (no sampling)")
            segment = gr.Button("Segment clip", variant="primary", elem_id="segment_video")
            status = gr.Markdown(elem_id="video_status")
    gallery = gr.Gallery(
        label="Per frame: visible (green) and hidden (red)", columns=4, format="png", elem_id="video_overlays"
    )
    table = gr.Dataframe(headers=VIDEO_TABLE_HEADERS, label="Objects per frame", interactive=False, elem_id="tracks")
    inputs = [frames_strip, mask_strip, num_frames, seed, greedy]
    gr.Examples(video_example_rows(), inputs=inputs, label="Example clips (synthetic, 8 frames)")
    segment.click(predict_video, inputs=inputs, outputs=[gallery, table, status], api_name="segment_video")


def build_demo() -> gr.Blocks:
    """The Blocks app with an image and a video tab (queued; one request at a time, since the CPU is the
    bottleneck)."""
    with gr.Blocks(title="C2F-Seg amodal segmentation") as demo:
        gr.Markdown(TITLE)
        with gr.Tab("Image", elem_id="image_tab"):
            _image_tab()
        with gr.Tab("Video", elem_id="video_tab"):
            _video_tab()
    return demo.queue(default_concurrency_limit=1)


demo = build_demo()

if __name__ == "__main__":
    load_segmenter()
    demo.launch()
