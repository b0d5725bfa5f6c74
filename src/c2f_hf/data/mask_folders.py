"""Users' own images with one amodal and one visible mask PNG per object.

Layout (any number of split folders; masks non-zero = object, at the image's size):
    root/<split>/images/<name>.png|jpg
    root/<split>/amodal/<name>/<object>.png
    root/<split>/visible/<name>/<object>.png     (the same object names as under amodal/)
"""

from collections.abc import Iterator
from pathlib import Path

from .annotations import AnnotationError, read_mask_file
from .converters import ConversionOptions, SourceObject, image_row, reject_predictions, staged_output
from .schema import image_features

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _image_objects(split: Path, image: Path) -> list[SourceObject]:
    """The objects of one image from its `amodal/<name>/` and `visible/<name>/` mask files."""
    amodal_folder, visible_folder = split / "amodal" / image.stem, split / "visible" / image.stem
    objects = []
    for amodal_path in sorted(amodal_folder.glob("*.png")):
        visible_path = visible_folder / amodal_path.name
        if not visible_path.is_file():
            raise AnnotationError(f"{amodal_path}: its visible mask {visible_path} is missing")
        amodal, visible = read_mask_file(amodal_path) > 0, read_mask_file(visible_path) > 0
        if amodal.shape != visible.shape:
            raise AnnotationError(f"{visible_path}: size {visible.shape} differs from {amodal_path}'s {amodal.shape}")
        objects.append(SourceObject(amodal_path.stem, amodal, visible))
    return objects


def _folder_rows(split: Path, options: ConversionOptions) -> Iterator[dict]:
    images = sorted(path for path in (split / "images").glob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"{split / 'images'}: no .png / .jpg images")
    for image in images:
        value = {"path": str(image), "bytes": None}
        yield image_row(value, image.name, _image_objects(split, image), None, options)


def convert_mask_folder(root: Path, out: Path, options: ConversionOptions | None = None) -> dict[str, int]:
    """Every `root/<split>/` with an `images/` folder -> `out/<split>.parquet`."""
    root, out, options = Path(root), Path(out), options or ConversionOptions()
    splits = sorted(path for path in root.glob("*") if (path / "images").is_dir()) if root.is_dir() else []
    if not splits:
        raise FileNotFoundError(
            f"{root} holds no split folder with an images/ folder (expected {root}/<split>/images/)"
        )
    reject_predictions(options, "mask_folder")
    with staged_output(out) as stage:
        for split in splits:
            looked_for = f"{split} (amodal/<image>/<object>.png with visible/<image>/<object>.png)"
            stage.write(split.name, _folder_rows(split, options), image_features(), looked_for)
        return stage.commit()


__all__ = ["convert_mask_folder"]
