"""The C2F-Seg image processor: object crops in, full-size per-object results out.

It reads images and masks (`image_loading`), crops each object by the authors' rule (`mask_geometry`) and applies
the mask policy (`mask_policy`) to the pasted-back predictions. Its settings are the only knobs of that policy:

* input visible masks are binarised at `visible_mask_threshold`, predicted probabilities at `mask_threshold`;
* **tiny objects**: an object whose crop box spans fewer than `min_crop_size` pixels (default 8, an object of
  about 4 px at `enlarge_ratio` 2) along both axes is upsampled so much that the prediction says little and, pasted
  back, may not even cover the given pixels. `preprocess` warns about each such object, and its amodal mask is
  always united with its visible mask, so no given visible pixel is ever lost (video: per window, by its box).
* **many objects**: every object costs its full-size mask and its crops (about `H * W + 16 * S * S` bytes at crop
  size S: 1 MB at S = 256), all held at once; above `MANY_OBJECTS` objects in one image (a label map with
  hundreds of labels, say) `preprocess` warns with the estimate, so the caller can split the objects over calls.
* **second crop** (`second_crop_ratio`, default None: off, the authors' single crop): an object whose thresholded
  amodal prediction reaches a side of its crop where the image goes on is predicted once more from a larger crop
  holding that prediction (`second_crop.with_second_crops`; the pipeline and the evaluation runner do it), and the
  second prediction is the result. Image objects only: the video processor refuses it.
* **occluders** (`post_process_objects(..., restrict_to_occluders=True)`, off by default): an object's hidden part
  may only lie on the pixels of the image's other objects (the authors' MOViD-A post-processing,
  `mask_policy.restrict_to_occluders`), so only the objects passed together count as occluders.

Every setting can also be given to one call of `preprocess` (`PROCESSOR_OPTIONS`); anything else is refused.
"""

import logging
import numbers
import warnings

import numpy as np
import torch
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.processing_utils import ImagesKwargs, Unpack

from .image_loading import load_binary_mask, load_rgb_image, masks_from_label_map
from .mask_geometry import CropBox, crop_image, crop_mask, is_tiny_crop, mask_bounding_box, object_crop_box, paste_crop
from .mask_policy import object_result, occluder_masks_from_visible

logger = logging.getLogger(__name__)
# Objects per image above which `preprocess` warns about memory (see the module docstring).
MANY_OBJECTS = 100


class C2FSegImageProcessorKwargs(ImagesKwargs, total=False):
    """Options of `C2FSegImageProcessor` beyond the standard image-processor ones.

    crop_resolution: side of the square object crops (the model's `image_size`).
    enlarge_ratio: scale of the visible-mask box that gives the crop (the authors use 2.0 at test time).
    visible_mask_threshold: value at or above which a float *input* visible mask counts as foreground.
    mask_threshold: probability at or above which a pasted-back *prediction* counts as foreground.
    min_crop_size: objects whose crop box spans fewer pixels along both axes are tiny (see the module docstring):
        warned about, and their amodal mask always includes their visible mask.
    second_crop_ratio: None (one crop per object), or the enlarge ratio of a second crop around the first
        prediction of an object whose prediction reaches its crop's border (see the module docstring).
    """

    crop_resolution: int
    enlarge_ratio: float
    visible_mask_threshold: float
    mask_threshold: float
    min_crop_size: int
    second_crop_ratio: float | None


PREPROCESS_OPTIONS = (
    "crop_resolution",
    "enlarge_ratio",
    "visible_mask_threshold",
    "min_crop_size",
    "do_normalize",
    "image_mean",
    "image_std",
)
PROCESSOR_OPTIONS = (*PREPROCESS_OPTIONS, "mask_threshold", "second_crop_ratio")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and bool(np.isfinite(value))


