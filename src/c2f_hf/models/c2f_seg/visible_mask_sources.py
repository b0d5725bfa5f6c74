"""Where the visible masks come from when the user has none: a promptable model or a segmentation model.

C2F-Seg completes visible masks; a photo alone has none. The amodal-segmentation pipeline takes a
`visible_mask_model` and asks it for them:

- **Promptable** (`SamModel` from transformers, `model_type` "sam", or SAM 2: `Sam2Model`, "sam2", run from a
  "sam2" or "sam2_video" folder such as facebook/sam2.1-hiera-tiny): one object per prompt, prompts named as in
  `SamProcessor` but for one image: `input_boxes=[[x0, y0, x1, y1], ...]` and/or
  `input_points=[[[x, y], ...], ...]` with `input_labels=[[1, ...], ...]` (1 = on the object, 0 = background; all 1
  when omitted). Of the model's three candidate masks per prompt, the one with the best predicted IoU is used, and
  that IoU is the object's `detection_score`. SAM 2's processors need torchvision.
- **Segmentation** (anything transformers' `image-segmentation` pipeline runs: Mask2Former, OneFormer, MaskFormer,
  DETR, ...): no prompt; every instance (panoptic segment where the model has no instance mode) scoring at least
  `detection_threshold` becomes an object with the detector's `label` and `score`.

Each source returns `VisibleObject`s; the pipeline completes them like hand-made masks. The output of
`pipeline("image-segmentation")` (`[{"score", "label", "mask"}, ...]`) is read by `objects_from_segments`, so a
user can also pass it as `visible_masks=` directly.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import (
    AutoConfig,
    AutoModel,
    AutoProcessor,
    Pipeline,
    PreTrainedConfig,
    PreTrainedModel,
    Sam2Config,
    Sam2Model,
    pipeline,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_IMAGE_SEGMENTATION_MAPPING_NAMES,
    MODEL_FOR_INSTANCE_SEGMENTATION_MAPPING_NAMES,
    MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES,
    MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES,
)

from .image_loading import load_binary_mask

SAM2_MODEL_TYPES = ("sam2", "sam2_video")
PROMPTABLE_MODEL_TYPES = ("sam", *SAM2_MODEL_TYPES)
# How to get a torchvision that imports: the release built for the installed torch (the pair below is one).
TORCHVISION_INSTALL = (
    'the torchvision release built for your torch (pip install "c2f_hf[sam2]" after torch, or a matching pair '
    "such as pip install torch==2.14.1 torchvision==0.29.1)"
)
# SAM's "no point" marker: shorter point lists are padded with it (coordinates and label), as SamProcessor does.
POINT_PAD_VALUE = -10


@dataclass(frozen=True)
class VisibleObject:
    """One object's `(H, W)` bool visible mask, its label (None when unknown) and the score of the model that
    found it (None for hand-made masks)."""

    mask: np.ndarray
    label: str | int | None = None
    detection_score: float | None = None


def is_number(value) -> bool:
    """Whether `value` is a Python or numpy int or float (bools are not numbers here)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_boxes(input_boxes, image_size: tuple[int, int], picture: str = "image") -> list[list[float]]:
    """`[[x0, y0, x1, y1], ...]` inside an image (a video `picture="frame"`) of `(height, width)`, x0 < x1 and
    y0 < y1; raises ValueError naming `input_boxes[i]` otherwise."""
    height, width = image_size
    if not isinstance(input_boxes, (list, tuple)) or len(input_boxes) == 0:
        raise ValueError("input_boxes: expected a non-empty list of [x0, y0, x1, y1] boxes, one per object")
    boxes = []
    for index, box in enumerate(input_boxes):
        if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(is_number(value) for value in box):
            raise ValueError(f"input_boxes[{index}]: expected [x0, y0, x1, y1] (4 numbers), got {box!r}")
        x0, y0, x1, y1 = (float(value) for value in box)
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(
                f"input_boxes[{index}]: {list(box)} is not a box inside the {width}x{height} {picture} "
                "(need 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height)"
            )
        boxes.append([x0, y0, x1, y1])
    return boxes


