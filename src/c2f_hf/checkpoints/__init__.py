"""Checkpoints shipped inside the package (package data), so they work offline and after `pip install`."""

from importlib.resources import files
from pathlib import Path

DEFAULT_MODEL_NAME = "c2f-seg-synthetic-tiny"


def default_model_path() -> Path:
    """Folder of the shipped default model (`save_pretrained` layout, trained on the synthetic benchmark)."""
    path = Path(str(files(__name__) / DEFAULT_MODEL_NAME))
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"the shipped default model is missing: {path} has no config.json")
    return path
