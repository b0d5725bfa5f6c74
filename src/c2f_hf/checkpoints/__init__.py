"""Checkpoints shipped inside the package (package data), so they work offline and after `pip install`.

Every file of a shipped folder (weights, `config.json`, `preprocessor_config.json`, the card) has its SHA-256
digest in `SHIPPED_SHA256`, and a folder holding any other file, lacking one or with another digest is refused
(ValueError naming the file). The check runs once per process on every path that loads a shipped folder: through
`default_model_path()` / `default_video_model_path()`, and, registered with the model bundle's folder checks, on
any `from_pretrained` of a shipped folder, as `pipeline("amodal-segmentation")` with no model does.

Re-training a shipped model or editing its card means re-recording its digests: paste
`{name: folder_digests(shipped_folder(name)) for name in SHIPPED_SHA256}` here.
"""

import hashlib
from functools import cache
from importlib.resources import files
from pathlib import Path

from ..models.c2f_seg.saved_folder_checks import register_folder_check

DEFAULT_MODEL_NAME = "c2f-seg-synthetic-tiny"
DEFAULT_VIDEO_MODEL_NAME = "c2f-seg-synthetic-tiny-video"
SHIPPED_SHA256 = {
    DEFAULT_MODEL_NAME: {
        "README.md": "59cdb3554ae9cc352c84b7abeb0cf74ee2f9493a0d47e51f96de1ad20c70848f",
        "config.json": "9a8e987e78bac6f223e659af19b7a6bdb336f10f26c8d029c4ad6fbc2226a31a",
        "model.safetensors": "e5232121b4f1e1231f7b4fa3d48377100d210f3223b9f7da24f24e6ddb0c38d6",
        "preprocessor_config.json": "b494e51bd4fdb2990d66fe1fb621848c579ccadf37816ba6f202c56d11e07acc",
    },
    DEFAULT_VIDEO_MODEL_NAME: {
        "README.md": "3853a4039510ec81203180d744a85054f2b9b7f0fa534b3cd9f7b719bd9d8f10",
        "config.json": "b2d8853cb48d2064d2e9daec3c15bbf6e49dc4f559df42d0bca84aff17730dc4",
        "model.safetensors": "5f0581fec220ff993655800aecd94e1a74e37a72ddfde1b87976970dc2365a72",
        "preprocessor_config.json": "46b94166fd6714a851a495fe4127f32db934b0f12f15d9512af3245276d9f452",
    },
}


def file_sha256(path: Path) -> str:
    """Hex SHA-256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """`{file name: SHA-256}` of every entry of `folder` (what `SHIPPED_SHA256` records; a sub-folder is listed
    with an empty digest, so it never matches)."""
    return {path.name: file_sha256(path) if path.is_file() else "" for path in sorted(folder.iterdir())}


def verify_model_folder(folder: Path, expected: dict[str, str]) -> Path:
    """`folder` when its files are exactly those of `expected` (`{name: SHA-256}`) with those digests; raises
    FileNotFoundError naming a missing folder or file and ValueError naming an extra file or a changed one (with
    both digests)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"the shipped model at {folder} is missing")
    found = folder_digests(folder)
    missing = sorted(set(expected) - set(found))
    if missing:
        raise FileNotFoundError(f"the shipped model at {folder} has no {', '.join(missing)}")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise ValueError(f"the shipped model at {folder} holds files it was not shipped with: {', '.join(extra)}")
    for name, digest in expected.items():
        if found[name] != digest:
            raise ValueError(
                f"{folder / name}: SHA-256 {found[name]} is not the shipped file's {digest}; the installation is "
                "damaged or the file was replaced: reinstall c2f_hf"
            )
    return folder


def shipped_folder(name: str) -> Path:
    """Where the shipped model `name` lies inside the installed package (verified when a model is loaded from it,
    or by `default_model_path()`)."""
    return Path(str(files(__name__) / name))


@cache
def _shipped(name: str) -> Path:
    return verify_model_folder(shipped_folder(name), SHIPPED_SHA256[name])


def verify_if_shipped(folder: Path) -> None:
    """Verify `folder` (once per process) when it is one of the shipped folders; other folders pass."""
    resolved = folder.resolve()
    for name in SHIPPED_SHA256:
        if resolved == shipped_folder(name).resolve():
            _shipped(name)


register_folder_check(verify_if_shipped)


def default_model_path() -> Path:
    """Folder of the shipped default image model (`save_pretrained` layout, trained on the synthetic benchmark),
    every file verified."""
    return _shipped(DEFAULT_MODEL_NAME)


def default_video_model_path() -> Path:
    """Folder of the shipped default video model (T = 4 frames, trained on the synthetic video benchmark), every
    file verified."""
    return _shipped(DEFAULT_VIDEO_MODEL_NAME)
