"""Warm-start a video model from an image model of the same size.

Every weight of the image model goes to its place in the video model: the backbone, the VQ model, the refiner, the
embeddings and the prediction head keep their names, and each image layer's `attention`, `layernorm_before` and
`layernorm_after` become the video layer's `spatial_attention`, `spatial_layernorm` and `mlp_layernorm`. The video
model's temporal attention keeps its own weights, with its output projection set to zero, so the temporal branch
adds nothing at the start and the new video model predicts each frame exactly as the image model does; training then
learns what the frames tell each other. The config is the video model's with the image model's decoding steps K
(`num_sampling_steps`) and training mask ratio (`min_mask_ratio`).

    python -m c2f_hf.training.video_from_image --image-model IMAGE_FOLDER --video-model VIDEO_FOLDER --out OUT
"""

import argparse
import logging
from pathlib import Path

import torch

from ..hub.export import check_new_folder
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation

logger = logging.getLogger(__name__)

IMAGE_TO_VIDEO_LAYER_NAMES = {
    ".attention.": ".spatial_attention.",
    ".layernorm_before.": ".spatial_layernorm.",
    ".layernorm_after.": ".mlp_layernorm.",
}
TEMPORAL_MARKER = ".temporal_"
TEMPORAL_OUTPUT_PROJECTION = ".temporal_attention.out_proj."


def video_key(image_key: str) -> str:
    """The video model's name for the image model's weight `image_key`."""
    if ".layers." not in image_key:
        return image_key
    for image_name, video_name in IMAGE_TO_VIDEO_LAYER_NAMES.items():
        image_key = image_key.replace(image_name, video_name)
    return image_key


def video_state_from_image(
    image_state: dict[str, torch.Tensor], video_state: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The video state dict with every image weight in its place and the temporal output projection zeroed.

    Raises:
        ValueError: naming the weights when the two models differ in anything but the temporal branch (an image
            weight with no place or another shape in the video model, a non-temporal video weight with no image
            weight), or when `image_state` is itself a video model's.
    """
    if any(TEMPORAL_MARKER in key for key in image_state):
        raise ValueError("the image model has temporal weights: give an image model (no num_frames in its config)")
    mapped = {video_key(key): value for key, value in image_state.items()}
    problems = [f"{key}: not in the video model" for key in mapped if key not in video_state]
    problems += [
        f"{key}: image {tuple(value.shape)} but video {tuple(video_state[key].shape)}"
        for key, value in mapped.items()
        if key in video_state and value.shape != video_state[key].shape
    ]
    problems += [f"{key}: no image weight" for key in video_state if TEMPORAL_MARKER not in key and key not in mapped]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"the image and video models differ beyond the temporal branch: {shown}")
    state = {key: mapped.get(key, value).clone() for key, value in video_state.items()}
    for key in state:
        if TEMPORAL_OUTPUT_PROJECTION in key:
            state[key].zero_()
    return state


def video_model_from_image(
    image_model: C2FSegForAmodalSegmentation, video_model: C2FSegForAmodalSegmentation
) -> C2FSegForAmodalSegmentation:
    """Load the warm start into `video_model` (in place) and give it the image model's K and min_mask_ratio."""
    if video_model.num_frames is None:
        raise ValueError("the video model has no num_frames in its config: give a video model")
    state = video_state_from_image(image_model.state_dict(), video_model.state_dict())
    video_model.load_state_dict(state)
    video_model.config.num_sampling_steps = image_model.config.num_sampling_steps
    video_model.config.min_mask_ratio = image_model.config.min_mask_ratio
    return video_model


def main(argv: list[str] | None = None) -> int:
    """`python -m c2f_hf.training.video_from_image --image-model DIR --video-model DIR --out DIR`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-model", type=Path, required=True, help="image model folder")
    parser.add_argument("--video-model", type=Path, required=True, help="video model folder of the same size")
    parser.add_argument("--out", type=Path, required=True, help="folder for the warm-started video model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    image_model = C2FSegForAmodalSegmentation.from_pretrained(args.image_model, dtype=torch.float32)
    video_model = C2FSegForAmodalSegmentation.from_pretrained(args.video_model, dtype=torch.float32)
    try:
        check_new_folder(args.out)
        video_model = video_model_from_image(image_model, video_model)
    except ValueError as error:
        raise SystemExit(f"video_from_image: {error}") from error
    video_model.save_pretrained(args.out)
    C2FSegImageProcessor.from_pretrained(args.video_model).save_pretrained(args.out)
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
