"""Video datasets: FISHBOWL and MOViD-A, in the authors' release layouts and in per-object mask folders.

FISHBOWL, the authors' release (`data/dataloader_Fishbowl.py` of amazon-science/c2f-seg):
    root/{train,test}_data/{train,test}_data.pkl   {"<video>_<object>": {frame (int): {"VM": RLE list,
        "FM": RLE list, "VM_bx": ..., "loss_mask_weight": ...}}}  (VM visible, FM amodal; the rest is not read)
    root/{train,test}_data/{train,test}_frames/<video>/<frame:05d>.png
  A clip holds every frame of its folder; an object's masks are empty in frames its entry does not list.
FISHBOWL, per-object folders (read when no `*_data.pkl` is there; also a layout for users' own clips):
    root/<split>/<video_id>/frames/<frame>.png|jpg
    root/<split>/<video_id>/amodal_masks/<object_id>/<frame>.png    (binary: 0/255 or 0/1)
    root/<split>/<video_id>/visible_masks/<object_id>/<frame>.png

MOViD-A, the authors' release (`data/dataloader_MOViD_A.py`):
    root/{train,test}_instance.txt   one `<video>_<object>_<value>` per evaluated object (without it: every
        instance of `metadata.json`, value = index + 1)
    root/<split>/<video>/metadata.json   {"metadata": {"num_frames", "height", "width"}, "instances": [...]}
    root/<split>/<video>/rgba_full_<frame:05d>.png             frames (RGBA; RGB kept)
    root/<split>/<video>/segmentation_full_<frame:05d>.png     visible instance map (== value)
    root/<split>/<video>/segmentation_<object>_<frame:05d>.png amodal mask of the object (== value)
MOViD-A, Kubric-style folders (read when a split has no `rgba_full_*` frames):
    root/<split>/<video_id>/rgba_<frame>.png, segmentation_<frame>.png (0 background, k = instance k),
    amodal/<k>/segmentation_<frame>.png, metadata.json (optional; `instances[k-1].category` names instance k)
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .annotations import (
    AnnotationError,
    read_binary_mask,
    read_json,
    read_list_file,
    read_mask_file,
    read_plain_pickle,
    require,
    rle_to_mask,
)
from .bounds import checked_image_file, inside_root
from .converters import ConversionOptions, SourceObject, ground_truth, reject_predictions, staged_output
from .schema import track_record, video_features

VideoReader = Callable[[Path], tuple[list[Path], list[SourceObject]]]


def video_row(video_id: str, frames: list[Path], tracks: list[SourceObject], options: ConversionOptions) -> dict:
    """A row of `video_features()`; tracks hold `(T, H, W)` masks; tracks never visible are left out. Frames are
    checked to be images inside their folder, all of the masks' size (AnnotationError naming the frame)."""
    sizes = {track.amodal_mask.shape[1:] for track in tracks} | {track.visible_mask.shape[1:] for track in tracks}
    for frame in frames:
        width, height = checked_image_file(inside_root(frame.parent, frame, "frame"), "frame")
        if sizes - {(height, width)}:
            raise AnnotationError(
                f"{frame}: frame of video {video_id} is {width}x{height} (width x height), its masks are (height, "
                f"width) {sorted(sizes)}"
            )
    kept = [ground_truth(track, options) for track in tracks if track.visible_mask.any()]
    return {
        "video_id": video_id,
        "frames": [{"path": str(frame), "bytes": None} for frame in frames],
        "objects": [track_record(*track) for track in kept],
    }


