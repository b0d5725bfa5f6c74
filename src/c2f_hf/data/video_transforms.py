"""The object-clip transform of the video variant, used by training (`c2f-hf train --preset tiny_video`).

A video dataset row (one clip, several tracked objects, `schema.video_features()`) becomes one sample per
(clip, object, window): T consecutive frames (T = the model's `num_frames`) whose windows start every `stride`
frames (default T // 2, plus a last window ending at the clip's end, `video_processing_c2f_seg.window_starts`),
kept only when the object is visible in at least one frame of the window. All frames of a window are cropped
with **one** box: the authors' crop rule applied to the union of the object's visible masks over the window
(`clip_crop_box`); frames where the object is fully hidden keep an empty visible mask, so the model learns to
predict its amodal mask from the other frames. (The authors crop each frame with its own box and rescale all
frames by one factor; one box per window keeps the object's motion visible inside the crops and makes
paste-back a single box.)

Training draws, per window, one enlarge ratio uniform in [1.5, 3] and one horizontal flip (probability 0.5), and
augments each frame's input visible mask independently like the image transform (`VisibleMaskAugmentation`).
Randomness comes from `numpy.random.default_rng([seed, epoch, index])`.

Windows are indexed from the `bboxes` and `occlusion_rates` columns without decoding any image: an object is
visible in a frame when its amodal box is not empty and its occlusion rate is below 1.
"""

from dataclasses import dataclass

import datasets
import numpy as np
import torch

from ..models.c2f_seg.mask_geometry import clip_crop_box, crop_image, crop_mask
from ..models.c2f_seg.video_processing_c2f_seg import window_starts
from .transforms import ObjectCropTransform, decode_mask, decode_rgb


def visible_frames(dataset: datasets.Dataset) -> list[list[np.ndarray]]:
    """Per row, per object: `(frames,)` bool, True where the object is at least partly visible."""
    visibility = []
    for table in dataset.select_columns(["objects"]).with_format("arrow").iter(batch_size=256):
        for objects in table.column("objects").to_pylist():
            visibility.append(
                [
                    np.array([box[2] > 0 and rate < 1.0 for box, rate in zip(item["bboxes"], item["occlusion_rates"])])
                    for item in objects
                ]
            )
    return visibility


def object_window_index(dataset: datasets.Dataset, num_frames: int, stride: int | None = None) -> np.ndarray:
    """`(N, 3)` int64 `(row, object, start frame)` of every window of T = `num_frames` frames in which the object
    is visible at least once. Windows start every `stride` frames (default T // 2) plus one ending at the last
    frame; clips shorter than T are skipped."""
    entries = []
    for row, objects in enumerate(visible_frames(dataset)):
        for position, visible in enumerate(objects):
            if len(visible) < num_frames:
                continue
            starts = window_starts(len(visible), num_frames)
            if stride is not None:
                starts = sorted(set(range(0, len(visible) - num_frames + 1, stride)) | {starts[-1]})
            entries += [(row, position, start) for start in starts if visible[start : start + num_frames].any()]
    return np.array(entries, dtype=np.int64).reshape(-1, 3)


@dataclass(frozen=True)
class ClipCropTransform(ObjectCropTransform):
    """Crops one object over a window of decoded frames with one box (`clip_crop_box`); the settings, the random
    geometry, the augmentation and the flip are `ObjectCropTransform`'s."""

    def __call__(
        self,
        frames: list[np.ndarray],
        visible_masks: list[np.ndarray],
        amodal_masks: list[np.ndarray],
        rng: np.random.Generator,
    ) -> dict[str, torch.Tensor]:
        """T frames `(H, W, 3)` uint8 and `(H, W)` bool masks -> `pixel_values (T, 3, S, S)`, `visible_masks`,
        `visible_mask_targets`, `amodal_masks` `(T, 1, S, S)` in {0, 1}, `crop_box (4,)` and `flipped`."""
        enlarge_ratio, flipped = self.draw_geometry(rng)
        box = clip_crop_box(visible_masks, enlarge_ratio)
        targets = torch.stack([crop_mask(mask, box, self.crop_size) for mask in visible_masks])
        sample = {
            "pixel_values": torch.stack([crop_image(frame, box, self.crop_size) for frame in frames]),
            "visible_masks": self.augment(targets, rng),
            "visible_mask_targets": targets,
            "amodal_masks": torch.stack([crop_mask(mask, box, self.crop_size) for mask in amodal_masks]),
        }
        return self.finish(sample, box, flipped)


class VideoObjectClipDataset(torch.utils.data.Dataset):
    """Per-object windows of a video dataset (`schema.video_features()`), one sample per
    `object_window_index` entry; rows are read lazily and a sample decodes only its window's frames and masks.

    A sample holds the crops of `ClipCropTransform` plus `image_index` (the clip's row), `object_index`,
    `start_frame`, `image_height`, `image_width` (long scalars) and `occlusion_rates (T,)` float.
    """

    def __init__(
        self,
        dataset: datasets.Dataset,
        num_frames: int,
        crop_size: int = 256,
        training: bool = False,
        seed: int = 0,
        stride: int | None = None,
        transform: ClipCropTransform | None = None,
    ) -> None:
        if "frames" not in dataset.column_names:
            raise ValueError(f"expected a video dataset with a 'frames' column, got columns {dataset.column_names}")
        self.num_frames = num_frames
        self.transform = transform or ClipCropTransform(crop_size=crop_size, training=training)
        self.seed = seed
        self.epoch = 0
        self._rows = dataset.with_format("arrow")
        self.windows = object_window_index(dataset, num_frames, stride)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row_index, position, start = (int(value) for value in self.windows[index])
        table = self._rows[row_index]
        span = slice(start, start + self.num_frames)
        track = table.column("objects")[0].values[position]
        frames = [decode_rgb(value) for value in table.column("frames")[0].values[span].to_pylist()]
        visible_masks = [decode_mask(value) for value in track["visible_masks"].values[span].to_pylist()]
        amodal_masks = [decode_mask(value) for value in track["amodal_masks"].values[span].to_pylist()]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sample = self.transform(frames, visible_masks, amodal_masks, rng)
        rates = track["occlusion_rates"].values[span]
        sample.update(
            image_index=torch.tensor(row_index),
            object_index=torch.tensor(position),
            start_frame=torch.tensor(start),
            occlusion_rates=torch.tensor(rates.to_pylist(), dtype=torch.float32),
            image_height=torch.tensor(frames[0].shape[0]),
            image_width=torch.tensor(frames[0].shape[1]),
        )
        return sample


__all__ = ["ClipCropTransform", "VideoObjectClipDataset", "object_window_index", "visible_frames"]
