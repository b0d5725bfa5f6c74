"""Gradio demo of C2F-Seg amodal segmentation: give the visible part of objects, get their full shapes.

Image tab (`image_tab`). The visible masks live in the editor (`gr.ImageMask`, decoded by `editor`): one brush
colour is one object, numbered in palette order (`c2f_hf.visualization.OBJECT_COLOURS`). With a SAM model
configured (`C2F_HF_SAM_MODEL`, a Hub id or folder, served through the pipeline's `visible_mask_model`), clicks
and boxes on the prompt image give an object's visible mask (`sam_prompts`), written into the editor in its
colour; painting adds to it or corrects it. Photos come from an upload button and are scaled down before they
reach the editor. One click on an example loads its photo and, as the editor's layer, its visible masks, and shows
the finished result, in one request. Results: a before/after slider over the image (visible part tinted, hidden
part hatched, each object outlined in its colour, no number drawn over it), the coarse (VQ) and refined masks side
by side, and a table whose columns add up (amodal = visible + hidden).

Video tab (`video_tab`). A clip as an animated GIF / APNG / WebP or a PNG film strip (frames side by side). With
a SAM 2 model (`C2F_HF_SAM2_MODEL`, served through the video pipeline's `visible_mask_model`), clicks on the clip's
first frame, one object per colour (`sam_prompts`), are tracked through the clip and completed, in one pipeline
call. Without one, or instead of clicks, a mask strip of the clip's layout (`video_inputs`) gives every frame's
visible masks: each object's visible part painted in its colour of the palette on black (or a grayscale label
strip, value k = object k).

Models (`segmenters`) come from `C2F_HF_MODEL` / `C2F_HF_VIDEO_MODEL` (a Hub repo written by `c2f-hf export`, or
a folder), else the models shipped in `c2f_hf`; each is loaded once, at launch or on the first request that needs
it: importing this module or building the page loads none. Requests are queued and run on CPU. A user's mistake
(no image, nothing painted, a bad strip) is a `DemoInputError`: its message goes to the status area, where it
stays until the next action, and to the server log as one line. Texts, legend and CSS are in `page`.

    python app.py
"""

from __future__ import annotations

import logging

import gradio as gr

from c2f_hf.cpu_memory import reuse_freed_memory
from image_tab import ImageTab
from page import CSS, header_markdown
from segmenters import ModelSources
from video_tab import VideoTab

logger = logging.getLogger("c2f_seg_space")


def build_demo(sources: ModelSources | None = None) -> gr.Blocks:
    """The Blocks app with an image and a video tab for the models of `sources` (default: the Space variables),
    queued with one request at a time, since the CPU is the bottleneck. Loads no model: the controls start at
    the image model's defaults, read from its config and processor files."""
    sources = ModelSources.from_environment() if sources is None else sources
    with gr.Blocks(title="C2F-Seg amodal segmentation") as demo:
        gr.Markdown(header_markdown(sources.model_card_url(), bool(sources.sam)), elem_id="header")
        with gr.Tab("Image", elem_id="image_tab"):
            ImageTab(sources).build()
        with gr.Tab("Video", elem_id="video_tab"):
            VideoTab(sources).build()
    return demo.queue(default_concurrency_limit=1)


def launch(demo: gr.Blocks, **kwargs):
    """`demo.launch` with the page's CSS (gradio 6 takes it at launch) and `kwargs` (server name, port, ...), in a
    process whose allocator keeps freed memory for reuse (`c2f_hf.cpu_memory.reuse_freed_memory`: full-size
    activation maps then cost no page faults)."""
    logger.info("allocator keeps freed memory for reuse: %s", reuse_freed_memory())
    return demo.launch(css=CSS, **kwargs)


def main() -> None:
    """Serve the Space: the page for the Space variables' models, the image model loaded before the first visitor
    comes (the video model loads with the first clip)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sources = ModelSources.from_environment()
    demo = build_demo(sources)
    sources.segmenter()
    launch(demo)


if __name__ == "__main__":
    main()