def _sorted_images(folder: Path, pattern: str) -> list[Path]:
    return sorted(path for path in folder.glob(pattern) if path.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _mask_stack(paths: list[Path], video: Path, what: str, value: int | None = None) -> np.ndarray:
    """`(T, H, W)` bool from one mask file per frame (binary masks, or instance maps `== value`)."""
    masks = []
    for path in paths:
        if not path.is_file():
            raise AnnotationError(f"{video}: {what} {path} is missing (every object needs one mask per frame)")
        masks.append(read_binary_mask(path) if value is None else read_mask_file(path) == value)
    shapes = {mask.shape for mask in masks}
    if len(shapes) > 1:
        raise AnnotationError(f"{video}: the {what}s {paths[0].parent} have different sizes {sorted(shapes)}")
    return np.stack(masks)


def _per_object_video(video: Path) -> tuple[list[Path], list[SourceObject]]:
    """Frames and tracks of one per-object-folder video."""
    frames = _sorted_images(video / "frames", "*")
    if not frames:
        raise AnnotationError(f"{video}: folder 'frames' is missing or holds no images")
    names = [f"{frame.stem}.png" for frame in frames]
    tracks = []
    for folder in sorted(path for path in (video / "amodal_masks").glob("*") if path.is_dir()):
        amodal = _mask_stack([folder / name for name in names], video, "mask")
        visible_folder = video / "visible_masks" / folder.name
        visible = _mask_stack([visible_folder / name for name in names], video, "mask")
        tracks.append(SourceObject("object", amodal, visible))
    return frames, tracks


def _kubric_categories(video: Path) -> list[str]:
    path = video / "metadata.json"
    if not path.is_file():
        return []
    instances = require(read_json(path), "instances", list, path, "top level")
    return [str(item.get("category", "object")) if isinstance(item, dict) else "object" for item in instances]


def _kubric_video(video: Path) -> tuple[list[Path], list[SourceObject]]:
    """Frames and tracks of one Kubric-style MOViD-A video folder."""
    frames = _sorted_images(video, "rgba_*")
    if not frames:
        raise AnnotationError(f"{video}: no 'rgba_<frame>.png' frames")
    names = [f"segmentation_{frame.stem.removeprefix('rgba_')}.png" for frame in frames]
    instance_ids = np.stack([_instance_map(video / name, video) for name in names])
    categories = _kubric_categories(video)
    tracks = []
    for folder in sorted((path for path in (video / "amodal").glob("*") if path.is_dir()), key=lambda p: p.name):
        if not folder.name.isdigit():
            raise AnnotationError(f"{video}: amodal folder {folder.name!r} should be an instance id (an integer)")
        instance = int(folder.name)
        category = categories[instance - 1] if 0 < instance <= len(categories) else "object"
        amodal = _mask_stack([folder / name for name in names], video, "mask")
        tracks.append(SourceObject(category, amodal, instance_ids == instance))
    return frames, tracks


def _instance_map(path: Path, video: Path) -> np.ndarray:
    if not path.is_file():
        raise AnnotationError(f"{video}: visible instance map {path} is missing")
    return read_mask_file(path)


def _folder_rows(split_folder: Path, read_video: VideoReader, options: ConversionOptions) -> Iterator[dict]:
    for video in sorted(path for path in split_folder.iterdir() if path.is_dir()):
        frames, tracks = read_video(video)
        yield video_row(video.name, frames, tracks, options)


def _split_folders(root: Path) -> list[Path]:
    splits = sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
    if not splits:
        raise FileNotFoundError(f"{root} holds no split folders (expected e.g. {root}/train/<video_id>/)")
    return splits


def _fishbowl_tracks(entries: dict, frame_numbers: list[int], shape: tuple[int, int], path: Path, video: str) -> list:
    """`SourceObject` tracks `(T, H, W)` of one video from its pickle entries `{object: {frame: masks}}`."""
    tracks = []
    for object_id in sorted(entries, key=lambda name: (len(name), name)):
        frames = entries[object_id]
        if not isinstance(frames, dict):
            raise AnnotationError(f"{path}: entry {video}_{object_id}: should map frame numbers to masks")
        amodal, visible = np.zeros((2, len(frame_numbers), *shape), dtype=bool)
        for position, number in enumerate(frame_numbers):
            masks = frames.get(number, frames.get(str(number)))
            if masks is None:
                continue
            where = f"entry {video}_{object_id}, frame {number}"
            for target, field in ((amodal, "FM"), (visible, "VM")):
                target[position] = rle_to_mask(
                    require(masks, field, (list, dict), path, where), *shape, path, where, field
                )
        tracks.append(SourceObject("fish", amodal, visible))
    return tracks


def _fishbowl_pickle_rows(root: Path, split: str, options: ConversionOptions) -> Iterator[dict]:
    """Rows of one split of the authors' FISHBOWL release."""
    folder = root / f"{split}_data"
    path = folder / f"{split}_data.pkl"
    data = read_plain_pickle(path)
    if not isinstance(data, dict) or not data:
        raise AnnotationError(f"{path}: should be a non-empty dict of '<video>_<object>' entries")
    videos: dict[str, dict] = {}
    for key, entry in data.items():
        video, separator, object_id = str(key).rpartition("_")
        if not separator:
            raise AnnotationError(f"{path}: key {key!r} should be '<video>_<object>'")
        videos.setdefault(video, {})[object_id] = entry
    for video in sorted(videos):
        frames = _sorted_images(folder / f"{split}_frames" / video, "*.png")
        if not frames:
            raise FileNotFoundError(f"{path}: video {video}: no frames in {folder / f'{split}_frames' / video}")
        if not all(frame.stem.isdigit() for frame in frames):
            raise AnnotationError(f"{folder / f'{split}_frames' / video}: frame files should be named <frame:05d>.png")
        shape = read_mask_file(frames[0]).shape[:2]
        tracks = _fishbowl_tracks(videos[video], [int(frame.stem) for frame in frames], shape, path, video)
        yield video_row(video, frames, tracks, options)


def convert_fishbowl(root: Path, out: Path, options: ConversionOptions | None = None) -> dict[str, int]:
    """FISHBOWL -> `out/<split>.parquet`: the authors' `<split>_data/<split>_data.pkl` splits when there are any,
    else one split per folder of `root` in the per-object layout."""
    root, out, options = Path(root), Path(out), options or ConversionOptions()
    reject_predictions(options, "fishbowl")
    pickled = sorted(path.parent.name.removesuffix("_data") for path in root.glob("*_data/*_data.pkl"))
    with staged_output(out) as stage:
        if pickled:
            for split in pickled:
                stage.write(
                    split, _fishbowl_pickle_rows(root, split, options), video_features(), f"{root}/{split}_data"
                )
        else:
            for split in _split_folders(root):
                looked_for = f"{split} (<video>/amodal_masks/<object>/ and visible_masks/<object>/ mask folders)"
                stage.write(split.name, _folder_rows(split, _per_object_video, options), video_features(), looked_for)
        return stage.commit()


def _movid_objects(root: Path, split: str, videos: list[Path]) -> dict[str, list[tuple[int, int]]]:
    """`{video: [(object, value), ...]}` from `<split>_instance.txt`, or every instance of each `metadata.json`."""
    listed = root / f"{split}_instance.txt"
    objects: dict[str, list[tuple[int, int]]] = {}
    if listed.is_file():
        for number, line in enumerate(read_list_file(listed), start=1):
            parts = line.split("_")
            if len(parts) != 3 or not all(part.isdigit() for part in parts):
                raise AnnotationError(f"{listed}: line {number}: {line!r} should be <video>_<object>_<value>")
            objects.setdefault(str(int(parts[0])), []).append((int(parts[1]), int(parts[2])))
        return objects
    for video in videos:
        instances = require(read_json(video / "metadata.json"), "instances", list, video / "metadata.json", "top level")
        objects[video.name] = [(index, index + 1) for index in range(len(instances))]
    return objects


def _movid_metadata(video: Path) -> tuple[int, list]:
    path = video / "metadata.json"
    metadata = read_json(path)
    num_frames = require(require(metadata, "metadata", dict, path, "top level"), "num_frames", int, path, "metadata")
    return num_frames, require(metadata, "instances", list, path, "top level")


def _movid_category(instances: list, index: int) -> str:
    instance = instances[index] if 0 <= index < len(instances) and isinstance(instances[index], dict) else {}
    return str(instance.get("category", instance.get("asset_id", "object")))


def _movid_release_rows(root: Path, split_folder: Path, options: ConversionOptions) -> Iterator[dict]:
    """Rows of one split of the authors' MOViD-A release."""
    videos = sorted(path for path in split_folder.iterdir() if path.is_dir())
    objects = _movid_objects(root, split_folder.name, videos)
    for video_id in sorted(objects, key=lambda name: (len(name), name)):
        video = split_folder / video_id
        if not video.is_dir():
            raise FileNotFoundError(
                f"{root}/{split_folder.name}_instance.txt names video {video_id}: {video} is missing"
            )
        num_frames, instances = _movid_metadata(video)
        frames = [video / f"rgba_full_{frame:05d}.png" for frame in range(num_frames)]
        missing = [frame for frame in frames if not frame.is_file()]
        if missing:
            raise FileNotFoundError(f"{video}: frame {missing[0].name} is missing ({len(missing)} of {num_frames})")
        visible_maps = [video / f"segmentation_full_{frame:05d}.png" for frame in range(num_frames)]
        tracks = []
        for object_id, value in objects[video_id]:
            amodal_paths = [video / f"segmentation_{object_id}_{frame:05d}.png" for frame in range(num_frames)]
            amodal = _mask_stack(amodal_paths, video, "amodal mask", value)
            visible = _mask_stack(visible_maps, video, "visible instance map", value)
            tracks.append(SourceObject(_movid_category(instances, object_id), amodal, visible))
        yield video_row(video_id, frames, tracks, options)


def convert_movid_a(root: Path, out: Path, options: ConversionOptions | None = None) -> dict[str, int]:
    """MOViD-A -> `out/<split>.parquet` for each split folder of `root` (the authors' layout where a split holds
    `rgba_full_*` frames, else the Kubric-style one)."""
    root, out, options = Path(root), Path(out), options or ConversionOptions()
    reject_predictions(options, "movid_a")
    with staged_output(out) as stage:
        for split in _split_folders(root):
            if any(split.glob("*/rgba_full_*.png")):
                rows = _movid_release_rows(root, split, options)
                looked_for = (
                    f"{split} (rgba_full_*, segmentation_full_*, segmentation_<object>_* of {split.name}_instance.txt)"
                )
            else:
                rows = _folder_rows(split, _kubric_video, options)
                looked_for = f"{split} (rgba_<frame>.png, segmentation_<frame>.png and amodal/<k>/ folders)"
            stage.write(split.name, rows, video_features(), looked_for)
        return stage.commit()


__all__ = ["convert_fishbowl", "convert_movid_a"]
