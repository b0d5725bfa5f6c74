"""The image tab: visible masks painted in the editor (or from SAM clicks), one pipeline call for all objects, and
the results: a before/after slider, the coarse and refined masks, and a table whose columns add up (amodal =
visible + hidden). `ImageTab` holds its handlers and lays it out; the examples come from `examples/`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from c2f_hf.visualization import OBJECT_COLOURS, draw_amodal_overlay, draw_filled_masks
from editor import (
    MAX_IMAGE_SIDE,
    brush_for,
    composite,
    editor_update,
    editor_value_of,
    layer_from_masks,
    masks_from_layer,
    objects_from_layer,
    painted_layer,
    prepare_image,
    read_editor,
    resized_layer,
)
from page import (
    LEGEND_HTML,
    TABLE_HELP,
    DemoInputError,
    object_chip,
    palette_chips,
    problem,
    sam_help,
    scroll_into_view_js,
)
from sam_prompts import CLICK_MODES, add_click, clear_objects, draw_prompts, empty_prompts, next_object, sam_mask
from segmenters import ModelSources, result_mask

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
SLIDER_POSITIONS = range(15, 86, 5)
SLIDER_BAND = 3
TABLE_HEADERS = ["#", "visible", "hidden", "amodal", "occl. %", "score"]


@dataclass
class DemoOutput:
    """What one image request produces: the image and overlay `(H, W, 3)` uint8, the coarse and refined masks
    drawn `(H, W, 3)` uint8, one table row per object, the objects' numbers, where the before/after handle starts
    (percent of the width), and notes to show."""

    image: np.ndarray
    overlay: np.ndarray
    coarse: np.ndarray
    refined: np.ndarray
    rows: list[list]
    numbers: list[int]
    slider_position: float = 50.0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def table_rows(numbers: list[int], results: list[dict]) -> list[list]:
    """One row per object from the pipeline's results: visible, hidden (occluded) and amodal pixel counts of the
    same masks, the occlusion rate (%) and the score."""
    rows = []
    for number, result in zip(numbers, results):
        visible, hidden = result_mask(result["visible_mask"]), result_mask(result["occluded_mask"])
        amodal = result_mask(result["amodal_mask"])
        rate = round(100.0 * result["occlusion_rate"], 1)
        rows.append([number, int(visible.sum()), int(hidden.sum()), int(amodal.sum()), rate, round(result["score"], 2)])
    return rows


def result_status(output: DemoOutput) -> str:
    """Status Markdown for a finished request: objects, time, what to look at, and the notes."""
    count = len(output.rows)
    chips = " ".join(object_chip(number) for number in output.numbers)
    summary = (
        f"Done: {count} object{'s' if count > 1 else ''} {chips} in {output.seconds:.2f} s. "
        "Hatched = hidden part the model predicts; drag the slider to compare with the input."
    )
    return "\n\n".join([summary, *output.notes])


@dataclass(frozen=True)
class Example:
    """A shipped example: its photo `(H, W, 3)` uint8 and its visible masks, one palette colour per object, as an
    RGBA layer `(H, W, 4)`."""

    name: str
    image: np.ndarray
    layer: np.ndarray

    @property
    def thumbnail(self) -> np.ndarray:
        """`(H, W, 3)` uint8: the photo with its masks drawn over it, as the editor shows them."""
        return composite(self.image, self.layer)


def load_examples() -> list[Example]:
    """Every `NAME.png` + `NAME_mask.png` pair in `examples/`, in name order."""
    examples = []
    for mask_path in sorted(EXAMPLES_DIR.glob("*_mask.png")):
        image_path = mask_path.with_name(mask_path.name.replace("_mask.png", ".png"))
        image = np.asarray(Image.open(image_path).convert("RGB"))
        layer = np.asarray(Image.open(mask_path).convert("RGBA"))
        examples.append(Example(image_path.stem, image, layer))
    return examples


def slider_start(visible_masks: list[np.ndarray], amodal_masks: list[np.ndarray]) -> float:
    """Where the before/after handle starts, in percent of the width: the position in `SLIDER_POSITIONS` whose
    band of columns (+-`SLIDER_BAND` of the width) covers the fewest predicted hidden pixels, the one nearest the
    middle among equals, so that the handle shows both sides without hiding the prediction. Masks are `(H, W)`
    bool."""
    hidden = np.zeros(visible_masks[0].shape, dtype=bool)
    for visible, amodal in zip(visible_masks, amodal_masks):
        hidden |= amodal & ~visible
    columns = np.concatenate([[0], np.cumsum(hidden.sum(axis=0))])
    width = hidden.shape[1]

    def cost(position: int) -> tuple[int, int]:
        left = int(np.clip(round((position - SLIDER_BAND) * width / 100), 0, width))
        right = int(np.clip(round((position + SLIDER_BAND) * width / 100), 0, width))
        return int(columns[right] - columns[left]), abs(position - 50)

    return float(min(SLIDER_POSITIONS, key=cost))


class ImageTab:
    """The image tab for the models of `sources`: its Gradio handlers and its layout (`build`)."""

    def __init__(self, sources: ModelSources):
        self.sources = sources
        self.examples = load_examples()

    def run_demo(self, editor_value: dict | None, num_steps: int, seed: int, threshold: float) -> DemoOutput:
        """Segment every object painted in the editor; raises DemoInputError for bad input."""
        image, layer, notes = read_editor(editor_value)
        objects = objects_from_layer(resized_layer(layer, image.shape[:2]))
        segmenter = self.sources.segmenter()
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
        visibles = [result_mask(result["visible_mask"]) for result in results]
        refined = [result_mask(result["amodal_mask"]) for result in results]
        return DemoOutput(
            image=image,
            overlay=draw_amodal_overlay(image, visibles, refined, colours, numbers=False),
            coarse=draw_filled_masks(image, [result_mask(result["coarse_amodal_mask"]) for result in results], colours),
            refined=draw_filled_masks(image, refined, colours),
            rows=table_rows(numbers, results),
            numbers=numbers,
            slider_position=slider_start(visibles, refined),
            notes=notes,
            seconds=seconds,
        )

    def predict(self, editor_value: dict | None, num_steps: int, seed: int, threshold: float, in_page: bool = False):
        """The `/segment` endpoint: (before/after pair, coarse, refined, table, status). A user's mistake empties
        the results and puts its message in the status. `in_page`: the pair as an update of the page's slider
        whose handle starts at the result's `slider_position` (an API client gets plain values)."""
        try:
            output = self.run_demo(editor_value, num_steps, seed, threshold)
        except DemoInputError as error:
            return None, None, None, None, problem(str(error))
        slider = (output.image, output.overlay)
        if in_page:
            slider = gr.update(value=slider, slider_position=output.slider_position)
        return slider, output.coarse, output.refined, output.rows, result_status(output)

    def predict_in_page(self, editor_value: dict | None, num_steps: int, seed: int, threshold: float):
        """Gradio handler of the Segment button: `predict` with `in_page`."""
        return self.predict(editor_value, num_steps, seed, threshold, in_page=True)

    def load_image(self, picture: np.ndarray | str | None):
        """Gradio handler for an upload (a file path, or an image array): (prompt image, working image, editor,
        prompts, status). The image is scaled down before it reaches the editor, which gets it with no mask and a
        brush sized for it."""
        if picture is None:
            return (gr.skip(),) * 5
        try:
            image, notes = prepare_image(picture)
        except DemoInputError as error:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), problem(str(error))
        how = "click on an object (SAM) or paint it" if self.sources.sam else "paint its visible part"
        status = "\n\n".join(
            [f"Image loaded ({image.shape[1]}x{image.shape[0]}). For object {object_chip(1)}: {how}.", *notes]
        )
        empty = np.zeros((*image.shape[:2], 4), dtype=np.uint8)
        return image, image, editor_update(image, empty), empty_prompts(), status

    def click_prompt(
        self, image: np.ndarray | None, prompts: dict, mode: str, editor_value: dict | None, event: gr.SelectData
    ):
        """Gradio handler for a click on the prompt image: (prompt image, editor, prompts, status). Runs SAM for the
        current object once its prompt is complete and writes the mask into the editor in the object's colour."""
        if image is None:
            return gr.skip(), gr.skip(), prompts, problem("No image: upload one or click an example first.")
        x, y = (int(value) for value in event.index)
        number = prompts["current"]
        layer = resized_layer(painted_layer(editor_value, image.shape[:2]), image.shape[:2])
        status = f"Object {object_chip(number)}: first corner set; click the opposite corner."
        if add_click(prompts, mode, x, y):
            try:
                mask = sam_mask(self.sources.segmenter(), image, prompts["objects"][str(number)])
            except DemoInputError as error:
                return draw_prompts(image, layer, prompts), gr.skip(), prompts, problem(str(error))
            layer = layer_from_masks({**masks_from_layer(layer), number: mask}, image.shape[:2])
            status = (
                f"Object {object_chip(number)}: SAM mask of {int(mask.sum())} px. Click more points to refine it, "
                "press **Next object**, or **Segment**."
            )
        return draw_prompts(image, layer, prompts), editor_update(image, layer), prompts, status

    def example_result(self, index: int | None):
        """Gradio handler of a click on example `index`: its photo in the prompt image and the editor, its visible
        masks as the editor's layer, the controls back at the model's defaults, and the finished result."""
        if index is None:
            return (gr.skip(),) * 12
        example = self.examples[index]
        num_steps, threshold = self.sources.default_settings()
        value = editor_value_of(example.image, example.layer)
        prompts = empty_prompts()
        prompts["current"] = max(masks_from_layer(example.layer), default=0) + 1
        return (
            draw_prompts(example.image, example.layer, prompts),
            example.image,
            editor_update(example.image, example.layer),
            prompts,
            num_steps,
            0,
            threshold,
            *self.predict_in_page(value, num_steps, 0, threshold),
        )

    def build(self) -> None:
        """The image UI: upload button, examples, prompts and editor on the left; button, status and results on
        the right. Each user action is one request: the examples are a dataset of thumbnails whose click sends its
        index (the example's files stay on the server), uploads come from a button (the editor's own upload event
        would also fire when the app sets its image), and scrolling to the result runs in the browser."""
        sam = bool(self.sources.sam)
        image_state, prompts = gr.State(None), gr.State(empty_prompts())
        gr.Markdown(sam_help(self.sources.sam), elem_id="how_to")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                upload = gr.UploadButton(
                    f"Upload a photo (scaled to at most {MAX_IMAGE_SIDE} px)",
                    file_types=["image"],
                    size="sm",
                    elem_id="upload",
                )
                examples = _examples(self.examples)
                prompt_image, mode, next_button, clear_button = _prompt_controls(sam)
                if sam:
                    with gr.Accordion("Paint to add to or correct the masks", open=False):
                        editor = _editor()
                else:
                    editor = _editor()
            with gr.Column(scale=1, min_width=300):
                segment = gr.Button("Segment", variant="primary", elem_id="segment")
                status = gr.Markdown("Click an example, or press **Upload a photo**.", elem_id="status")
                result, coarse, refined, table = _results()
                steps, seed, mask_threshold = _settings(*self.sources.default_settings(), self.sources.seed_info())
        result_outputs = [result, coarse, refined, table, status]
        example_outputs = [prompt_image, image_state, editor, prompts, steps, seed, mask_threshold, *result_outputs]
        examples.click(self.example_result, examples, example_outputs, api_visibility="private").then(
            None, js=scroll_into_view_js("#result")
        )
        upload_outputs = [prompt_image, image_state, editor, prompts, status]
        upload.upload(self.load_image, upload, upload_outputs, api_visibility="private")
        prompt_image.select(
            self.click_prompt,
            [image_state, prompts, mode, editor],
            [prompt_image, editor, prompts, status],
            api_name="click",
        )
        next_button.click(next_object, [prompts, editor], [prompts, status], api_visibility="private")
        clear_button.click(
            clear_objects, image_state, [prompt_image, editor, prompts, status], api_visibility="private"
        )
        inputs = [editor, steps, seed, mask_threshold]
        segment.click(self.predict_in_page, inputs, result_outputs, api_visibility="private").then(
            None, js=scroll_into_view_js("#result")
        )
        # The `/segment` endpoint has its own (hidden) trigger: it answers plain values, not the page's update.
        gr.Button(visible=False).click(self.predict, inputs, result_outputs, api_name="segment")


