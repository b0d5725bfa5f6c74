"""The video tab: a clip and its mask strip (`video_inputs`), one video pipeline call for all objects' tracks, and
the results: one overlay per frame in a gallery and a table per object and frame. There is no video tracker, so
every frame needs its masks. `VideoTab` holds its handlers and lays it out; the example clips come from
`examples/video/`."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from c2f_hf.visualization import OBJECT_COLOURS, draw_amodal_overlay
from page import LEGEND_HTML, TABLE_HELP, DemoInputError, object_chip, problem, scroll_into_view_js, video_help
from segmenters import ModelSources, result_mask
from video_inputs import MAX_VIDEO_FRAMES, labels_from_mask_strip, read_video_inputs

VIDEO_EXAMPLES_DIR = Path(__file__).resolve().parent / "examples" / "video"
VIDEO_TABLE_HEADERS = ["#", "frame", "visible", "hidden", "amodal", "occl. %", "score"]


@dataclass
class VideoDemoOutput:
    """What one video request produces: one `(H, W, 3)` uint8 overlay per frame, one table row per object and
    frame, and the seconds the model took."""

    overlays: list[np.ndarray]
    rows: list[list]
    seconds: float = 0.0


def object_problem(error: ValueError, numbers: list[int]) -> DemoInputError:
    """The video pipeline's complaint as a DemoInputError: one about track `visible_masks[i]` names object
    `numbers[i]` instead; one about the clip as it is."""
    track = re.match(r"visible_masks\[(\d+)\]", str(error))
    if track is None:
        return DemoInputError(f"{error}.")
    return DemoInputError(f"Object {numbers[int(track[1])]}: {str(error).split(': ', 1)[-1]}.")


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
    """The video tab for the video model of `sources`: its Gradio handlers and its layout (`build`)."""

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

    def run_video_demo(
        self,
        clip_file: str | None,
        frames_strip: np.ndarray | None,
        mask_strip: np.ndarray | None,
        num_frames: int,
        seed: int,
        greedy: bool,
    ) -> VideoDemoOutput:
        """Segment every object of a clip in every frame; raises DemoInputError for bad input."""
        frames, objects = read_video_inputs(clip_file, frames_strip, mask_strip, num_frames)
        self.sources.video_segmenter()
        start = time.perf_counter()
        results = self.segment_tracks(frames, objects, int(seed), bool(greedy))
        seconds = time.perf_counter() - start
        return VideoDemoOutput(
            overlays=video_overlays(frames, objects, results), rows=video_rows(objects, results), seconds=seconds
        )

    def predict_video(
        self,
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
            output = self.run_video_demo(clip_file, frames_strip, mask_strip, num_frames, seed, greedy)
        except DemoInputError as error:
            return None, None, problem(str(error))
        gallery = [(overlay, f"frame {frame}") for frame, overlay in enumerate(output.overlays)]
        numbers = sorted({row[0] for row in output.rows})
        chips = " ".join(object_chip(number) for number in numbers)
        objects = f"{len(numbers)} object{'s' if len(numbers) > 1 else ''}"
        frames = f"{len(gallery)} frame{'s' if len(gallery) > 1 else ''}"
        status = f"Done: {objects} {chips} over {frames} in "
        return gallery, output.rows, status + f"{output.seconds:.2f} s. Hatched = hidden part the model predicts."

    def example_result(self, index: int | None):
        """Gradio handler of a click on example clip `index` (of `video_example_rows`): its strips and settings in
        the inputs and the finished result, read and computed on the server in one request."""
        if index is None:
            return (gr.skip(),) * 9
        clip_file, frames_path, mask_path, num_frames, seed, greedy = self.example_rows[index]
        frames = np.asarray(Image.open(frames_path).convert("RGB"))
        masks = np.asarray(Image.open(mask_path).convert("RGB"))
        results = self.predict_video(clip_file, frames, masks, num_frames, seed, greedy)
        return clip_file, frames, masks, num_frames, seed, greedy, *results

    def build(self) -> None:
        """The video UI: the clip and mask strip, controls, the per-frame gallery, the table and the example
        clips."""
        gr.Markdown(video_help(MAX_VIDEO_FRAMES))
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                frames_strip, clip_file, mask_strip = _clip_inputs()
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
        outputs = [gallery, table, status]
        with examples_slot:
            examples = gr.Dataset(
                components=[gr.Textbox(render=False)],
                samples=[[video_example_label(row[1])] for row in self.example_rows],
                type="index",
                label="Example clips (synthetic, 8 frames): one click shows the result",
                elem_id="video_examples",
            )
        examples.click(self.example_result, examples, [*inputs, *outputs], api_visibility="private").then(
            None, js=scroll_into_view_js("#video_overlays", "start")
        )
        segment.click(self.predict_video, inputs=inputs, outputs=outputs, api_name="segment_video").then(
            None, js=scroll_into_view_js("#video_overlays", "start")
        )


def _clip_inputs() -> tuple:
    """The frames strip, the animated clip file and the mask strip."""
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
    return frames_strip, clip_file, mask_strip


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
