"""The video tab: a clip with, per object, either clicks on its first frame (tracked through the clip by the video
pipeline's SAM 2 source, when the Space has one) or a mask strip of every frame's visible masks (`video_inputs`);
one video pipeline call for all objects, and the results: one overlay per frame in a gallery and a table per object
and frame. `VideoTab` holds its handlers and lays it out; the example clips come from `examples/video/`."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from c2f_hf.visualization import OBJECT_COLOURS, draw_amodal_overlay
from page import LEGEND_HTML, TABLE_HELP, DemoInputError, object_chip, problem, scroll_into_view_js, video_help
from sam_prompts import POINT_MODES, add_click, draw_prompts, empty_prompts, next_object, point_prompts
from segmenters import ModelSources, result_mask
from video_inputs import MAX_VIDEO_FRAMES, clip_frames, labels_from_mask_strip, read_video_inputs

VIDEO_EXAMPLES_DIR = Path(__file__).resolve().parent / "examples" / "video"
VIDEO_TABLE_HEADERS = ["#", "frame", "visible", "hidden", "amodal", "occl. %", "score"]
PROMPT_IMAGE_HEIGHT = 340
OBJECT_ARGUMENT = re.compile(r"(?:visible_masks|input_points|input_labels)\[(\d+)\]")


@dataclass
class VideoDemoOutput:
    """What one video request produces: one `(H, W, 3)` uint8 overlay per frame, one table row per object and
    frame, the seconds the model took, and notes to show."""

    overlays: list[np.ndarray]
    rows: list[list]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def object_problem(error: ValueError, numbers: list[int]) -> DemoInputError:
    """The video pipeline's complaint as a DemoInputError: one about object `i`'s track or prompt
    (`visible_masks[i]`, `input_points[i]...`, `input_labels[i]...`) names object `numbers[i]` instead; one about
    the clip as it is."""
    track = OBJECT_ARGUMENT.match(str(error))
    if track is None:
        return DemoInputError(f"{error}.")
    return DemoInputError(f"Object {numbers[int(track[1])]}: {str(error).split(': ', 1)[-1]}.")


def has_clicks(prompts: dict | None) -> bool:
    """Whether the prompt state `prompts` holds a clicked object (then the clicks, not a mask strip, give the
    visible masks)."""
    return bool(prompts and prompts["objects"])


def lost_object_notes(objects: list[tuple[int, np.ndarray]]) -> list[str]:
    """One note per tracked object whose `(F, H, W)` visible masks are empty on some frames: which frames SAM 2
    found no visible part of it on (hidden there, or lost)."""
    notes = []
    for number, visible in objects:
        empty = [frame for frame, mask in enumerate(visible) if not mask.any()]
        if empty:
            notes.append(f"SAM 2 found no visible part of object {object_chip(number)} on frames {empty}.")
    return notes


def video_rows(objects: list[tuple[int, np.ndarray]], results: list[dict]) -> list[list]:
    """One row per object and frame: visible, hidden and amodal areas, occlusion rate (%) and the frame's score."""
    rows = []
    for (number, visible), result in zip(objects, results):
        for frame, visible_mask in enumerate(visible):
            amodal = result_mask(result["amodal_masks"][frame])
            hidden = int((amodal & ~visible_mask).sum())
            rate = round(100.0 * result["occlusion_rates"][frame], 1)
            score = round(result["scores"][frame], 2)
            rows.append([number, frame, int(visible_mask.sum()), hidden, int(amodal.sum()), rate, score])
    return rows


def video_overlays(
    frames: list[np.ndarray], objects: list[tuple[int, np.ndarray]], results: list[dict]
) -> list[np.ndarray]:
    """`draw_amodal_overlay` of every frame, from each object's `(F, H, W)` visible masks and per-frame results."""
    colours = [OBJECT_COLOURS[number - 1][1] for number, _ in objects]
    return [
        draw_amodal_overlay(
            image,
            [visible[frame] for _, visible in objects],
            [result_mask(result["amodal_masks"][frame]) for result in results],
            colours,
            numbers=False,
        )
        for frame, image in enumerate(frames)
    ]


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


