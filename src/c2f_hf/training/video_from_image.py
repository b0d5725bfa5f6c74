"""Warm-start a video model from an image model of the same size.

Every weight of the image model goes to its place in the video model: the backbone, the VQ model, the refiner, the
embeddings and the prediction head keep their names, and each image layer's `attention`, `layernorm_before` and
`layernorm_after` become the video layer's `spatial_attention`, `spatial_layernorm` and `mlp_layernorm`. The video
model's temporal attention keeps its own weights, with its output projection set to zero, so the temporal branch
adds nothing at the start and the new video model predicts each frame exactly as the image model does; training then
learns what the frames tell each other. The config is the video model's with the image model's decoding steps K
(`num_sampling_steps`) and training mask ratio (`min_mask_ratio`).

The video model is either a folder of the same size (`--video-model`, whose config and processor the output keeps)
or, with `--num-frames T`, made from the image model's own config: the same model with windows of T frames and
temporal attention over `--spatial-window-size` cells (2 by default), its temporal weights drawn with `--seed`, and
the image model's processor (without its `second_crop_ratio`, which is for image objects only).

    python -m c2f_hf.training.video_from_image --image-model IMAGE_FOLDER --video-model VIDEO_FOLDER --out OUT
    python -m c2f_hf.training.video_from_image --image-model IMAGE_FOLDER --num-frames 4 --out OUT
"""

import argparse
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from ..hub.export import check_new_folder
from ..models.c2f_seg.configuration_c2f_seg import C2FSegConfig
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation

logger = logging.getLogger(__name__)
Loaded = TypeVar("Loaded")

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


def video_config_from_image(image_config: C2FSegConfig, num_frames: int, spatial_window_size: int) -> C2FSegConfig:
    """The image model's config as a video model's: windows of `num_frames` frames, temporal attention over
    `spatial_window_size` x `spatial_window_size` cells; a ValueError names a value the model cannot take."""
    try:
        transformer = dataclasses.replace(
            image_config.transformer_config, num_frames=num_frames, spatial_window_size=spatial_window_size
        )
    except StrictDataclassClassValidationError as error:
        raise ValueError(str(error.__cause__)) from None
    return dataclasses.replace(image_config, transformer_config=transformer)


def read_folder(load: Callable[[Path], Loaded], folder: Path, argument: str) -> Loaded:
    """`load(folder)`; a folder it cannot read (missing, or without the file `load` needs) is a ValueError naming
    `argument`."""
    try:
        return load(folder)
    except OSError as error:
        raise ValueError(f"{argument} {folder}: {error}") from None


def float32_model(folder: Path) -> C2FSegForAmodalSegmentation:
    return C2FSegForAmodalSegmentation.from_pretrained(folder, dtype=torch.float32)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-model", type=Path, required=True, help="image model folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video-model", type=Path, help="video model folder of the same size")
    source.add_argument("--num-frames", type=int, help="or: a video model of the image model's size with T frames")
    parser.add_argument("--spatial-window-size", type=int, default=2, help="with --num-frames (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="with --num-frames: draws the temporal weights")
    parser.add_argument("--out", type=Path, required=True, help="folder for the warm-started video model")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """`python -m c2f_hf.training.video_from_image --image-model DIR (--video-model DIR | --num-frames T) --out DIR`."""
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        check_new_folder(args.out)
        image_model = read_folder(float32_model, args.image_model, "--image-model")
        if args.video_model is None:
            config = video_config_from_image(image_model.config, args.num_frames, args.spatial_window_size)
            torch.manual_seed(args.seed)
            video_model = C2FSegForAmodalSegmentation(config)
            processor = read_folder(C2FSegImageProcessor.from_pretrained, args.image_model, "--image-model")
            processor.second_crop_ratio = None  # image objects only: a video processor refuses it
        else:
            video_model = read_folder(float32_model, args.video_model, "--video-model")
            processor = read_folder(C2FSegImageProcessor.from_pretrained, args.video_model, "--video-model")
        video_model = video_model_from_image(image_model, video_model)
    except ValueError as error:
        raise SystemExit(f"video_from_image: {error}") from error
    video_model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
