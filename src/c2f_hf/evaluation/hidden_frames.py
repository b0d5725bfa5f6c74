"""How a video model fills in frames where an object is completely hidden (`python -m c2f_hf.evaluation.hidden_frames`).

The per-frame metrics of `evaluate_model` skip a track's fully hidden frames (there is no visible mask to crop
from), so they say nothing about the video model's one ability an image model lacks. This measurement runs the
`video-amodal-segmentation` pipeline, as a user does, on every track of a video dataset that is fully hidden in some
frames while its amodal mask is still inside the frame, and compares on each such frame the predicted amodal area
with the object's **visible-frame area**: the mean true amodal area over the frames where the track is at least
partly visible. A frame is *within tolerance* when the ratio predicted / visible-frame area lies in
`[1 - tolerance, 1 + tolerance]` (default ±30%); frames the pipeline could not complete (`completed=False`) count
as outside. It also reports the IoU of the predicted and true amodal masks on those frames.

    python -m c2f_hf.evaluation.hidden_frames --model MODEL --dataset synthetic-video --split test --greedy
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from transformers import pipeline

from ..data.schema import load_amodal_dataset
from ..data.transforms import decode_mask, decode_rgb
from .metrics import iou

DEFAULT_TOLERANCE = 0.3


@dataclass(frozen=True)
class HiddenFrameResult:
    """One fully hidden frame of one track: its clip and frame, predicted and reference areas in pixels, and the
    IoU of the predicted and true amodal masks."""

    video_id: str
    object_index: int
    frame: int
    predicted_area: int
    visible_frame_area: float
    iou: float
    completed: bool

    @property
    def area_ratio(self) -> float:
        return self.predicted_area / self.visible_frame_area


def hidden_frames_of_track(visible_masks: np.ndarray, amodal_masks: np.ndarray) -> list[int]:
    """The frames of a track (`(F, H, W)` bool masks) where it is fully hidden but inside the frame."""
    return [
        frame for frame in range(len(visible_masks)) if not visible_masks[frame].any() and amodal_masks[frame].any()
    ]


def visible_frame_area(visible_masks: np.ndarray, amodal_masks: np.ndarray) -> float:
    """Mean true amodal area (pixels) over the frames of `(F, H, W)` bool masks where the track is visible."""
    seen = visible_masks.reshape(len(visible_masks), -1).any(axis=1)
    return float(amodal_masks[seen].reshape(int(seen.sum()), -1).sum(axis=1).mean())


def measure_hidden_frames(
    model: str | Path, dataset: str | Path, split: str = "test", seed: int = 0, greedy: bool = False
) -> list[HiddenFrameResult]:
    """One `HiddenFrameResult` per fully hidden (track, frame) of the video dataset's `split`, predicted by the
    video pipeline of the model folder or Hub id `model` (`seed`, or `greedy` decoding)."""
    segmenter = pipeline("video-amodal-segmentation", model=str(model), trust_remote_code=False)
    results = []
    rows = load_amodal_dataset(dataset, split).with_format("arrow")
    for clip in rows.iter(batch_size=1):
        clip = clip.to_pylist()[0]
        frames = None
        for object_index, track in enumerate(clip["objects"]):
            visible = np.stack([decode_mask(mask) for mask in track["visible_masks"]])
            amodal = np.stack([decode_mask(mask) for mask in track["amodal_masks"]])
            hidden = hidden_frames_of_track(visible, amodal)
            if not hidden or not visible.any():
                continue
            frames = frames or [decode_rgb(frame) for frame in clip["frames"]]
            prediction = segmenter(frames, visible_masks=[list(visible)], seed=seed, greedy=greedy)[0]
            reference = visible_frame_area(visible, amodal)
            for frame in hidden:
                predicted = np.asarray(prediction["amodal_masks"][frame]) > 0
                results.append(
                    HiddenFrameResult(
                        video_id=clip["video_id"],
                        object_index=object_index,
                        frame=frame,
                        predicted_area=int(predicted.sum()),
                        visible_frame_area=reference,
                        iou=iou(predicted, amodal[frame]),
                        completed=bool(prediction["completed"][frame]),
                    )
                )
    return results


def summarize(results: list[HiddenFrameResult], tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Counts and fractions over `results`: frames, tracks, frames the pipeline completed (a frame T or more frames
    from every visible frame is out of every window's reach), frames within `tolerance` of the visible-frame area
    (of all, and of the completed ones), frames with a non-empty mask, the median area ratio and the mean IoU
    (percent)."""
    if not results:
        raise ValueError("no fully hidden frame: the dataset has no track hidden in a frame while inside it")
    ratios = np.array([result.area_ratio for result in results])
    completed = np.array([result.completed for result in results])
    within = completed & (np.abs(ratios - 1.0) <= tolerance)
    return {
        "hidden_frames": len(results),
        "tracks": len({(result.video_id, result.object_index) for result in results}),
        "completed_frames": int(completed.sum()),
        "tolerance": tolerance,
        "fraction_within_tolerance": float(within.mean()),
        "fraction_of_completed_within_tolerance": float(within[completed].mean()) if completed.any() else 0.0,
        "fraction_non_empty": float(np.mean([result.predicted_area > 0 for result in results])),
        "median_area_ratio": float(np.median(ratios)),
        "mean_iou": 100.0 * float(np.mean([result.iou for result in results])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="video model folder or Hub id")
    parser.add_argument("--dataset", required=True, help="video dataset folder or Hub id")
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--greedy", action="store_true")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--out", type=Path, help="write the summary and every frame's result as JSON here")
    args = parser.parse_args(argv)
    results = measure_hidden_frames(args.model, args.dataset, args.split, seed=args.seed, greedy=args.greedy)
    summary = summarize(results, args.tolerance)
    print(json.dumps(summary, indent=2))
    if args.out:
        frames = [{**asdict(result), "area_ratio": result.area_ratio} for result in results]
        args.out.write_text(json.dumps({"summary": summary, "frames": frames}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
