"""Per-object latency of the Space demo's predict function on CPU (target: under 3 s per object on 2 cores).

Uses the shipped default model when it exists, else a randomly initialised `tiny` preset model (same size as the
shipped one) saved to a temporary folder. Runs every shipped example once to warm up, then `--repeats` times.
The video tab is timed the same way on its shipped example clips (`examples/video/`, 8 frames of 128x128 each) with
the shipped video model (or `C2F_HF_VIDEO_MODEL`), per clip end to end through `predict_video`.

    OMP_NUM_THREADS=2 python benchmarks/demo_latency.py --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.checkpoints import default_model_path
from c2f_hf.presets import model_config

DEMO_DIR = Path(__file__).resolve().parents[1] / "spaces_demo"


def model_folder(scratch: Path) -> tuple[str, str]:
    """(folder, description) of the model to time."""
    try:
        return str(default_model_path()), "shipped default model"
    except FileNotFoundError:
        torch.manual_seed(0)
        config = model_config("tiny")
        C2FSegForAmodalSegmentation(config).save_pretrained(scratch)
        C2FSegImageProcessor(crop_resolution=config.image_size).save_pretrained(scratch)
        return str(scratch), "random tiny-preset model (the shipped one does not exist yet)"


def load_app():
    spec = importlib.util.spec_from_file_location("spaces_demo_app", DEMO_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def editor_values() -> list[dict]:
    values = []
    for mask_path in sorted((DEMO_DIR / "examples").glob("*_mask.png")):
        image = np.asarray(Image.open(str(mask_path).replace("_mask.png", ".png")).convert("RGBA"))
        values.append({"background": image, "layers": [np.asarray(Image.open(mask_path).convert("RGBA"))]})
    return values


def video_inputs() -> list[tuple[np.ndarray, np.ndarray]]:
    """(frames strip, mask strip) of every shipped video example."""
    inputs = []
    for frames_path in sorted((DEMO_DIR / "examples" / "video").glob("*_frames.png")):
        masks_path = frames_path.with_name(frames_path.name.replace("_frames.png", "_masks.png"))
        inputs.append((np.asarray(Image.open(frames_path).convert("RGB")), np.asarray(Image.open(masks_path))))
    return inputs


def time_video(app, repeats: int) -> tuple[int, float]:
    """(clips run, seconds) of `predict_video` over the video examples `repeats` times, after one warm-up pass."""
    clips = video_inputs()
    for frames, labels in clips:
        app.predict_video(None, frames, labels, 8, 0, False)
    start = time.perf_counter()
    for _ in range(repeats):
        for frames, labels in clips:
            app.predict_video(None, frames, labels, 8, 0, False)
    return len(clips) * repeats, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-steps", type=int, help="MaskGIT steps K (default: the model config's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    with tempfile.TemporaryDirectory() as scratch:
        folder, description = model_folder(Path(scratch))
        os.environ["C2F_HF_MODEL"] = folder
        app = load_app()
        args.num_steps = args.num_steps or app.default_settings()[0]
        values = editor_values()
        for value in values:
            app.predict(value, args.num_steps, 0, 0.5)
        objects, start = 0, time.perf_counter()
        for _ in range(args.repeats):
            for value in values:
                objects += len(app.predict(value, args.num_steps, 0, 0.5)[3])
        seconds = time.perf_counter() - start
        clips, video_seconds = time_video(app, args.repeats)
    print(f"model: {description} ({folder})")
    print(f"threads: {args.threads}, K = {args.num_steps}, {len(values)} examples x {args.repeats} repeats")
    print(f"{objects} objects in {seconds:.2f} s: {seconds / objects:.3f} s per object (predict, end to end)")
    print(f"video model: {app.video_model_source()}")
    print(
        f"video: {clips} clips of 8 frames in {video_seconds:.2f} s: {video_seconds / clips:.3f} s per clip "
        "(predict_video, end to end, default K)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