def check_points(input_points, input_labels, image_size: tuple[int, int], picture: str = "image") -> tuple[list, list]:
    """Per object a list of `[x, y]` points inside the image (a video `picture="frame"`) and, per point, a label 0
    or 1 (all 1 when `input_labels` is None); raises ValueError naming the argument and index otherwise."""
    height, width = image_size
    if not isinstance(input_points, (list, tuple)) or len(input_points) == 0:
        raise ValueError("input_points: expected a non-empty list with, per object, a list of [x, y] points")
    if input_labels is None:
        input_labels = [[1] * len(points) if isinstance(points, (list, tuple)) else None for points in input_points]
    if not isinstance(input_labels, (list, tuple)) or len(input_labels) != len(input_points):
        found = len(input_labels) if isinstance(input_labels, (list, tuple)) else type(input_labels).__name__
        raise ValueError(f"input_labels: expected one list of labels per object ({len(input_points)}), got {found}")
    points, labels = [], []
    for index, (object_points, object_labels) in enumerate(zip(input_points, input_labels)):
        if not isinstance(object_points, (list, tuple)) or len(object_points) == 0:
            raise ValueError(
                f"input_points[{index}]: expected a non-empty list of [x, y] points, got {object_points!r}"
            )
        if not isinstance(object_labels, (list, tuple)) or len(object_labels) != len(object_points):
            raise ValueError(
                f"input_labels[{index}]: expected {len(object_points)} labels, one per point of "
                f"input_points[{index}], got {object_labels!r}"
            )
        for number, (point, label) in enumerate(zip(object_points, object_labels)):
            name = f"input_points[{index}][{number}]"
            if not isinstance(point, (list, tuple)) or len(point) != 2 or not all(is_number(v) for v in point):
                raise ValueError(f"{name}: expected [x, y], got {point!r}")
            if not (0 <= point[0] < width and 0 <= point[1] < height):
                raise ValueError(f"{name}: {list(point)} is outside the {width}x{height} {picture}")
            if label not in (0, 1) or isinstance(label, bool):
                raise ValueError(
                    f"input_labels[{index}][{number}]: expected 1 (object) or 0 (background), got {label!r}"
                )
        points.append([[float(x), float(y)] for x, y in object_points])
        labels.append([int(label) for label in object_labels])
    return points, labels


def padded_points(points: list, labels: list) -> tuple[list, list]:
    """Per-object point and label lists padded with `POINT_PAD_VALUE` to the longest one (SAM takes equal
    lengths and ignores the padding)."""
    longest = max(len(object_points) for object_points in points)
    pad = float(POINT_PAD_VALUE)
    return (
        [object_points + [[pad, pad]] * (longest - len(object_points)) for object_points in points],
        [object_labels + [POINT_PAD_VALUE] * (longest - len(object_labels)) for object_labels in labels],
    )


def checked_prompts(
    input_boxes, input_points, input_labels, image_size: tuple[int, int], picture: str = "image"
) -> dict[str, list]:
    """The prompts of one image (or video frame) checked and nested as SAM's and SAM 2's processors take them for a
    batch of one: `{"input_boxes": [boxes], "input_points": [points], "input_labels": [labels]}` (only those given;
    point lists padded to one length). Raises ValueError naming the argument (see the module docstring)."""
    if input_points is None and input_labels is not None:
        raise ValueError("input_labels: given without input_points")
    if input_boxes is None and input_points is None:
        raise ValueError(
            "a promptable visible_mask_model needs prompts: pass input_boxes=[[x0, y0, x1, y1], ...] and/or "
            "input_points=[[[x, y], ...], ...] (or the visible masks themselves)"
        )
    prompts = {}
    if input_boxes is not None:
        prompts["input_boxes"] = [check_boxes(input_boxes, image_size, picture)]
    if input_points is not None:
        points, labels = padded_points(*check_points(input_points, input_labels, image_size, picture))
        prompts["input_points"], prompts["input_labels"] = [points], [labels]
    if input_boxes is not None and input_points is not None and len(input_boxes) != len(input_points):
        raise ValueError(
            f"input_boxes and input_points: give one of each per object, got {len(input_boxes)} boxes and "
            f"{len(input_points)} point lists"
        )
    return prompts


