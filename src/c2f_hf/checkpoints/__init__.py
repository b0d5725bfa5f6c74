"""Checkpoints shipped inside the package (package data), so they work offline and after `pip install`."""

from importlib.resources import files
from pathlib import Path

DEFAULT_MODEL_NAME = "c2f-seg-synthetic-tiny"
DEFAULT_VIDEO_MODEL_NAME = "c2f-seg-synthetic-tiny-video"


def _shipped(name: str) -> Path:
    path = Path(str(files(__name__) / name))
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"the shipped model {name} is missing: {path} has no config.json")
    return path


def default_model_path() -> Path:
    """Folder of the shipped default image model (`save_pretrained` layout, trained on the synthetic benchmark)."""
    return _shipped(DEFAULT_MODEL_NAME)


def default_video_model_path() -> Path:
    """Folder of the shipped default video model (T = 4 frames, trained on the synthetic video benchmark)."""
    return _shipped(DEFAULT_VIDEO_MODEL_NAME)
