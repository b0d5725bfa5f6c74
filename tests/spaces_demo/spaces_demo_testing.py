"""Helpers of the Space tests: where the Space is, and its shipped examples as its components hand them over."""

from pathlib import Path

import numpy as np
from PIL import Image

DEMO_DIR = Path(__file__).resolve().parents[2] / "spaces_demo"


def example_value(name: str) -> dict:
    """The editor value of a shipped example as gr.ImageMask hands it to the handler (RGBA arrays)."""
    background = np.asarray(Image.open(DEMO_DIR / "examples" / f"{name}.png").convert("RGBA"))
    layer = np.asarray(Image.open(DEMO_DIR / "examples" / f"{name}_mask.png").convert("RGBA"))
    return {"background": background, "layers": [layer], "composite": background}


def video_example(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(frames strip `(H, 8 W, 3)`, colour mask strip `(H, 8 W, 3)`) of a shipped video example, as gr.Image
    hands them over."""
    folder = DEMO_DIR / "examples" / "video"
    frames = np.asarray(Image.open(folder / f"{name}_frames.png").convert("RGB"))
    return frames, np.asarray(Image.open(folder / f"{name}_masks.png").convert("RGB"))
