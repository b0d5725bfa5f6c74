"""The `amodal-segmentation` pipeline: image + visible masks in, one dict per object out.

Each object is a chunk, so objects of one image and of several images are batched through the model together up
to `batch_size`. Sampling with `seed` is reproducible and independent of batching: each object draws from its own
generator, seeded from `seed` and the object's visible mask (`maskgit.mask_key`), so an object's result does not
change with `batch_size` nor with the other objects of the call; `greedy=True` is deterministic.

With the processor's `second_crop_ratio` set, `_forward` predicts again, from a second crop, each object whose first
prediction reaches past its crop (`second_crop.with_second_crops`), with the same generator, so this too does not
depend on batching; the results are pasted back from the second crop.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from transformers.pipelines.base import ChunkPipeline

from .configuration_c2f_seg import C2FSegConfig
from .image_loading import load_rgb_image
from .image_processing_c2f_seg import C2FSegImageProcessor
from .maskgit import check_num_steps, mask_key, object_generators
from .second_crop import with_second_crops
from .visible_mask_sources import (
    PromptableMaskSource,
    VisibleObject,
    is_number,
    is_segment_list,
    load_visible_mask_source,
    objects_from_segments,
)

PROMPT_NAMES = ("input_boxes", "input_points", "input_labels")


DEFAULT_OBJECTS_PER_BATCH = 16
"""Chunks (objects; a video's (object, window) pairs) per forward pass when no `batch_size` is given: the objects
of a call go through the model together (on the CPU fast path the VQ model still takes one full-size object at a
time, `optimize_for_cpu`)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What postprocessing needs of one object besides the model outputs: its crop box `(top, left, bottom,
    right)`, the image size, the full-size `(H, W)` bool input visible mask, its label (a `label_map` id or a
    detector's class; None when unknown), the detector's score (None for given masks) and the `(H, W, 3)` uint8
    image (shared by the objects of an image; read for a second crop)."""

    crop_box: tuple[int, int, int, int]
    original_size: tuple[int, int]
    input_visible_mask: np.ndarray
    label: str | int | None = None
    detection_score: float | None = None
    image: np.ndarray | None = None


def mask_to_image(mask: torch.Tensor | np.ndarray) -> PIL.Image.Image:
    """`(H, W)` bool -> PIL "L" image with 0/255 values."""
    return PIL.Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255, mode="L")


def checked_model_and_processor(model, image_processor) -> C2FSegImageProcessor:
    """Pipeline construction checks: `model` must be a C2F-Seg model and its image processor of its crop size (a
    default one with a warning when the folder has none). Returns the processor; raises ValueError naming the
    folder and the problem."""
    source = getattr(model, "name_or_path", "") or "the model"
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type != C2FSegConfig.model_type:
        raise ValueError(
            f"{source}: is a {type(model).__name__} (model_type {model_type!r}); the amodal-segmentation pipelines "
            f"need a C2F-Seg model (model_type {C2FSegConfig.model_type!r}, C2FSegForAmodalSegmentation)"
        )
    return C2FSegImageProcessor.for_model(image_processor, model.config, source)


def check_number(name: str, value, kind: type = float) -> None:
    """Raise ValueError unless `value` is None or a number (an int when `kind` is int); bools are refused."""
    accepted = isinstance(value, int) and not isinstance(value, bool) if kind is int else is_number(value)
    if value is not None and not accepted:
        raise ValueError(f"{name}: expected {'an integer' if kind is int else 'a number'}, got {value!r}")


def check_flag(name: str, value) -> None:
    """Raise ValueError unless `value` is None or a bool."""
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected True or False, got {value!r}")


def check_generation_parameters(num_steps, seed, greedy, model_config: C2FSegConfig) -> None:
    """The decoding parameters shared by both pipelines: `num_steps` a positive int at most the model's
    sequence length, `seed` an int, `greedy` a bool (or None). Raises ValueError naming the parameter."""
    # transformers sanitizes the construction's parameters before the pipeline checks that the model is C2F-Seg.
    transformer_config = getattr(model_config, "transformer_config", None)
    check_num_steps(num_steps, None if transformer_config is None else transformer_config.sequence_length)
    check_number("seed", seed, int)
    check_flag("greedy", greedy)


def check_inputs_not_empty(inputs) -> None:
    """Raise ValueError for an empty list of inputs (transformers would fail on it with an IndexError)."""
    if isinstance(inputs, (list, tuple)) and len(inputs) == 0:
        raise ValueError("inputs: the list is empty; pass at least one image (or clip) to segment")


def check_mask_threshold(mask_threshold: float | None) -> float | None:
    """The prediction threshold, a probability in [0, 1] or None (the processor's). Raises ValueError otherwise."""
    check_number("mask_threshold", mask_threshold)
    if mask_threshold is not None and not 0.0 <= mask_threshold <= 1.0:
        raise ValueError(f"mask_threshold: expected a probability in [0, 1], got {mask_threshold!r}")
    return mask_threshold


def use_default_batch_size(pipe: ChunkPipeline) -> None:
    """Batch up to `DEFAULT_OBJECTS_PER_BATCH` chunks per forward pass unless `pipeline(..., batch_size=B)` or the
    call's `batch_size` says otherwise (transformers' own default is one)."""
    if pipe._batch_size is None:
        pipe._batch_size = DEFAULT_OBJECTS_PER_BATCH


def generate_batch(model, model_inputs: dict, num_steps: int | None, seed: int | None, greedy: bool):
    """`model.generate` on a pipeline batch. With a `seed`, each chunk samples from its own generator, seeded from
    `seed` and the chunk's `sample_keys` entry `(batch,)` (`maskgit.object_generators`), so its masks do not depend
    on `batch_size` or on the other chunks of its batch."""
    generator = None
    if seed is not None:
        keys = model_inputs["sample_keys"].tolist()
        generator = object_generators(seed, keys, device=model_inputs["pixel_values"].device)
    return model.generate(
        model_inputs["pixel_values"],
        model_inputs["visible_masks"],
        num_steps=num_steps,
        generator=generator,
        greedy=greedy,
    )


class AmodalSegmentationPipeline(ChunkPipeline):
    """Predict the full (amodal) mask of each object of an image from its visible mask.

    Call forms: `pipe(image, visible_masks=[...])` or `pipe(image, label_map=...)` for one image (returns a list
    with one dict per object), `pipe([{"image": ..., "visible_masks": [...]}, ...], batch_size=B)` for several
    (returns one such list per image). Images are PIL images, numpy arrays, paths, http(s) URLs or `data:` URIs
    (fetched with `timeout` seconds). `visible_masks` may also be the output of `pipeline("image-segmentation")`.

    Without masks, a `visible_mask_model` given at construction (`pipeline(..., visible_mask_model=ID_OR_MODEL)`,
    see `visible_mask_sources`) finds them: a SAM or SAM 2 model (e.g. facebook/sam2.1-hiera-tiny, which needs
    torchvision) from the prompts `input_boxes=[[x0, y0, x1, y1], ...]` and / or `input_points=[[[x, y], ...], ...]`,
    `input_labels=[[1, ...], ...]` (one object per prompt), a segmentation model (Mask2Former, OneFormer, DETR, ...)
    from the image alone, keeping the instances scoring at least `detection_threshold` (default 0.5).

    Parameters: `num_steps` (MaskGIT steps K), `seed` (reproducible sampling), `greedy` (argmax decoding),
    `mask_threshold` (foreground probability of the predictions; default the processor's), `union_with_visible`
    (add the input visible mask to the amodal mask), `return_coarse` (also return the VQ-decoded coarse mask),
    `restrict_to_occluders` (default False; the authors' MOViD-A post-processing): an object's hidden part may only
    lie on the pixels of the call's other objects (their visible masks, the other labels of a `label_map`, the
    other detections), so a hidden part predicted on background is dropped; the amodal mask becomes the visible
    mask plus the thresholded prediction on those pixels. Only the objects of the call count as occluders: give
    every object of the image. It is applied after `mask_threshold`, contains the visible mask (so
    `union_with_visible` adds nothing) and leaves `coarse_amodal_mask` and `pred_visible_mask` as predicted.

    Each object dict holds `label` (its `label_map` id or the detector's class; None for plain masks), `mask` (the
    amodal mask, as transformers' segmentation pipelines name it) and `amodal_mask` (the same image),
    `visible_mask` (the visible mask that was completed), `pred_visible_mask` (the model's refined visible
    prediction) and `occluded_mask` (amodal minus the visible mask), all PIL "L" images at the original size;
    `detection_score` (the score of the model that found the visible mask; None for given masks); `score` (mean
    token confidence); `bbox` (`[x, y, w, h]` of the amodal mask, None if empty); `occlusion_rate` (occluded area
    over amodal area); and `coarse_amodal_mask` when asked. The mask policy is the image processor's
    (`C2FSegImageProcessor.post_process_objects`); an object whose crop is smaller than `min_crop_size` gets a
    warning and an amodal mask that includes its visible mask.
    """

    def __init__(self, *args, visible_mask_model=None, visible_mask_processor=None, **kwargs):
        super().__init__(*args, **kwargs)
        use_default_batch_size(self)
        self.image_processor = checked_model_and_processor(self.model, self.image_processor)
        self.visible_mask_source = None
        if visible_mask_model is not None:
            self.visible_mask_source = load_visible_mask_source(
                visible_mask_model, visible_mask_processor, device=self.device
            )

    def _sanitize_parameters(
        self,
        visible_masks=None,
        label_map=None,
        input_boxes=None,
        input_points=None,
        input_labels=None,
        detection_threshold: float | None = None,
        timeout: float | None = None,
        num_steps: int | None = None,
        seed: int | None = None,
        greedy: bool | None = None,
        mask_threshold: float | None = None,
        union_with_visible: bool | None = None,
        return_coarse: bool | None = None,
        restrict_to_occluders: bool | None = None,
    ):
        check_generation_parameters(num_steps, seed, greedy, self.model.config)
        flags = {
            "union_with_visible": union_with_visible,
            "return_coarse": return_coarse,
            "restrict_to_occluders": restrict_to_occluders,
        }
        for name, flag in flags.items():
            check_flag(name, flag)
        check_number("detection_threshold", detection_threshold)
        check_number("timeout", timeout)
        preprocess = {
            "visible_masks": visible_masks,
            "label_map": label_map,
            "prompts": {"input_boxes": input_boxes, "input_points": input_points, "input_labels": input_labels},
            "detection_threshold": 0.5 if detection_threshold is None else detection_threshold,
            "timeout": timeout,
        }
        forward = {
            "num_steps": num_steps,
            "seed": seed,
            "greedy": bool(greedy),
            "mask_threshold": check_mask_threshold(mask_threshold),
        }
        postprocess = {
            "mask_threshold": forward["mask_threshold"],
            "union_with_visible": bool(union_with_visible),
            "return_coarse": bool(return_coarse),
            "restrict_to_occluders": bool(restrict_to_occluders),
        }
        return preprocess, forward, postprocess

    def __call__(self, inputs, **kwargs):
        """See the class docstring."""
        check_inputs_not_empty(inputs)
        return super().__call__(inputs, **kwargs)

    def preprocess(
        self, inputs, visible_masks=None, label_map=None, prompts=None, detection_threshold=0.5, timeout=None
    ):
        prompts = dict(prompts or {})
        if isinstance(inputs, dict):
            if "image" not in inputs:
                raise ValueError(f"each input dict needs an 'image' key, got keys {sorted(inputs)}")
            visible_masks = inputs.get("visible_masks", visible_masks)
            label_map = inputs.get("label_map", label_map)
            prompts.update({name: inputs[name] for name in PROMPT_NAMES if name in inputs})
            inputs = inputs["image"]
        image = load_rgb_image(inputs, timeout=timeout)
        objects = None
        if visible_masks is None and label_map is None:
            objects = self._found_objects(image, prompts, detection_threshold)
        elif any(value is not None for value in prompts.values()):
            raise ValueError("give either prompts (input_boxes / input_points) or visible_masks / label_map, not both")
        elif is_segment_list(visible_masks):
            objects = objects_from_segments(visible_masks, image.shape[:2], self.image_processor.visible_mask_threshold)
        if objects is not None:
            visible_masks = [item.mask for item in objects]
        crops = self.image_processor(image, visible_masks=visible_masks, label_map=label_map)
        original_size = tuple(crops["original_sizes"][0].tolist())
        masks = crops["original_visible_masks"][0].numpy()
        if objects is None:
            labels = crops["labels"].tolist() if "labels" in crops else [None] * len(masks)
            objects = [VisibleObject(mask, label) for mask, label in zip(masks, labels)]
        for index, (mask, item) in enumerate(zip(masks, objects)):
            crop_box = tuple(crops["crop_boxes"][index].tolist())
            info = ObjectInfo(crop_box, original_size, mask, item.label, item.detection_score, image)
            yield {
                "pixel_values": crops["pixel_values"][index : index + 1],
                "visible_masks": crops["visible_masks"][index : index + 1],
                "sample_keys": torch.tensor([mask_key(mask)]),
                "object_info": info,
                "is_last": index == len(masks) - 1,
            }

    def _found_objects(self, image: np.ndarray, prompts: dict, detection_threshold: float) -> list[VisibleObject]:
        """The visible objects the `visible_mask_model` finds in `image`, from the prompts for a promptable one."""
        given = [name for name, value in prompts.items() if value is not None]
        if self.visible_mask_source is None:
            if given:
                raise ValueError(
                    f"{given[0]}: prompts need a promptable visible_mask_model, e.g. pipeline('amodal-segmentation', "
                    "model=..., visible_mask_model='facebook/sam-vit-base')"
                )
            raise ValueError(
                "give visible_masks (a list of masks) or label_map, or build the pipeline with a visible_mask_model"
            )
        picture = PIL.Image.fromarray(image)
        if isinstance(self.visible_mask_source, PromptableMaskSource):
            return self.visible_mask_source(picture, **prompts)
        if given:
            raise ValueError(f"{given[0]}: this visible_mask_model is a segmentation model; it takes no prompts")
        return self.visible_mask_source(picture, detection_threshold)

    def _forward(self, model_inputs, num_steps=None, seed=None, greedy=False, mask_threshold=None):
        output = generate_batch(self.model, model_inputs, num_steps, seed, greedy)
        output, object_info = self._second_crops(model_inputs, output, num_steps, seed, greedy, mask_threshold)
        return {
            "amodal_masks": output.amodal_masks,
            "pred_visible_masks": output.pred_visible_masks,
            "coarse_amodal_masks": output.coarse_amodal_masks,
            "scores": output.scores,
            "object_info": object_info,
            "is_last": model_inputs["is_last"],
        }

    def _second_crops(self, model_inputs, output, num_steps, seed, greedy, mask_threshold):
        """`with_second_crops` on a batch: the output and the `object_info` (one or a list, as batched) with the
        second crops' predictions and boxes."""
        batched = isinstance(model_inputs["object_info"], list)
        infos = model_inputs["object_info"] if batched else [model_inputs["object_info"]]
        first = model_inputs["pixel_values"]

        def generate(indices: list[int], pixel_values: torch.Tensor, visible_masks: torch.Tensor):
            subset = {
                "pixel_values": pixel_values.to(device=first.device, dtype=first.dtype),
                "visible_masks": visible_masks.to(device=first.device, dtype=model_inputs["visible_masks"].dtype),
                "sample_keys": model_inputs["sample_keys"][indices],
            }
            return generate_batch(self.model, subset, num_steps, seed, greedy)

        output, boxes = with_second_crops(
            output,
            torch.tensor([info.crop_box for info in infos], dtype=torch.long),
            [info.original_size for info in infos],
            lambda index: (infos[index].image, infos[index].input_visible_mask),
            generate,
            self.image_processor,
            mask_threshold,
        )
        infos = [dataclasses.replace(info, crop_box=tuple(box)) for info, box in zip(infos, boxes.tolist())]
        return output, infos if batched else infos[0]

    def postprocess(
        self,
        model_outputs,
        mask_threshold=None,
        union_with_visible=False,
        return_coarse=False,
        restrict_to_occluders=False,
    ):
        """All objects of one image through the processor's post-processing in one batch."""
        infos = [output["object_info"] for output in model_outputs]
        infos = [info[0] if isinstance(info, list) else info for info in infos]
        outputs = {
            name: torch.cat([output[name].reshape(1, *output[name].shape[-3:]) for output in model_outputs])
            for name in ("amodal_masks", "pred_visible_masks", "coarse_amodal_masks")
        }
        outputs["scores"] = torch.cat([output["scores"].reshape(-1) for output in model_outputs])
        (results,) = self.image_processor.post_process_objects(
            outputs,
            torch.tensor([info.crop_box for info in infos]),
            [infos[0].original_size],
            [np.stack([info.input_visible_mask for info in infos])],
            mask_threshold=mask_threshold,
            union_with_visible=union_with_visible,
            return_coarse=return_coarse,
            restrict_to_occluders=restrict_to_occluders,
        )
        return [self._object_result(result, info) for result, info in zip(results, infos)]

    @staticmethod
    def _object_result(result: dict, info: ObjectInfo) -> dict:
        """The user-facing dict of one object: masks as PIL "L" images, with its label and visible mask."""
        result = {
            key: mask_to_image(value) if isinstance(value, np.ndarray) else value for key, value in result.items()
        }
        return {
            "label": info.label,
            "mask": result["amodal_mask"],
            **result,
            "visible_mask": mask_to_image(info.input_visible_mask),
            "detection_score": info.detection_score,
        }


__all__ = ["AmodalSegmentationPipeline"]