def prompt_name(prompts: dict[str, list]) -> str:
    """The argument an object's prompt came from, for errors: `input_boxes` when boxes were given."""
    return "input_boxes" if "input_boxes" in prompts else "input_points"


class PromptableMaskSource:
    """A SAM or SAM 2 model and its processor: prompts in, one `VisibleObject` per prompt out (see the module
    docstring)."""

    def __init__(self, model: PreTrainedModel, processor):
        self.model = model.eval()
        self.processor = processor

    @torch.no_grad()
    def __call__(self, image: PIL.Image.Image, input_boxes=None, input_points=None, input_labels=None):
        """The visible objects of `image` (an RGB PIL image) for the given prompts (see the module docstring)."""
        prompts = checked_prompts(input_boxes, input_points, input_labels, (image.height, image.width))
        inputs = self.processor(images=image, return_tensors="pt", **prompts).to(self.model.device)
        outputs = self.model(**inputs, multimask_output=True)
        masks = self._full_size_masks(outputs.pred_masks, inputs)
        scores = outputs.iou_scores[0].float().cpu()
        objects = []
        for index, choice in enumerate(scores.argmax(dim=-1).tolist()):
            mask = masks[index, choice].numpy().astype(bool)
            if not mask.any():
                raise ValueError(
                    f"{prompt_name(prompts)}[{index}]: the visible_mask_model found no pixel of an object there"
                )
            objects.append(VisibleObject(mask, None, float(scores[index, choice])))
        return objects

    def _full_size_masks(self, pred_masks: torch.Tensor, inputs) -> torch.Tensor:
        """`pred_masks (1, objects, 3, h, w)` logits -> `(objects, 3, H, W)` bool at the image size. SAM pads its
        input (its processor gives `reshaped_input_sizes`); SAM 2 resizes the whole image."""
        sizes = [inputs["original_sizes"].cpu()]
        if "reshaped_input_sizes" in inputs:
            sizes.append(inputs["reshaped_input_sizes"].cpu())
        return self.processor.image_processor.post_process_masks(pred_masks.cpu(), *sizes)[0]


class SegmentationMaskSource:
    """An `image-segmentation` pipeline: an image in, one `VisibleObject` per detected instance out."""

    def __init__(self, segmenter: Pipeline):
        self.segmenter = segmenter

    def __call__(self, image: PIL.Image.Image, detection_threshold: float = 0.5) -> list[VisibleObject]:
        """The instances (or panoptic segments) of `image` scoring at least `detection_threshold`."""
        segments = self.segmenter(image, subtask=self._subtask(), threshold=detection_threshold)
        size = (image.height, image.width)
        objects = [item for item in objects_from_segments(segments, size, 0.5, "detections", True) if item.mask.any()]
        if not objects:
            raise ValueError(
                f"visible_mask_model: found no object scoring at least detection_threshold={detection_threshold} "
                "in the image; lower detection_threshold or give prompts / visible masks"
            )
        return objects

    def _subtask(self) -> str | None:
        """ "instance" where the model's processor has it, else the pipeline's own choice."""
        processor = self.segmenter.image_processor
        return "instance" if hasattr(processor, "post_process_instance_segmentation") else None


