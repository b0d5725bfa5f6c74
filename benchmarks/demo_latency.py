"""Per-object latency of the Space demo's predict function on CPU (target: under 3 s per object on 2 cores).

Times the Space's own handlers (`spaces_demo/`: the image tab's `predict`, the video tab's `predict_video`) with
the models the Space would serve: `C2F_HF_MODEL` / `C2F_HF_VIDEO_MODEL` when set, else the image and video models
shipped in `c2f_hf`. Runs every shipped image example once to warm up, then `--repeats` times; the video tab the
same way on its shipped example clips (`spaces_demo/examples/video/`, 8 frames of 128x128 each), per clip end to
end. Prints the machine (`common.machine_description`) first. Run it from the repository root:

    OMP_NUM_THREADS=2 python benchmarks/demo_latency.py --threads 2

Smallest run (the first image example and the first clip, one timed pass):

    python benchmarks/demo_latency.py --threads 1 --repeats 1 --max-examples 1
"""

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import machine_description, print_machine
from PIL import Image

DEMO_DIR = Path(__file__).resolve().parents[1] / "spaces_demo"
VIDEO_FRAMES = 8


def space_tabs() -> tuple[Any, Any, Any]:
    """The Space's model sources (from its environment variables), image tab and video tab, imported from
    `spaces_demo/` as the Space runs them: its modules import each other from their own folder."""
    sys.path.insert(0, str(DEMO_DIR))
    sources = importlib.import_module("segmenters").ModelSources.from_environment()
    image_tab = importlib.import_module("image_tab").ImageTab(sources)
    video_tab = importlib.import_module("video_tab").VideoTab(sources)
    return sources, image_tab, video_tab


def editor_values(limit: int | None) -> list[dict]:
    """The image editor's value for each of the first `limit` (None: all) shipped examples: the photo and its
    painted visible-mask layer."""
    values = []
    for mask_path in sorted((DEMO_DIR / "examples").glob("*_mask.png"))[:limit]:
        image = np.asarray(Image.open(str(mask_path).replace("_mask.png", ".png")).convert("RGBA"))
        values.append({"background": image, "layers": [np.asarray(Image.open(mask_path).convert("RGBA"))]})
    return values


def video_inputs(limit: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frames strip, mask strip) of each of the first `limit` (None: all) shipped video examples."""
    inputs = []
    for frames_path in sorted((DEMO_DIR / "examples" / "video").glob("*_frames.png"))[:limit]:
        masks_path = frames_path.with_name(frames_path.name.replace("_frames.png", "_masks.png"))
        inputs.append((np.asarray(Image.open(frames_path).convert("RGB")), np.asarray(Image.open(masks_path))))
    return inputs


def time_images(
    image_tab: Any, values: list[dict], num_steps: int, threshold: float, repeats: int
) -> tuple[int, float]:
    """(objects predicted, seconds) of `predict` at `threshold` over `values` `repeats` times, after one warm-up
    pass."""
    for value in values:
        image_tab.predict(value, num_steps, 0, threshold)
    objects, start = 0, time.perf_counter()
    for _ in range(repeats):
        for value in values:
            objects += len(image_tab.predict(value, num_steps, 0, threshold)[3])
    return objects, time.perf_counter() - start


def time_video(video_tab: Any, clips: list[tuple[np.ndarray, np.ndarray]], repeats: int) -> tuple[int, float]:
    """(clips run, seconds) of `predict_video` over `clips` `repeats` times, after one warm-up pass."""
    for frames, labels in clips:
        video_tab.predict_video(None, frames, labels, VIDEO_FRAMES, 0, False)
    start = time.perf_counter()
    for _ in range(repeats):
        for frames, labels in clips:
            video_tab.predict_video(None, frames, labels, VIDEO_FRAMES, 0, False)
    return len(clips) * repeats, time.perf_counter() - start


def parse_arguments() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the examples (at least 1)")
    parser.add_argument("--num-steps", type=int, help="MaskGIT steps K (default: the model config's)")
    parser.add_argument(
        "--max-examples", type=int, default=None, help="time only the first N image examples and N clips"
    )
    arguments = parser.parse_args()
    if arguments.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {arguments.repeats}")
    if arguments.max_examples is not None and arguments.max_examples < 1:
        parser.error(f"--max-examples must be at least 1, got {arguments.max_examples}")
    return arguments


def main() -> None:
    """Print the machine, then the seconds per object of the image tab and per clip of the video tab."""
    arguments = parse_arguments()
    torch.set_num_threads(arguments.threads)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    print_machine(machine_description(torch.device("cpu")))
    sources, image_tab, video_tab = space_tabs()
    default_steps, threshold = sources.default_settings()
    num_steps = arguments.num_steps or default_steps
    values = editor_values(arguments.max_examples)
    objects, seconds = time_images(image_tab, values, num_steps, threshold, arguments.repeats)
    clips, video_seconds = time_video(video_tab, video_inputs(arguments.max_examples), arguments.repeats)
    print(f"model: {sources.image_model}")
    print(
        f"threads: {arguments.threads}, K = {num_steps}, threshold {threshold}, "
        f"{len(values)} examples x {arguments.repeats} repeats"
    )
    print(f"{objects} objects in {seconds:.2f} s: {seconds / objects:.3f} s per object (predict, end to end)")
    print(f"video model: {sources.video_model}")
    print(
        f"video: {clips} clips of {VIDEO_FRAMES} frames in {video_seconds:.2f} s: {video_seconds / clips:.3f} s per "
        "clip (predict_video, end to end, default K)"
    )


if __name__ == "__main__":
    main()