def _is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _option_problem(name: str, value) -> str | None:
    """Why `value` is not a valid `name` setting, or None when it is."""
    if name == "crop_resolution" and not (_is_whole(value) and value > 0):
        return "a positive integer"
    if name == "min_crop_size" and not (_is_whole(value) and value >= 0):
        return "a non-negative integer"
    if name == "enlarge_ratio" and not (_is_number(value) and value > 0):
        return "a positive number"
    if name == "second_crop_ratio" and value is not None and not (_is_number(value) and value > 0):
        return "None (one crop) or a positive number"
    if name in ("visible_mask_threshold", "mask_threshold") and not (_is_number(value) and 0.0 <= value <= 1.0):
        return "a number in [0, 1]"
    if name == "do_normalize" and not isinstance(value, (bool, np.bool_)):
        return "True or False"
    if name in ("image_mean", "image_std"):
        values = list(value) if isinstance(value, (list, tuple)) else None
        if values is None or len(values) != 3 or not all(_is_number(item) for item in values):
            return "three numbers (one per RGB channel)"
        if name == "image_std" and min(values) <= 0:
            return "three positive numbers (one per RGB channel)"
    return None


def check_processor_options(options: dict, allowed: tuple[str, ...] = PROCESSOR_OPTIONS) -> None:
    """Raise ValueError naming the first option that is not one of `allowed` or whose value is of the wrong kind."""
    for name, value in options.items():
        if name not in allowed:
            raise ValueError(f"{name}: not an option here; the options are {', '.join(allowed)}")
        problem = _option_problem(name, value)
        if problem is not None:
            raise ValueError(f"{name}: expected {problem}, got {value!r}")


def _as_numpy(value):
    """A torch tensor (or a list of them) as numpy."""
    if isinstance(value, list):
        return [item.numpy() for item in value]
    return value.numpy()


def _per_object_sizes(original_sizes, image_indices, num_objects: int) -> list[tuple[int, int]]:
    """The `(height, width)` of each object's image from `original_sizes (B, 2)` and `image_indices (N,)` (None:
    every object is from the only image)."""
    sizes = [tuple(int(value) for value in size) for size in np.asarray(original_sizes).reshape(-1, 2)]
    if image_indices is None:
        if len(sizes) != 1:
            raise ValueError(f"image_indices: needed with {len(sizes)} images in original_sizes")
        return sizes * num_objects
    return [sizes[int(index)] for index in np.asarray(image_indices).reshape(-1)]


def _group_by_image(values: list, image_indices, num_images: int) -> list[list]:
    """`values` of N objects as B lists, in order, by `image_indices (N,)` (None: all in the one image)."""
    indices = [0] * len(values) if image_indices is None else np.asarray(image_indices).reshape(-1).tolist()
    groups = [[] for _ in range(num_images)]
    for value, index in zip(values, indices):
        groups[int(index)].append(value)
    return groups


def warn_about_many_objects(num_objects: int, image_size: tuple[int, int], crop_resolution: int, name: str) -> None:
    """Warn when one image has more than `MANY_OBJECTS` objects, with the memory its preprocessing holds: per
    object the `(H, W)` bool mask, the `(3, S, S)` float32 crop and the `(1, S, S)` float32 mask crop."""
    if num_objects <= MANY_OBJECTS:
        return
    height, width = image_size
    megabytes = num_objects * (height * width + 16 * crop_resolution**2) / 1e6
    warnings.warn(
        f"{name}: has {num_objects} objects (more than {MANY_OBJECTS}); preprocessing holds about {megabytes:.0f} MB "
        "of masks and crops at once: pass the objects over several calls to bound memory",
        UserWarning,
        stacklevel=4,
    )