def objects_from_segments(
    segments, image_size: tuple[int, int], threshold: float, name: str = "visible_masks", allow_empty: bool = False
) -> list[VisibleObject]:
    """`pipeline("image-segmentation")` output (`[{"mask": ..., "label": ..., "score": ...}, ...]`) -> visible
    objects. Each mask goes through the plain mask checks (`load_binary_mask`: `(H, W)` of `image_size`, float
    probabilities thresholded at `threshold`, NaN / other values / empty masks refused unless `allow_empty`).
    Raises ValueError naming `name[i]` or `name[i]['mask']`."""
    objects = []
    for index, segment in enumerate(segments):
        if not isinstance(segment, dict):
            raise ValueError(
                f"{name}[{index}]: expected a segment dict like {name}[0] ({{'mask': ..., 'label': ...}}), got "
                f"{type(segment).__name__}"
            )
        if "mask" not in segment:
            raise ValueError(f"{name}[{index}]: a segment dict needs a 'mask' key, got keys {sorted(segment)}")
        mask = load_binary_mask(segment["mask"], f"{name}[{index}]['mask']", image_size, threshold, allow_empty)
        score = segment.get("score")
        if score is not None and not is_number(score):
            raise ValueError(f"{name}[{index}]['score']: expected a number or None, got {score!r}")
        objects.append(VisibleObject(mask, segment.get("label"), None if score is None else float(score)))
    return objects


def is_segment_list(visible_masks) -> bool:
    """Whether `visible_masks` is a list of segment dicts (the output of `pipeline("image-segmentation")`)."""
    return isinstance(visible_masks, (list, tuple)) and bool(visible_masks) and isinstance(visible_masks[0], dict)


def segmentation_model_classes() -> set[str]:
    """The model class names transformers' `image-segmentation` pipeline runs (its four segmentation mappings)."""
    mappings = (
        MODEL_FOR_IMAGE_SEGMENTATION_MAPPING_NAMES,
        MODEL_FOR_INSTANCE_SEGMENTATION_MAPPING_NAMES,
        MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES,
        MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES,
    )
    return {name for mapping in mappings for name in mapping.values()}


def unsupported_source_error(name: str, model: PreTrainedModel | None, model_type: str, reason: str) -> ValueError:
    """The ValueError for a `visible_mask_model` that is neither promptable nor a segmentation model."""
    kind = f"{type(model).__name__} " if model is not None else ""
    return ValueError(
        f"visible_mask_model: {name} ({kind}model_type {model_type!r}) is neither a promptable model "
        f"({', '.join(PROMPTABLE_MODEL_TYPES)}) nor one transformers' image-segmentation pipeline runs{reason}"
    )


def checked_segmentation_source(segmenter: Pipeline, name: str) -> SegmentationMaskSource:
    """`segmenter` as a source when its model is a segmentation model (not, e.g., an image classifier); raises
    ValueError naming the model class and type otherwise."""
    model = segmenter.model
    if type(model).__name__ not in segmentation_model_classes():
        raise unsupported_source_error(name, model, model.config.model_type, "")
    return SegmentationMaskSource(segmenter)


def source_model_type(source) -> str:
    """The `model_type` of a loaded model, a local folder or a Hub id; raises ValueError naming a missing local
    folder or a Hub id that cannot be loaded."""
    if isinstance(source, PreTrainedModel):
        return source.config.model_type
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            f"visible_mask_model: expected a Hub id, a folder, a transformers model or an image-segmentation "
            f"pipeline, got {type(source).__name__}"
        )
    path = os.fspath(source)
    if not os.path.isdir(path):
        try:
            validate_repo_id(path)
        except HFValidationError:
            raise ValueError(f"visible_mask_model: no folder at {path!r} (and it is not a Hub model id)") from None
    try:
        return AutoConfig.from_pretrained(path).model_type
    except (OSError, ValueError) as error:
        raise ValueError(f"visible_mask_model: could not load a model config from {path!r}: {error}") from None


def check_torchvision(name: str) -> None:
    """Raise ImportError, saying how to install it, when torchvision (which transformers' SAM 2 processors need)
    does not import (or, built for another torch, fails to load its operators)."""
    try:
        importlib.import_module("torchvision")
    except (ImportError, RuntimeError, OSError):
        raise ImportError(
            f"visible_mask_model: {name} is a SAM 2 model, and transformers' SAM 2 processors (Sam2Processor, "
            f"Sam2VideoProcessor) need torchvision, which does not import here; install "
            f"{TORCHVISION_INSTALL}"
        ) from None