class VideoTab:
    """The video tab for the video model (and SAM 2, if any) of `sources`: its Gradio handlers and its layout
    (`build`)."""

    def __init__(self, sources: ModelSources):
        self.sources = sources
        self.example_rows = video_example_rows()

    def segment_tracks(
        self, frames: list[np.ndarray], objects: list[tuple[int, np.ndarray]], seed: int, greedy: bool
    ) -> list[dict]:
        """The video pipeline's result for every object's `(F, H, W)` visible masks, in one call; its complaints
        become a DemoInputError naming the object.

        The pipeline runs each (object, window) chunk on its own (its default `batch_size` of 1) and seeds a fresh
        generator with `seed` for each, so an object's result is the one a call for that object alone gives, seeded
        or greedy. A `batch_size` above 1 would draw a batch's samples from one generator and change seeded
        results."""
        segmenter = self.sources.video_segmenter()
        tracks = [list(visible) for _, visible in objects]
        try:
            return segmenter(frames, visible_masks=tracks, seed=seed, greedy=greedy, union_with_visible=True)
        except ValueError as error:
            raise object_problem(error, [number for number, _ in objects]) from error

    def track_clicked_objects(
        self, frames: list[np.ndarray], prompts: dict, seed: int, greedy: bool
    ) -> tuple[list[tuple[int, np.ndarray]], list[dict]]:
        """The objects clicked on the first frame (`prompts`), tracked through `frames` by SAM 2 and completed by
        the video model, in one pipeline call: (per object its number and tracked `(F, H, W)` bool visible masks,
        the pipeline's results); its complaints become a DemoInputError naming the object."""
        if not self.sources.sam2:
            raise DemoInputError("Clicks need SAM 2, which this Space does not have (`C2F_HF_SAM2_MODEL`).")
        numbers, points, labels = point_prompts(prompts)
        segmenter = self.sources.video_segmenter()
        try:
            results = segmenter(
                frames,
                input_points=points,
                input_labels=labels,
                prompt_frame=0,
                seed=seed,
                greedy=greedy,
                union_with_visible=True,
            )
        except ValueError as error:
            raise object_problem(error, numbers) from error
        tracked = [np.stack([result_mask(mask) for mask in result["visible_masks"]]) for result in results]
        return list(zip(numbers, tracked)), results

    def run_video_demo(
        self,
        clip_file: str | None,
        frames_strip: np.ndarray | None,
        mask_strip: np.ndarray | None,
        num_frames: int,
        seed: int,
        greedy: bool,
        prompts: dict | None = None,
    ) -> VideoDemoOutput:
        """Segment every object of a clip in every frame: the objects clicked on its first frame (`prompts`) when
        there are any, else those of the mask strip; raises DemoInputError for bad input."""
        clicked = has_clicks(prompts)
        if clicked:
            frames = clip_frames(clip_file, frames_strip, int(num_frames))
        else:
            frames, objects = read_video_inputs(clip_file, frames_strip, mask_strip, num_frames)
        self.sources.video_segmenter()
        start = time.perf_counter()
        if clicked:
            objects, results = self.track_clicked_objects(frames, prompts, int(seed), bool(greedy))
        else:
            results = self.segment_tracks(frames, objects, int(seed), bool(greedy))
        seconds = time.perf_counter() - start
        return VideoDemoOutput(
            overlays=video_overlays(frames, objects, results),
            rows=video_rows(objects, results),
            seconds=seconds,
            notes=lost_object_notes(objects) if clicked else [],
        )

    def predict_video(
        self,
        clip_file: str | None,
        frames_strip: np.ndarray | None,
        mask_strip: np.ndarray | None,
        num_frames: int,
        seed: int,
        greedy: bool,
        prompts: dict | None = None,
    ):
        """Gradio handler: (gallery of per-frame overlays, table, status). A user's mistake empties the results and
        puts its message in the status."""
        try:
            output = self.run_video_demo(clip_file, frames_strip, mask_strip, num_frames, seed, greedy, prompts)
        except DemoInputError as error:
            return None, None, problem(str(error))
        gallery = [(overlay, f"frame {frame}") for frame, overlay in enumerate(output.overlays)]
        numbers = sorted({row[0] for row in output.rows})
        chips = " ".join(object_chip(number) for number in numbers)
        objects = f"{len(numbers)} object{'s' if len(numbers) > 1 else ''}"
        frames = f"{len(gallery)} frame{'s' if len(gallery) > 1 else ''}"
        tracked = has_clicks(prompts)
        status = (
            f"Done: {objects} {chips} {'tracked by SAM 2 and ' if tracked else ''}segmented over {frames} in "
            f"{output.seconds:.2f} s. Hatched = hidden part the model predicts."
        )
        if self.sources.sam2 and not tracked:
            status += " To track other objects, click them on the first frame and press **Segment clip** again."
        return gallery, output.rows, "\n\n".join([status, *output.notes])

    def load_clip(self, clip_file: str | None, frames_strip: np.ndarray | None, num_frames: int):
        """Gradio handler of a new clip: (prompt image, first frame, prompts, status): its first frame to click
        on, no object clicked yet."""
        try:
            frames = clip_frames(clip_file, frames_strip, int(num_frames))
        except DemoInputError as error:
            return None, None, empty_prompts(), problem(str(error))
        height, width = frames[0].shape[:2]
        status = (
            f"Clip loaded: {len(frames)} frames of {width}x{height}. Click object {object_chip(1)} on its first frame."
        )
        return shown_frame(frames[0], empty_prompts()), frames[0], empty_prompts(), status

    def click_first_frame(self, first_frame: np.ndarray | None, prompts: dict, mode: str, event: gr.SelectData):
        """Gradio handler of a click on the first frame: (prompt image, prompts, status), the click recorded for
        the current object and drawn; SAM 2 runs when the clip is segmented."""
        if first_frame is None:
            return gr.skip(), prompts, problem("No clip: upload an animated GIF or click an example clip first.")
        scale = display_scale(first_frame)
        x, y = (int(value) // scale for value in event.index)
        add_click(prompts, mode, x, y)
        number = prompts["current"]
        count = len(prompts["objects"][str(number)]["points"])
        status = (
            f"Object {object_chip(number)}: {count} point{'s' if count > 1 else ''}. Click more to refine it, "
            "press **Next object**, or **Segment clip**."
        )
        return shown_frame(first_frame, prompts), prompts, status

    def clear_clicks(self, first_frame: np.ndarray | None):
        """Gradio handler: (prompt image, prompts, status) with every click removed."""
        if first_frame is None:
            return gr.skip(), empty_prompts(), "Nothing to clear."
        return (
            shown_frame(first_frame, empty_prompts()),
            empty_prompts(),
            f"Clicks cleared. Object {object_chip(1)} next.",
        )

    def example_result(self, index: int | None):
        """Gradio handler of a click on example clip `index` (of `video_example_rows`): its strips and settings in
        the inputs, its first frame to click on (no click yet), and the finished result from its mask strip, read
        and computed on the server in one request."""
        if index is None:
            return (gr.skip(),) * 12
        clip_file, frames_path, mask_path, num_frames, seed, greedy = self.example_rows[index]
        frames = np.asarray(Image.open(frames_path).convert("RGB"))
        masks = np.asarray(Image.open(mask_path).convert("RGB"))
        first_frame = clip_frames(clip_file, frames, num_frames)[0]
        results = self.predict_video(clip_file, frames, masks, num_frames, seed, greedy)
        shown = shown_frame(first_frame, empty_prompts())
        return clip_file, frames, masks, num_frames, seed, greedy, shown, first_frame, empty_prompts(), *results

    def build(self) -> None:
        """The video UI: the clip, the first frame to click on (with SAM 2) and the mask strip, controls, the
        per-frame gallery, the table and the example clips."""
        sam2 = bool(self.sources.sam2)
        first_frame, prompts = gr.State(None), gr.State(empty_prompts())
        gr.Markdown(video_help(MAX_VIDEO_FRAMES, self.sources.sam2), elem_id="video_how_to")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                frames_strip, clip_file, mask_strip, prompt_image, mode, next_button, clear_button = _clip_inputs(sam2)
            with gr.Column(scale=2, min_width=300):
                segment = gr.Button("Segment clip", variant="primary", elem_id="segment_video")
                status = gr.Markdown(elem_id="video_status")
                num_frames, seed, greedy = _video_settings()
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
        clip_outputs = [prompt_image, first_frame, prompts]
        outputs = [gallery, table, status]
        with examples_slot:
            examples = gr.Dataset(
                components=[gr.Textbox(render=False)],
                samples=[[video_example_label(row[1])] for row in self.example_rows],
                type="index",
                label="Example clips (synthetic, 8 frames): one click shows the result",
                elem_id="video_examples",
            )
        examples.click(
            self.example_result, examples, [*inputs, *clip_outputs, *outputs], api_visibility="private"
        ).then(None, js=scroll_into_view_js("#video_overlays", "start"))
        segment.click(self.predict_video, inputs=[*inputs, prompts], outputs=outputs, api_name="segment_video").then(
            None, js=scroll_into_view_js("#video_overlays", "start")
        )
        if not sam2:
            return
        for upload in (clip_file.upload, frames_strip.upload):
            upload(
                self.load_clip, [clip_file, frames_strip, num_frames], [*clip_outputs, status], api_visibility="private"
            )
        prompt_image.select(
            self.click_first_frame,
            [first_frame, prompts, mode],
            [prompt_image, prompts, status],
            api_name="click_video",
        )
        next_button.click(next_object, prompts, [prompts, status], api_visibility="private")
        clear_button.click(self.clear_clicks, first_frame, [prompt_image, prompts, status], api_visibility="private")


def display_scale(frame: np.ndarray) -> int:
    """The whole factor by which a small first frame `(H, W, 3)` is enlarged for clicking, so that its longer side
    reaches about `PROMPT_IMAGE_HEIGHT` (gradio shows images at most at their own size); 1 for larger frames."""
    return max(1, PROMPT_IMAGE_HEIGHT // max(frame.shape[:2]))


def shown_frame(frame: np.ndarray, prompts: dict) -> np.ndarray:
    """`(k H, k W, 3)` uint8: the first frame enlarged by `k = display_scale(frame)` (nearest) with the clicks of
    `prompts` (frame pixels) drawn over it (`draw_prompts`) at their enlarged places. A click on it at `(X, Y)` is
    frame pixel `(X // k, Y // k)`."""
    scale = display_scale(frame)
    enlarged = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
    shift = scale // 2
    objects = {
        number: {**prompt, "points": [[x * scale + shift, y * scale + shift] for x, y in prompt["points"]]}
        for number, prompt in prompts["objects"].items()
    }
    layer = np.zeros((*enlarged.shape[:2], 4), dtype=np.uint8)
    return draw_prompts(enlarged, layer, {**prompts, "objects": objects})


def _clip_inputs(sam2: bool) -> tuple:
    """The clip's inputs: without SAM 2 the frames strip, the animated clip file and the mask strip; with SAM 2
    the animated clip first, then the first frame to click on with its click mode and buttons, and the film
    strips in a closed accordion. Returns (frames strip, clip file, mask strip, prompt image, click mode, next
    object button, clear button); the prompt controls are hidden without SAM 2."""
    if sam2:
        clip_file = _clip_file("Animated clip (GIF / APNG / WebP)")
        prompt_controls = _first_frame_controls(sam2)
        with gr.Accordion("Film strips: frames side by side, and every frame's masks instead of clicks", open=False):
            frames_strip, mask_strip = _strip("Frames strip", "frames_strip"), _strip("Mask strip", "mask_strip")
        return frames_strip, clip_file, mask_strip, *prompt_controls
    frames_strip = _strip("Frames strip", "frames_strip")
    clip_file = _clip_file("…or an animated clip")
    mask_strip = _strip("Mask strip", "mask_strip")
    return frames_strip, clip_file, mask_strip, *_first_frame_controls(sam2)


def _strip(label: str, elem_id: str) -> gr.Image:
    """A film strip upload (frames or masks side by side)."""
    return gr.Image(label=label, type="numpy", image_mode="RGB", sources=["upload", "clipboard"], elem_id=elem_id)


def _clip_file(label: str) -> gr.File:
    """The animated clip upload (GIF, APNG, WebP)."""
    return gr.File(label=label, file_types=[".gif", ".png", ".webp"], type="filepath", elem_id="clip_file")


def _first_frame_controls(sam2: bool) -> tuple:
    """The clip's first frame to click objects on (shown, not an upload point), under its click mode and buttons
    (hidden without SAM 2): (prompt image, click mode, next object button, clear button)."""
    with gr.Group(visible=sam2):
        mode = gr.Radio(
            POINT_MODES, value=POINT_MODES[0], label="A click on the first frame adds", elem_id="video_click_mode"
        )
        with gr.Row():
            next_button = gr.Button("Next object", size="sm", elem_id="video_next_object")
            clear_button = gr.Button("Clear clicks", size="sm", elem_id="video_clear_clicks")
        prompt_image = gr.Image(
            label="First frame: click each object",
            type="numpy",
            interactive=False,
            buttons=[],
            height=PROMPT_IMAGE_HEIGHT,
            elem_id="video_prompt_image",
        )
    return prompt_image, mode, next_button, clear_button


def _video_settings() -> tuple:
    """Frames in the strip, seed and greedy decoding in a closed accordion."""
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
    return num_frames, seed, greedy
