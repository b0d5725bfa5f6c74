"""Users' own images with one amodal and one visible mask PNG per object.

Layout (any number of split folders; masks binary, 0/255 or 0/1, at the image's size):
    root/<split>/images/<name>.png|jpg
    root/<split>/amodal/<name>/<object>.png
    root/<split>/visible/<name>/<object>.png     (the same object names as under amodal/)

Suffixes are matched in any case (`.PNG`). Nothing is dropped silently: a visible mask without its amodal one (or
the other way round), a mask folder that names no image (e.g. a case-different name), a mask whose values are not
binary (anti-aliased), a mask of another size than its image, and a file that leads outside the folder it is
listed in (a symlink; a split folder may itself be one) are errors naming the file.
"""

from collections.abc import Iterator
from pathlib import Path

from .annotations import AnnotationError, read_binary_mask
from .bounds import checked_image_file, inside_root
from .converters import ConversionOptions, SourceObject, image_row, reject_predictions, staged_output
from .schema import image_features

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MASK_KINDS = ("amodal", "visible")


def _mask_files(folder: Path) -> dict[str, Path]:
    """The `.png` files (any case) of one `amodal/<name>/` or `visible/<name>/` folder by object name, each
    resolving inside that folder."""
    files = sorted(path for path in folder.glob("*") if path.suffix.lower() == ".png") if folder.is_dir() else []
    return {path.stem: inside_root(folder, path, "mask file") for path in files}


def _image_objects(split: Path, image: Path, size: tuple[int, int]) -> list[SourceObject]:
    """The objects of one image (of `size` `(width, height)`) from its `amodal/<name>/` and `visible/<name>/`
    mask files."""
    amodal_files, visible_files = (_mask_files(split / kind / image.stem) for kind in MASK_KINDS)
    unpaired = sorted(visible_files.keys() - amodal_files.keys())
    if unpaired:
        visible_path = visible_files[unpaired[0]]
        raise AnnotationError(
            f"{visible_path}: visible/{image.stem}/{visible_path.name} has no amodal mask (expected "
            f"{split / 'amodal' / image.stem / visible_path.name})"
        )
    objects = []
    for name, amodal_path in amodal_files.items():
        visible_path = visible_files.get(name)
        if visible_path is None:
            raise AnnotationError(
                f"{amodal_path}: its visible mask {split / 'visible' / image.stem / amodal_path.name} is missing"
            )
        amodal, visible = read_binary_mask(amodal_path), read_binary_mask(visible_path)
        for path, mask in ((amodal_path, amodal), (visible_path, visible)):
            if mask.shape != (size[1], size[0]):
                raise AnnotationError(
                    f"{path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from image {image.name}'s size "
                    f"{size[0]}x{size[1]} (width x height)"
                )
        objects.append(SourceObject(name, amodal, visible))
    return objects


def _check_mask_folders(split: Path, images: list[Path]) -> None:
    """AnnotationError naming a folder under `amodal/` or `visible/` whose name is no image's (e.g. other case)."""
    stems = {image.stem for image in images}
    for kind in MASK_KINDS:
        folders = sorted(path for path in (split / kind).glob("*") if path.is_dir())
        for folder in folders:
            if folder.name not in stems:
                raise AnnotationError(
                    f"{split}: {kind}/{folder.name} matches no image in images/ (names are case-sensitive)"
                )


def _folder_rows(split: Path, options: ConversionOptions) -> Iterator[dict]:
    images = sorted(path for path in (split / "images").glob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"{split / 'images'}: no .png / .jpg images")
    _check_mask_folders(split, images)
    for image in images:
        size = checked_image_file(inside_root(image.parent, image, "image"), "image")
        value = {"path": str(image), "bytes": None}
        yield image_row(value, image.name, _image_objects(split, image, size), None, options)


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