def _examples(examples: list[Example]) -> gr.Dataset:
    """The examples as thumbnails showing their masks; a click hands the handler the example's index."""
    return gr.Dataset(
        components=[gr.Image(type="numpy", format="png", render=False)],
        samples=[[example.thumbnail] for example in examples],
        type="index",
        label="Examples (visible masks included): one click shows the result",
        elem_id="examples",
    )


def _prompt_controls(sam: bool) -> tuple:
    """The SAM prompt image (shown, not an upload point) under its click mode and buttons (hidden when no SAM is
    configured)."""
    with gr.Group(visible=sam):
        mode = gr.Radio(CLICK_MODES, value=CLICK_MODES[0], label="A click adds", elem_id="click_mode")
        with gr.Row():
            next_button = gr.Button("Next object", size="sm", elem_id="next_object")
            clear_button = gr.Button("Clear objects", size="sm", elem_id="clear_objects")
        prompt_image = gr.Image(
            label="Click to prompt SAM",
            type="numpy",
            interactive=False,
            buttons=[],
            height=340,
            elem_id="prompt_image",
        )
    return prompt_image, mode, next_button, clear_button


def _settings(num_steps: int, threshold: float, seed_info: str) -> tuple:
    """K, seed and threshold in a closed accordion, starting at the model's defaults `num_steps` and
    `threshold`, the seed explained by `seed_info`."""
    with gr.Accordion("Advanced settings", open=False):
        steps = gr.Slider(
            1,
            8,
            value=num_steps,
            step=1,
            label="MaskGIT steps K",
            info=f"Rounds of token sampling for the coarse mask; this model was trained for K = {num_steps}.",
        )
        seed = gr.Number(value=0, precision=0, label="Seed", info=seed_info)
        mask_threshold = gr.Slider(
            0.05,
            0.95,
            value=threshold,
            step=0.05,
            label="Mask threshold",
            info="Probability above which a pixel counts as the object; lower gives larger masks.",
        )
    return steps, seed, mask_threshold


def _editor() -> gr.ImageMask:
    """The editor holding the visible masks as its layer; images come from the upload button and the examples,
    never from the editor itself, and it has no crop (the photo the model receives stays whole)."""
    gr.Markdown(
        f"**Visible masks**: paint to add or correct; brush colour = object {palette_chips()}", elem_id="editor_help"
    )
    return gr.ImageMask(
        show_label=False,
        type="numpy",
        image_mode="RGBA",
        format="png",
        brush=brush_for(None),
        sources=[],
        transforms=[],
        layers=False,
        canvas_size=(8, 8),
        placeholder="Upload a photo or click an example",
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
        refined = _captioned_image("**Step 2: final** (the amodal mask the model returns)", "refined")
    table = gr.Dataframe(headers=TABLE_HEADERS, label="Objects", interactive=False, wrap=True, elem_id="objects")
    gr.Markdown(TABLE_HELP)
    return result, coarse, refined, table
