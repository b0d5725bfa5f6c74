"""The `amodal-segmentation` pipeline: image + visible masks in, one dict per object out.

Each object is a chunk, so objects of one image and of several images are batched through the model together up
to `batch_size`. Sampling with `seed` is reproducible for a given `batch_size` (each batch draws from a generator
seeded with `seed`); `greedy=True` is deterministic and independent of batching.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from transformers.pipelines.base import ChunkPipeline


@dataclass(frozen=True)
class ObjectInfo:
    """What postprocessing needs of one object besides the model outputs: its crop box `(top, left, bottom,
    right)`, the image size and the full-size `(H, W)` bool input visible mask."""

    crop_box: tuple[int, int, int, int]
    original_size: tuple[int, int]
    input_visible_mask: np.ndarray


def mask_to_image(mask: torch.Tensor | np.ndarray) -> PIL.Image.Image:
    """`(H, W)` bool -> PIL "L" image with 0/255 values."""
    return PIL.Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255, mode="L")


def check_num_steps(num_steps) -> None:
    """Raise ValueError unless `num_steps` is None or a positive integer."""
    if num_steps is not None and (not isinstance(num_steps, int) or num_steps < 1):
        raise ValueError(f"num_steps: expected a positive integer, got {num_steps!r}")


def renamed_mask_threshold(mask_threshold: float | None, threshold: float | None) -> float | None:
    """The prediction threshold from `mask_threshold`, or from its former name `threshold` with a FutureWarning.
    Raises ValueError outside [0, 1] or when both are given."""
    if threshold is not None:
        if mask_threshold is not None:
            raise ValueError("give mask_threshold only: threshold is its former name")
        warnings.warn(
            "the pipeline's `threshold` is now `mask_threshold` (as in transformers' segmentation pipelines)",
            FutureWarning,
            stacklevel=4,
        )
        mask_threshold = threshold
    if mask_threshold is not None and not 0.0 <= mask_threshold <= 1.0:
        raise ValueError(f"mask_threshold: expected a probability in [0, 1], got {mask_threshold!r}")
    return mask_threshold


def generate_batch(model, model_inputs: dict, num_steps: int | None, seed: int | None, greedy: bool):
    """`model.generate` on a pipeline batch; a `seed` seeds a fresh generator on the inputs' device."""
    generator = None
    if seed is not None:
        generator = torch.Generator(device=model_inputs["pixel_values"].device).manual_seed(seed)
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
    (returns one such list per image).

    Parameters: `num_steps` (MaskGIT steps K), `seed` (reproducible sampling), `greedy` (argmax decoding),
    `mask_threshold` (foreground probability of the predictions; default the processor's), `union_with_visible`
    (add the input visible mask to the amodal mask), `return_coarse` (also return the VQ-decoded coarse mask).
    `threshold` is the former name of `mask_threshold` and warns.

    Each object dict holds `amodal_mask`, `pred_visible_mask` (the model's refined visible prediction) and
    `occluded_mask` (amodal minus the input visible mask), all PIL "L" images at the original size; `score` (mean
    token confidence); `bbox` (`[x, y, w, h]` of the amodal mask, None if empty); `occlusion_rate` (occluded area
    over amodal area); and `coarse_amodal_mask` when asked. The mask policy is the image processor's
    (`C2FSegImageProcessor.post_process_objects`).
    """

    def _sanitize_parameters(
        self,
        visible_masks=None,
        label_map=None,
        num_steps: int | None = None,
        seed: int | None = None,
        greedy: bool | None = None,
        mask_threshold: float | None = None,
        union_with_visible: bool | None = None,
        return_coarse: bool | None = None,
        threshold: float | None = None,
    ):
        preprocess = {key: value for key, value in (("visible_masks", visible_masks), ("label_map", label_map))}
        forward = {"num_steps": num_steps, "seed": seed, "greedy": bool(greedy)}
        postprocess = {
            "mask_threshold": renamed_mask_threshold(mask_threshold, threshold),
            "union_with_visible": bool(union_with_visible),
            "return_coarse": bool(return_coarse),
        }
        check_num_steps(num_steps)
        return preprocess, forward, postprocess

    def __call__(self, inputs, **kwargs):
        """See the class docstring."""
        return super().__call__(inputs, **kwargs)

    def preprocess(self, inputs, visible_masks=None, label_map=None):
        if isinstance(inputs, dict):
            if "image" not in inputs:
                raise ValueError(f"each input dict needs an 'image' key, got keys {sorted(inputs)}")
            visible_masks = inputs.get("visible_masks", visible_masks)
            label_map = inputs.get("label_map", label_map)
            inputs = inputs["image"]
        crops = self.image_processor(inputs, visible_masks=visible_masks, label_map=label_map)
        original_size = tuple(crops["original_size"].tolist())
        masks = crops["original_visible_masks"].numpy()
        for index, mask in enumerate(masks):
            info = ObjectInfo(tuple(crops["crop_boxes"][index].tolist()), original_size, mask)
            yield {
                "pixel_values": crops["pixel_values"][index : index + 1],
                "visible_masks": crops["visible_masks"][index : index + 1],
                "object_info": info,
                "is_last": index == len(masks) - 1,
            }

    def _forward(self, model_inputs, num_steps=None, seed=None, greedy=False):
        output = generate_batch(self.model, model_inputs, num_steps, seed, greedy)
        return {
            "amodal_masks": output.amodal_masks,
            "pred_visible_masks": output.pred_visible_masks,
            "coarse_amodal_masks": output.coarse_amodal_masks,
            "scores": output.scores,
            "object_info": model_inputs["object_info"],
            "is_last": model_inputs["is_last"],
        }

    def postprocess(self, model_outputs, mask_threshold=None, union_with_visible=False, return_coarse=False):
        return [
            self._object_result(output, mask_threshold, union_with_visible, return_coarse) for output in model_outputs
        ]

    def _object_result(self, output, mask_threshold, union_with_visible, return_coarse) -> dict:
        info = output["object_info"]
        if isinstance(info, list):
            info = info[0]
        result = self.image_processor.post_process_objects(
            output,
            torch.tensor([info.crop_box]),
            info.original_size,
            info.input_visible_mask[None],
            mask_threshold=mask_threshold,
            union_with_visible=union_with_visible,
            return_coarse=return_coarse,
        )[0]
        return {key: mask_to_image(value) if isinstance(value, np.ndarray) else value for key, value in result.items()}


__all__ = ["AmodalSegmentationPipeline"]