class C2FSegImageProcessor(PilBackend):
    """Builds the per-object crops C2F-Seg reads and pastes its predictions back (PIL/numpy backend).

    `processor(images, visible_masks=...)` (or `label_map=`), for one image or a list of B images, returns the
    crops of all N objects in order: `pixel_values (N, 3, S, S)` RGB in [0, 1] (optionally normalised),
    `visible_masks (N, 1, S, S)` in {0, 1}, `crop_boxes (N, 4)` as (top, left, bottom, right) slice bounds,
    `image_indices (N,)` (which image each object is from), `original_sizes (B, 2)` (height, width),
    `original_visible_masks` (a list of B `(N_b, H_b, W_b)` bool arrays: the validated full-size input masks, so
    callers never load them twice) and, with a `label_map`, `labels (N,)` (the label of each object). One image is
    a batch of one: the layout is the same. The authors apply no mean/std normalisation, so `do_normalize`
    defaults to False.

    `post_process_objects` turns `model.generate` outputs into full-size per-object results (one list per image)
    with the mask policy of the module docstring; `post_process_amodal_masks` only pastes back and thresholds.
    """

    valid_kwargs = C2FSegImageProcessorKwargs
    model_input_names = ["pixel_values", "visible_masks"]
    crop_resolution = 256
    enlarge_ratio = 2.0
    visible_mask_threshold = 0.5
    mask_threshold = 0.5
    min_crop_size = 8
    second_crop_ratio = None
    do_normalize = False
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD

    def __init__(self, **kwargs: Unpack[C2FSegImageProcessorKwargs]):
        super().__init__(**kwargs)
        check_processor_options({name: getattr(self, name) for name in PROCESSOR_OPTIONS})

    def __call__(self, images, visible_masks=None, label_map=None, **kwargs) -> BatchFeature:
        return self.preprocess(images, visible_masks=visible_masks, label_map=label_map, **kwargs)

    def preprocess(
        self, images, visible_masks=None, label_map=None, return_tensors: str | None = "pt", **options
    ) -> BatchFeature:
        """Crop every object of one image, or of a list of images.

        Args:
            images: one image (PIL, path, URL or numpy (H, W[, 3|4])), or a list of them.
            visible_masks: for one image, a list of N masks of its size (PIL, numpy or torch; see
                `load_binary_mask`); for a list of images, one such list per image.
            label_map: alternatively, an `(H, W)` integer map whose positive labels are the objects (for a list of
                images, one map per image).
            return_tensors: "pt" (torch tensors, the default) or "np" (numpy arrays).
            options: this call's values of the processor's settings (`PREPROCESS_OPTIONS`: `crop_resolution`,
                `enlarge_ratio`, `visible_mask_threshold`, `min_crop_size`, `do_normalize`, `image_mean`,
                `image_std`); any other name is a ValueError.

        Returns:
            The keys of the class docstring, for one image as for a list.
        """
        if return_tensors not in ("pt", "np"):
            raise ValueError(f"return_tensors: expected 'pt' or 'np', got {return_tensors!r}")
        check_processor_options(options, PREPROCESS_OPTIONS)
        settings = {name: options.get(name, getattr(self, name)) for name in PREPROCESS_OPTIONS}
        if isinstance(images, (list, tuple)):
            data = self._crop_images(images, visible_masks, label_map, settings)
        else:
            data = self._crop_images([images], [visible_masks], [label_map], settings, names=["image"])
        if return_tensors == "np":
            data = {key: _as_numpy(value) for key, value in data.items()}
        return BatchFeature(data=data)

    def _crop_images(
        self, images: list, visible_masks, label_map, settings: dict, names: list[str] | None = None
    ) -> dict:
        """`_crop_image` of each image of a batch, concatenated (see the class docstring)."""
        if len(images) == 0:
            raise ValueError("images: the list is empty; pass at least one image")
        per_image = {"visible_masks": visible_masks, "label_map": label_map}
        for name, values in per_image.items():
            if values is not None and (not isinstance(values, (list, tuple)) or len(values) != len(images)):
                found = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
                raise ValueError(f"{name}: with {len(images)} images, expected one entry per image, got {found}")
        names = names or [f"images[{index}]" for index in range(len(images))]
        crops = [
            self._crop_image(
                image,
                None if visible_masks is None else visible_masks[index],
                None if label_map is None else label_map[index],
                settings,
                names[index],
            )
            for index, image in enumerate(images)
        ]
        data = {
            key: torch.cat([crop[key] for crop in crops]) for key in ("pixel_values", "visible_masks", "crop_boxes")
        }
        data["image_indices"] = torch.cat(
            [torch.full((len(crop["crop_boxes"]),), index, dtype=torch.long) for index, crop in enumerate(crops)]
        )
        data["original_sizes"] = torch.stack([crop["original_size"] for crop in crops])
        data["original_visible_masks"] = [crop["original_visible_masks"] for crop in crops]
        if all("labels" in crop for crop in crops):
            data["labels"] = torch.cat([crop["labels"] for crop in crops])
        return data

    def _crop_image(self, image, visible_masks, label_map, settings: dict, name: str) -> dict:
        """The crops of every object of one image, as torch tensors."""
        try:
            image = load_rgb_image(image)
            masks, labels = self.load_visible_masks(
                image.shape[:2], visible_masks, label_map, settings["visible_mask_threshold"]
            )
        except ValueError as error:
            if name == "image":
                raise
            raise ValueError(f"{name}: {error}") from None
        warn_about_many_objects(len(masks), image.shape[:2], settings["crop_resolution"], name)
        boxes = [object_crop_box(mask, settings["enlarge_ratio"]) for mask in masks]
        self.warn_about_tiny_objects(masks, boxes, labels, settings["min_crop_size"])
        return {
            **self.crop_objects([image] * len(masks), masks, boxes, settings),
            "crop_boxes": torch.tensor([box.to_list() for box in boxes], dtype=torch.long),
            "original_size": torch.tensor(image.shape[:2], dtype=torch.long),
            "original_visible_masks": torch.from_numpy(np.stack(masks)),
            **({} if labels is None else {"labels": torch.tensor(labels, dtype=torch.long)}),
        }

    def crop_objects(
        self, images: list[np.ndarray], masks: list[np.ndarray], boxes: list[CropBox], settings: dict | None = None
    ) -> dict[str, torch.Tensor]:
        """The model inputs of N objects cropped from given boxes: object i is `masks[i]` `(H, W)` bool in the
        `(H, W, 3)` uint8 `images[i]`, cropped to `boxes[i]`. Returns `pixel_values (N, 3, S, S)` (normalised as
        the settings say) and `visible_masks (N, 1, S, S)`. `settings` defaults to the processor's own."""
        settings = settings or {name: getattr(self, name) for name in PREPROCESS_OPTIONS}
        size = settings["crop_resolution"]
        pixel_values = torch.stack([crop_image(image, box, size) for image, box in zip(images, boxes)])
        normalize = {key: settings[key] for key in ("do_normalize", "image_mean", "image_std")}
        return {
            "pixel_values": self.normalize_crops(pixel_values, **normalize),
            "visible_masks": torch.stack([crop_mask(mask, box, size) for mask, box in zip(masks, boxes)]),
        }

    def warn_about_tiny_objects(
        self,
        masks: list[np.ndarray],
        boxes: list[CropBox],
        labels: list[int] | None = None,
        min_crop_size: int | None = None,
    ) -> None:
        """Warn once per object whose crop box is tiny (see the module docstring)."""
        min_crop_size = self.min_crop_size if min_crop_size is None else min_crop_size
        for index, (mask, box) in enumerate(zip(masks, boxes)):
            if is_tiny_crop(box, min_crop_size):
                name = f"visible_masks[{index}]" if labels is None else f"label_map label {labels[index]}"
                _, _, height, width = mask_bounding_box(mask)
                warnings.warn(
                    f"{name}: the object is only {height}x{width} px, so its crop is {box.height}x{box.width} px "
                    f"(min_crop_size={min_crop_size}); its prediction is unreliable, and its amodal mask "
                    "includes its visible mask",
                    UserWarning,
                    stacklevel=4,
                )

    @classmethod
    def for_model(
        cls, image_processor: "C2FSegImageProcessor | None", model_config, source: str
    ) -> "C2FSegImageProcessor":
        """The processor to run a model with: `image_processor`, or (None) a default one with the model's crop size
        and a warning; its `crop_resolution` must equal `model_config.image_size`. `source` names the model (a
        folder or Hub id) in the messages. Raises ValueError on a processor of another kind or size. (Checked by
        class name: a processor loaded as remote code is a copy of this class from another module.)"""
        if image_processor is None:
            logger.warning(
                "%s has no preprocessor_config.json: using a default C2FSegImageProcessor(crop_resolution=%d); "
                "save one with processor.save_pretrained(folder) to make this explicit",
                source,
                model_config.image_size,
            )
            return cls(crop_resolution=model_config.image_size)
        if "C2FSegImageProcessor" not in {base.__name__ for base in type(image_processor).__mro__}:
            raise ValueError(
                f"{source}: the image processor is a {type(image_processor).__name__}, not a C2FSegImageProcessor"
            )
        if image_processor.crop_resolution != model_config.image_size:
            raise ValueError(
                f"{source}: the image processor crops at crop_resolution={image_processor.crop_resolution}, but the "
                f"model takes image_size={model_config.image_size}; set them equal in preprocessor_config.json"
            )
        return image_processor

    def normalize_crops(
        self,
        pixel_values: torch.Tensor,
        do_normalize: bool | None = None,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
    ) -> torch.Tensor:
        """`(..., 3, S, S)` crops in [0, 1] -> the same, mean/std normalised when `do_normalize`; each argument
        defaults to the processor's setting."""
        if not (self.do_normalize if do_normalize is None else do_normalize):
            return pixel_values
        mean = torch.tensor(self.image_mean if image_mean is None else image_mean).view(3, 1, 1)
        std = torch.tensor(self.image_std if image_std is None else image_std).view(3, 1, 1)
        return (pixel_values - mean) / std

    def load_visible_masks(
        self, image_size: tuple[int, int], visible_masks=None, label_map=None, threshold: float | None = None
    ) -> tuple[list[np.ndarray], list[int] | None]:
        """Validate the object masks of one image: `(H, W)` bool arrays (float masks binarised at `threshold`,
        default `visible_mask_threshold`) and, from a `label_map`, their labels."""
        if (visible_masks is None) == (label_map is None):
            raise ValueError("give exactly one of visible_masks (a list of masks) or label_map")
        if label_map is not None:
            masks, labels = masks_from_label_map(label_map, image_size)
            if not masks:
                raise ValueError("label_map: has no positive label, so there is no object to segment")
            return masks, labels
        if not isinstance(visible_masks, (list, tuple)):
            visible_masks = [visible_masks]
        if len(visible_masks) == 0:
            raise ValueError("visible_masks: zero masks given; pass at least one visible mask per image")
        threshold = self.visible_mask_threshold if threshold is None else threshold
        masks = [
            load_binary_mask(mask, f"visible_masks[{index}]", image_size, threshold)
            for index, mask in enumerate(visible_masks)
        ]
        return masks, None

    def post_process_amodal_masks(
        self,
        masks: torch.Tensor,
        crop_boxes: torch.Tensor,
        original_sizes,
        image_indices=None,
        mask_threshold: float | None = None,
        visible_masks: list | None = None,
    ) -> list[torch.Tensor]:
        """Paste predicted crop probabilities of N objects back to their images and threshold them.

        Args:
            masks: `(N, 1, S, S)` probabilities.
            crop_boxes: `(N, 4)` crop boxes of `preprocess`.
            original_sizes: `(B, 2)` image sizes; `image_indices (N,)` says which image each object is from (None:
                all from one image).
            mask_threshold: foreground threshold (default: the processor's `mask_threshold`).
            visible_masks: `original_visible_masks` of `preprocess` (B `(N_b, H_b, W_b)` bool); when given, each
                result is the union with them (the authors report both the raw and the union variant).

        Returns:
            B bool tensors `(N_b, H_b, W_b)`: the masks of each image's objects at its size.
        """
        threshold = self.mask_threshold if mask_threshold is None else mask_threshold
        check_processor_options({"mask_threshold": threshold})
        sizes = _per_object_sizes(original_sizes, image_indices, len(masks))
        pasted = [
            paste_crop(mask.float().cpu(), CropBox.from_list(box), *size)[0] >= threshold
            for mask, box, size in zip(masks, crop_boxes.tolist(), sizes)
        ]
        image_sizes = np.asarray(original_sizes).reshape(-1, 2).tolist()
        groups = _group_by_image(pasted, image_indices, len(image_sizes))
        binary = [
            torch.stack(group) if group else torch.zeros((0, *size), dtype=torch.bool)
            for group, size in zip(groups, image_sizes)
        ]
        if visible_masks is not None:
            given = [torch.as_tensor(np.asarray(masks), dtype=torch.bool) for masks in visible_masks]
            binary = [image | masks for image, masks in zip(binary, given)]
        return binary

    def post_process_objects(
        self,
        outputs,
        crop_boxes: torch.Tensor,
        original_sizes,
        original_visible_masks: list,
        image_indices=None,
        mask_threshold: float | None = None,
        union_with_visible: bool = False,
        return_coarse: bool = False,
        min_crop_size: int | None = None,
        restrict_to_occluders: bool = False,
        occluder_masks: list | None = None,
    ) -> list[list[dict]]:
        """Full-size per-object results from `model.generate` outputs of N object crops of B images.

        Args:
            outputs: a `C2FSegGenerationOutput` (or a dict with its keys) holding `amodal_masks`,
                `pred_visible_masks` and `coarse_amodal_masks` `(N, 1, S, S)` probabilities and `scores (N,)`.
            crop_boxes: `(N, 4)` crop boxes of `preprocess`.
            original_sizes: `(B, 2)` image sizes of `preprocess`.
            original_visible_masks: B `(N_b, H_b, W_b)` bool input visible masks of `preprocess`.
            image_indices: `(N,)` image of each object (`preprocess`'s; None: all from one image).
            mask_threshold: foreground probability of the predictions (default: the processor's).
            union_with_visible: add the input visible mask to the amodal mask (the authors report both); tiny
                objects always get it (module docstring).
            return_coarse: also paste back the VQ-decoded coarse mask (never restricted or united: it shows what the
                VQ stage decoded).
            min_crop_size: what counts as a tiny object (default: the processor's).
            restrict_to_occluders: the authors' MOViD-A post-processing (`mask_policy.restrict_to_occluders`): after
                thresholding, an object's amodal mask becomes its input visible mask plus the predicted pixels that
                lie on its occluders, so a hidden part on background is removed. It contains the visible mask, so
                `union_with_visible` adds nothing to it.
            occluder_masks: B `(N_b, H_b, W_b)` bool occluder regions, one per object; default (None) each object's
                is the union of the other objects' `original_visible_masks` of its image
                (`mask_policy.occluder_masks_from_visible`). Read only with `restrict_to_occluders`.

        Returns:
            For each image, one dict per object with numpy bool `(H, W)` masks `amodal_mask`, `pred_visible_mask`,
            `occluded_mask` (amodal minus the input visible mask) and, when asked, `coarse_amodal_mask`; `score`
            (mean token confidence), `bbox` (COCO `[x, y, width, height]` of the amodal mask, None when empty)
            and `occlusion_rate` (occluded area over amodal area).
        """
        min_crop_size = self.min_crop_size if min_crop_size is None else min_crop_size
        check_processor_options({"min_crop_size": min_crop_size})
        paste = lambda name: [  # noqa: E731
            image.numpy()
            for image in self.post_process_amodal_masks(
                outputs[name], crop_boxes, original_sizes, image_indices, mask_threshold
            )
        ]
        amodal, pred_visible = paste("amodal_masks"), paste("pred_visible_masks")
        coarse = paste("coarse_amodal_masks") if return_coarse else None
        scores = _group_by_image(outputs["scores"].reshape(-1).tolist(), image_indices, len(amodal))
        tiny = [is_tiny_crop(CropBox.from_list(box), min_crop_size) for box in crop_boxes.tolist()]
        tiny = _group_by_image(tiny, image_indices, len(amodal))
        results = []
        for image, given in enumerate(original_visible_masks):
            given = np.asarray(given, dtype=bool)
            occluders = self._occluder_masks(given, occluder_masks, image) if restrict_to_occluders else None
            objects = [
                object_result(
                    amodal[image][index],
                    pred_visible[image][index],
                    given[index],
                    scores[image][index],
                    add_visible=union_with_visible or tiny[image][index],
                    occluder_mask=None if occluders is None else occluders[index],
                )
                for index in range(len(given))
            ]
            if coarse is not None:
                for result, mask in zip(objects, coarse[image]):
                    result["coarse_amodal_mask"] = mask
            results.append(objects)
        return results

    @staticmethod
    def _occluder_masks(visible_masks: np.ndarray, occluder_masks: list | None, image: int) -> np.ndarray:
        """The `(N, H, W)` bool occluder regions of image `image`'s objects: `occluder_masks[image]` when given,
        else derived from its objects' `(N, H, W)` `visible_masks`."""
        if occluder_masks is None:
            return occluder_masks_from_visible(visible_masks)
        occluders = np.asarray(occluder_masks[image], dtype=bool)
        if occluders.shape != visible_masks.shape:
            raise ValueError(
                f"occluder_masks[{image}]: expected one mask per object, shape {visible_masks.shape}, "
                f"got {occluders.shape}"
            )
        return occluders


__all__ = ["C2FSegImageProcessor", "PREPROCESS_OPTIONS", "PROCESSOR_OPTIONS", "check_processor_options"]
