"""Click prompts: in the image tab, clicks and boxes per object number, drawn over the image, turned into visible
masks by the image pipeline's SAM source; in the video tab, clicks on a clip's first frame, turned into the video
pipeline's point prompts for SAM 2 (`point_prompts`); the handlers that move to the next object and clear them all.

Prompt state (a `gr.State`): `{"objects": {"k": {"points", "labels", "box"}}, "current": k, "corner": [x, y] or
None}`, object numbers as strings, coordinates in pixels of the working image.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw
from transformers import Pipeline

from c2f_hf.visualization import OBJECT_COLOURS
from editor import composite, editor_update, masks_from_layer
from page import DemoInputError, object_chip, problem

CLICK_MODES = ["point on the object", "point on the background", "box: two opposite corners"]
POINT_MODES = CLICK_MODES[:2]


def empty_prompts() -> dict:
    """Prompt state: per object number its points, labels and box; the object being prompted; a box corner."""
    return {"objects": {}, "current": 1, "corner": None}


def sam_mask(segmenter: Pipeline, image: np.ndarray, prompt: dict) -> np.ndarray:
    """The `(H, W)` bool visible mask the SAM source of `segmenter` gives for one object's prompt (`points`,
    `labels`, `box`)."""
    arguments = {}
    if prompt["points"]:
        arguments["input_points"], arguments["input_labels"] = [prompt["points"]], [prompt["labels"]]
    if prompt["box"]:
        arguments["input_boxes"] = [prompt["box"]]
    try:
        return segmenter.visible_mask_source(Image.fromarray(image), **arguments)[0].mask
    except ValueError as error:
        raise DemoInputError(f"SAM found no mask for this prompt ({str(error).split(': ', 1)[-1]}).") from error


def point_prompts(prompts: dict) -> tuple[list[int], list[list[list[int]]], list[list[int]]]:
    """The clicked objects of `prompts`, in number order, as the video pipeline takes them: (object numbers,
    `input_points` `[[[x, y], ...], ...]`, `input_labels` `[[1 or 0, ...], ...]`), one entry per object. Raises
    DemoInputError when there is no click, or an object has background points only (SAM 2 would not know it)."""
    numbers = sorted(int(number) for number in prompts["objects"])
    if not numbers:
        raise DemoInputError("No object clicked: click each object on the first frame.")
    chosen = [prompts["objects"][str(number)] for number in numbers]
    for number, prompt in zip(numbers, chosen):
        if not any(prompt["labels"]):
            raise DemoInputError(
                f"Object {number} has background points only: click on the object itself at least once."
            )
    return numbers, [prompt["points"] for prompt in chosen], [prompt["labels"] for prompt in chosen]


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


def next_object(prompts: dict, editor_value: dict | None = None):
    """Gradio handler: (prompts, status) with the next free object number as the one being prompted (free: neither
    clicked nor painted in the editor of `editor_value`, if any)."""
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