def source_name(source) -> str:
    """How errors name a `visible_mask_model`: its folder or Hub id, else its class."""
    return repr(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else type(source).__name__


def sam2_image_config(config: PreTrainedConfig) -> Sam2Config:
    """The `Sam2Config` of a "sam2" or "sam2_video" config: the video model is the image model (same vision
    encoder, prompt encoder and mask decoder, same weight names) plus memory modules."""
    if isinstance(config, Sam2Config):
        return config
    return Sam2Config(
        vision_config=config.vision_config.to_dict(),
        prompt_encoder_config=config.prompt_encoder_config.to_dict(),
        mask_decoder_config=config.mask_decoder_config.to_dict(),
        initializer_range=config.initializer_range,
    )


def sam2_image_model(source) -> Sam2Model:
    """A `Sam2Model` from a "sam2" or "sam2_video" folder, Hub id or loaded model (a `Sam2VideoModel` gives its
    image part, sharing its weight tensors, so one loaded SAM 2 can serve both pipelines)."""
    if isinstance(source, Sam2Model):
        return source
    if isinstance(source, PreTrainedModel):
        model = Sam2Model(sam2_image_config(source.config))
        missing = model.load_state_dict(source.state_dict(), strict=False, assign=True).missing_keys
        if missing:
            raise ValueError(f"visible_mask_model: {type(source).__name__} lacks SAM 2 image weights {missing[:3]}")
        model.name_or_path = source.name_or_path
        return model.to(source.device)
    return Sam2Model.from_pretrained(source, config=sam2_image_config(AutoConfig.from_pretrained(source)))


def source_processor(model: PreTrainedModel, processor):
    """`processor`, or the processor saved beside `model` (its `name_or_path`). Raises ValueError for a model
    object that does not know its folder."""
    if processor is not None:
        return processor
    if not model.name_or_path:
        raise ValueError("visible_mask_processor: needed with a model object that was not loaded from a folder")
    return AutoProcessor.from_pretrained(model.name_or_path)


def load_visible_mask_source(source, processor=None, device=None) -> PromptableMaskSource | SegmentationMaskSource:
    """A visible-mask source from a Hub id or folder, a loaded transformers model (with its `processor` when the
    model does not know the folder it came from), or an `image-segmentation` pipeline (see the module docstring).
    Raises ValueError for a missing folder and for a model that is neither promptable nor a segmentation model
    transformers' image-segmentation pipeline runs (an image classifier, say), naming its class and type, and
    ImportError for SAM 2 without torchvision."""
    if isinstance(source, (PromptableMaskSource, SegmentationMaskSource)):
        return source
    if isinstance(source, Pipeline):
        return checked_segmentation_source(source, type(source).__name__)
    model_type = source_model_type(source)
    if model_type in SAM2_MODEL_TYPES:
        check_torchvision(source_name(source))
        model = sam2_image_model(source)
    elif model_type in PROMPTABLE_MODEL_TYPES:
        model = source if isinstance(source, PreTrainedModel) else AutoModel.from_pretrained(source)
    else:
        return segmentation_source(source, processor, device, model_type)
    processor = source_processor(model, processor)
    return PromptableMaskSource(model.to(device) if device is not None else model, processor)


def segmentation_source(source, processor, device, model_type: str) -> SegmentationMaskSource:
    """An `image-segmentation` pipeline of `source` as a source; raises ValueError naming the model when
    transformers' pipeline cannot run it or it is no segmentation model."""
    name = source_name(source)
    try:
        segmenter = pipeline("image-segmentation", model=source, image_processor=processor, device=device)
    except (ValueError, KeyError, OSError) as error:
        raise unsupported_source_error(name, None, model_type, f": {error}") from None
    return checked_segmentation_source(segmenter, name)


__all__ = [
    "PromptableMaskSource",
    "SegmentationMaskSource",
    "VisibleObject",
    "check_boxes",
    "check_points",
    "check_torchvision",
    "checked_prompts",
    "is_number",
    "is_segment_list",
    "load_visible_mask_source",
    "objects_from_segments",
    "sam2_image_model",
]
