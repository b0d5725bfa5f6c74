"""Checkpoints shipped inside the package (package data), so they work offline and after `pip install`.

`default_model_path()` and `default_video_model_path()` check the shipped `model.safetensors` against the SHA-256
digests below (once per process), so a damaged or swapped file is an error rather than a silently different model.
Re-training a shipped model means updating its digest here (`sha256sum */model.safetensors`).
"""

import hashlib
from functools import cache
from importlib.resources import files
from pathlib import Path

DEFAULT_MODEL_NAME = "c2f-seg-synthetic-tiny"
DEFAULT_VIDEO_MODEL_NAME = "c2f-seg-synthetic-tiny-video"
SHIPPED_WEIGHTS_SHA256 = {
    DEFAULT_MODEL_NAME: "d5114f39a98465252813abe08a3d27e7b51805492b4c2f87deb0ec7d15b25a7f",
    DEFAULT_VIDEO_MODEL_NAME: "f752dced086b47e16a21aab166f71e1562a8a102caffb54067c6ada5e80ffa4e",
}
WEIGHTS_FILE = "model.safetensors"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model_folder(folder: Path, expected_sha256: str) -> Path:
    """`folder` when it holds `config.json` and a `model.safetensors` with the expected digest; raises
    FileNotFoundError when a file is missing and ValueError naming the file and both digests otherwise."""
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"the shipped model at {folder} is missing: it has no config.json")
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"the shipped model at {folder} has no {WEIGHTS_FILE}")
    found = file_sha256(weights)
    if found != expected_sha256:
        raise ValueError(
            f"{weights}: SHA-256 {found} is not the shipped weights' {expected_sha256}; the installation is damaged "
            "or the file was replaced: reinstall c2f_hf"
        )
    return folder


def shipped_folder(name: str) -> Path:
    """Where the shipped model `name` lies inside the installed package (not verified: see `_shipped`)."""
    return Path(str(files(__name__) / name))


@cache
def _shipped(name: str) -> Path:
    return verify_model_folder(shipped_folder(name), SHIPPED_WEIGHTS_SHA256[name])


def default_model_path() -> Path:
    """Folder of the shipped default image model (`save_pretrained` layout, trained on the synthetic benchmark),
    its weights verified."""
    return _shipped(DEFAULT_MODEL_NAME)


def default_video_model_path() -> Path:
    """Folder of the shipped default video model (T = 4 frames, trained on the synthetic video benchmark), its
    weights verified."""
    return _shipped(DEFAULT_VIDEO_MODEL_NAME)
