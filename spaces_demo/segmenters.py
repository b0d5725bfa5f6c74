"""The Space's models: where they come from (`ModelSources`, from the Space variables) and their pipelines, each
loaded once, on the first request that needs it or at launch (`app.main`), never when a module is imported."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from huggingface_hub import try_to_load_from_cache
from transformers import AutoConfig, AutoImageProcessor, Pipeline, pipeline

from c2f_hf import C2FSegImageProcessor
from c2f_hf.checkpoints import default_model_path, default_video_model_path

SHIPPED_MODEL_CARD_URL = "https://huggingface.co/c2f-hf/c2f-seg-synthetic-tiny"
SOURCE_VARIABLES = ("C2F_HF_MODEL", "C2F_HF_VIDEO_MODEL", "C2F_HF_SAM_MODEL", "C2F_HF_SAM2_MODEL")
PRELOADED_SAM_MODEL = "facebook/sam-vit-base"  # in the Space README's preload_from_hub
PRELOADED_SAM2_MODEL = "facebook/sam2.1-hiera-tiny"  # in the Space README's preload_from_hub


def preloaded(repo_id: str, cache_dir: str | Path | None = None) -> str | None:
    """`repo_id` when the Hub cache holds it (the Space downloads it at build time, `preload_from_hub`), else None:
    prompts are the default wherever the Space can serve them without a download."""
    cached = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir)
    return repo_id if isinstance(cached, str) else None


def prompt_source(variable: str | None, preloaded_id: str) -> str | None:
    """A prompt model's source from its Space variable's value: unset means `preloaded_id` when the Hub cache
    holds it (`preloaded`), set but empty none (no prompts)."""
    return preloaded(preloaded_id) if variable is None else variable or None


@dataclass(frozen=True)
class ModelSources:
    """The Space's models, each a Hub id or a folder. `image` (`C2F_HF_MODEL`, a repo written by `c2f-hf export`)
    and `video` (`C2F_HF_VIDEO_MODEL`): None for the models shipped in `c2f_hf`. `sam` (`C2F_HF_SAM_MODEL`, e.g.
    facebook/sam-vit-base, served through the image pipeline's `visible_mask_model`): None for painting only.
    `sam2` (`C2F_HF_SAM2_MODEL`, e.g. facebook/sam2.1-hiera-tiny, the video pipeline's `visible_mask_model`, which
    tracks objects clicked on a clip's first frame): None for mask strips only."""

    image: str | None = None
    video: str | None = None
    sam: str | None = None
    sam2: str | None = None

    @classmethod
    def from_environment(cls) -> ModelSources:
        """The sources named by the Space variables. `C2F_HF_SAM_MODEL` / `C2F_HF_SAM2_MODEL` unset mean the
        preloaded SAM / SAM 2 when it is in the Hub cache (`prompt_source`), set but empty no prompts. Read once at
        start: the layout (prompt images or not) is built from them."""
        image, video, sam, sam2 = (os.environ.get(variable) for variable in SOURCE_VARIABLES)
        return cls(
            image or None,
            video or None,
            prompt_source(sam, PRELOADED_SAM_MODEL),
            prompt_source(sam2, PRELOADED_SAM2_MODEL),
        )

    @property
    def image_model(self) -> str:
        """The image model's Hub id or folder: `image`, else the folder of the model shipped in `c2f_hf`."""
        return self.image or str(default_model_path())

    @property
    def video_model(self) -> str:
        """The video model's Hub id or folder: `video`, else the folder of the video model shipped in `c2f_hf`."""
        return self.video or str(default_video_model_path())

    def model_card_url(self) -> str:
        """Where the image model's card is: its Hub page for a Hub id, else the shipped model's Hub repo."""
        if self.image and not Path(self.image).exists():
            return f"https://huggingface.co/{self.image}"
        return SHIPPED_MODEL_CARD_URL

    def segmenter(self) -> Pipeline:
        """The image pipeline, with SAM when configured (loaded on the first call)."""
        return load_segmenter(self.image_model, self.sam)

    def video_segmenter(self) -> Pipeline:
        """The video pipeline, with SAM 2 when configured (loaded on the first call)."""
        return load_video_segmenter(self.video_model, self.sam2)

    def default_settings(self) -> tuple[int, float]:
        """The image model's MaskGIT steps K and mask threshold, read without loading it."""
        return default_settings(self.image_model)

    def seed_info(self) -> str:
        """What the seed changes for the image model, read without loading it (`seed_info`)."""
        return seed_info(self.image_model)


@cache
def load_segmenter(source: str, sam_source: str | None) -> Pipeline:
    """The `amodal-segmentation` pipeline of `source` (with SAM `sam_source` as its visible-mask source unless
    None), loaded once per process, its model converted with `optimize_for_cpu()`."""
    segmenter = pipeline(
        "amodal-segmentation", model=source, trust_remote_code=True, device="cpu", visible_mask_model=sam_source
    )
    segmenter.model.optimize_for_cpu()
    return segmenter


@cache
def load_video_segmenter(source: str, sam2_source: str | None) -> Pipeline:
    """The `video-amodal-segmentation` pipeline of `source` (with SAM 2 `sam2_source` as its visible-mask source,
    the tracker of clicked objects, unless None), loaded once per process, its model converted with
    `optimize_for_cpu()`. With SAM 2 it still takes mask strips (`visible_masks`)."""
    segmenter = pipeline(
        "video-amodal-segmentation",
        model=source,
        trust_remote_code=True,
        device="cpu",
        visible_mask_model=sam2_source,
    )
    segmenter.model.optimize_for_cpu()
    return segmenter


@cache
def default_settings(source: str) -> tuple[int, float]:
    """The defaults of image model `source`, from its config and processor files (no weights are loaded):
    MaskGIT steps K (`config.num_sampling_steps`) and the processor's mask threshold. The controls and the examples
    start there."""
    config = AutoConfig.from_pretrained(source, trust_remote_code=True)
    try:
        processor = AutoImageProcessor.from_pretrained(source, trust_remote_code=True)
    except OSError:
        # No preprocessor_config.json: the pipeline runs with the default processor `for_model` gives.
        processor = None
    processor = C2FSegImageProcessor.for_model(processor, config, source)
    return int(config.num_sampling_steps), float(processor.mask_threshold)


def seed_info(source: str) -> str:
    """The seed control's help text for image model `source`. Where the model keeps each cell's most likely code
    (`config.sampling_top_k` 1), the seed only draws the confidence noise that orders the cells between MaskGIT
    steps, so it changes nothing at K = 1; the text says so."""
    config = AutoConfig.from_pretrained(source, trust_remote_code=True)
    if config.sampling_top_k == 1:
        return (
            "Same seed and inputs, same result. This model takes each cell's most likely code: the seed matters "
            "only for K > 1."
        )
    return "Same seed and inputs, same result."


def result_mask(mask) -> np.ndarray:
    """A mask of a pipeline's result (PIL "L" image) as an `(H, W)` bool array."""
    return np.asarray(mask) > 0
