"""Video clips as images: the video->frames transform that lets image models train and evaluate on video data.

A video dataset (`schema.video_features()`) becomes an image dataset (`schema.image_features()`) with one row per
frame (image id `"<video_id>/<frame index>"`) whose objects are the tracks visible in that frame: a track whose
visible mask is empty in a frame is left out of it, because the crop is taken from the visible mask.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import datasets

from .schema import image_features, load_amodal_dataset, split_path, write_split
from .transforms import decode_mask


def frame_dataset(clips: datasets.Dataset, folder: str | Path, max_objects: int | None = None) -> datasets.Dataset:
    """A video dataset (`video_features()`) as an image dataset (`image_features()`), one row per frame that shows
    at least one object, written to `<folder>/test.parquet` and read back. Objects whose visible mask is empty in
    a frame are left out of that frame. With `max_objects`, frames stop once that many objects are written."""
    path = split_path(folder, "test")
    write_split(_frame_rows(clips, max_objects), image_features(), path)
    return load_amodal_dataset(folder, "test", cache_dir=str(Path(folder) / "cache"))


def _frame_rows(clips: datasets.Dataset, max_objects: int | None) -> Iterator[dict]:
    """Image-schema rows of the frames of `clips`; only the visible masks are decoded (to find empty ones)."""
    num_objects = 0
    for table in clips.with_format("arrow").iter(batch_size=1):
        clip = table.to_pylist()[0]
        for frame_index, frame in enumerate(clip["frames"]):
            objects = [_frame_object(track, frame_index) for track in clip["objects"]]
            objects = [item for item in objects if item is not None]
            if not objects:
                continue
            yield {"image_id": f"{clip['video_id']}/{frame_index}", "image": frame, "objects": objects}
            num_objects += len(objects)
            if max_objects is not None and num_objects >= max_objects:
                return


def _frame_object(track: dict, frame_index: int) -> dict | None:
    """One track of a clip at one frame as an `objects` entry, None when it is not visible there."""
    visible_mask = track["visible_masks"][frame_index]
    if not decode_mask(visible_mask).any():
        return None
    return {
        "amodal_mask": track["amodal_masks"][frame_index],
        "visible_mask": visible_mask,
        "bbox": track["bboxes"][frame_index],
        "category": track["category"],
        "occlusion_rate": track["occlusion_rates"][frame_index],
    }


__all__ = ["frame_dataset"]
