"""Amodal segmentation evaluation (paper §4): metrics, baselines, COCO AP, the accumulator, the report and the runner.

Modules, one concern each: `metrics` (IoU_full, IoU_occ, occlusion-rate bins), `baselines` (visible mask, convex
hull, `prediction_variants`), `coco` (COCO AP / AR via pycocotools), `accumulator` (`AmodalMetrics`,
`EvaluationResults`), `report` (`write_report`: JSON, Markdown, chart), `runner` (`evaluate_model`: a model over a
dataset), `distributed` (the processes of a launcher: sharding, gathering), `predict` (`predict_dataset`: every
object's amodal mask written back into the dataset) and `cli` (`c2f-hf evaluate`, `c2f-hf predict`). The mask policy
(binarisation, union with the visible mask, occluded mask, occlusion rate) is the image processor's
(`c2f_hf.models.c2f_seg.image_processing_c2f_seg`); import it from there.

Conventions shared by every module of this package (the others refer to this list):

* **Masks** are full-size `(H, W)` masks after paste-back, given as numpy arrays, torch tensors or PIL images. A
  pixel is foreground when it is True (bool masks) or greater than 0.5 (any other dtype, so {0, 1} floats,
  probabilities and 0/255 "L" images all work). Functions that return masks return numpy bool `(H, W)` arrays.
* **IoU** of two masks whose union is empty is 1.0: both agree that there is nothing there.
* **IoU_occ** = IoU(pred_amodal − gt_visible, gt_amodal − gt_visible), set differences (clip at 0). It is only
  defined when the ground-truth occluded region `gt_amodal − gt_visible` is non-empty; otherwise it is None and
  the object does not enter mIoU_occ. Its union is therefore never empty.
* **Invented area** measures hidden parts made up for objects that nothing hides. An object is *unoccluded* when
  its ground-truth occluded region `gt_amodal − gt_visible` is empty (the masks decide, not the occlusion rate: the
  objects that IoU_occ leaves out) and its amodal mask is not; its invented area is
  |pred_amodal − gt_amodal| / |gt_amodal|, the predicted area outside the true amodal mask as a fraction of the
  object's area (>= 0, above 1 when a prediction adds more than the object's own area). `invented_area` is its
  mean over the counted unoccluded objects (`num_unoccluded_objects`), None when there are none. Unoccluded objects
  have occlusion rate 0 when it is computed from the masks, so a filter such as FISHBOWL's (0.1, 0.7) leaves them
  all out; measure it without one, or with one starting at 0.
* **Occlusion rates** are fractions in [0, 1] (like COCOA's `occlude_rate`), not percent. When none is given,
  it is computed from the masks as `1 − |visible ∩ amodal| / |amodal|` (0.0 for an empty amodal mask).
* **Occlusion-rate filter** `occlusion_range=(low, high)` keeps objects with `low <= rate <= high` (both bounds
  inclusive; FISHBOWL uses (0.1, 0.7)). It applies to every number: mIoU, bins, counts and AP, and to missed
  ground-truth objects too. Unmatched detections have no occlusion rate: they always take part in AP / AR.
* **Occlusion-rate bins** (default edges 0, 0.1, 0.3, 0.5, 0.7, 1.0) are closed on the left and open on the
  right, `[lower, upper)`, except the last one, which is closed on both sides, `[0.7, 1.0]`. So a rate of
  exactly 0.1 falls in 10-30% and a rate of 1.0 in 70-100%.
* **AP / AR** come from pycocotools' `COCOeval` with `iouType="segm"` on amodal masks: AP is the mean over IoU
  thresholds 0.50:0.05:0.95, AP50 and AP75 at one threshold, AR is AR@100 (at most 100 detections per image,
  all object areas; COCO's default AR). A value COCO reports as -1 (no ground truth) is None here. As in COCO
  and the paper, AP / AR see every detection against every ground-truth object of each image: besides the
  objects (each a ground truth with its detection), `AmodalMetrics` takes detections that match no ground-truth
  object (false positives, `add_unmatched_detection`) and ground-truth objects that no detection matched (false
  negatives, `add_missed_object`). These two enter AP / AR only, never mIoU, bins or object counts.
* **Convex hull baseline**: the hull of the foreground pixel *centres*; a pixel belongs to the hull mask when its
  centre lies inside or on the hull. Masks whose centres do not span an area (empty, one pixel, one row or
  column, collinear pixels) make Qhull fail; their hull mask is the mask itself.
* **Union with visible** (the authors report it next to the raw prediction) is `pred_amodal ∪ input_visible`,
  where the input visible mask is the one the model received (for benchmarks with a detector, the predicted
  visible mask; otherwise the ground-truth one).
* **Restricted to occluders** (the authors' MOViD-A post-processing) is `input_visible ∪ (pred_amodal ∩
  occluders)`, the occluders being the union of the other objects' input visible masks of the same image or frame
  (`mask_policy.restrict_to_occluders`): a hidden part may only lie behind another object.
"""

from ..lazy_exports import lazy_exports

# Each name is imported from its module on first use: `metrics` needs numpy only, `coco` pycocotools, `baselines`
# scipy, `runner` datasets (see `c2f_hf.lazy_exports`).
__getattr__ = lazy_exports(
    __name__,
    {
        "accumulator": ("AmodalMetrics", "EvaluationResults"),
        "baselines": (
            "CONVEX_HULL_BASELINE",
            "RESTRICTED_TO_OCCLUDERS_SUFFIX",
            "UNION_WITH_VISIBLE_SUFFIX",
            "VISIBLE_BASELINE",
            "convex_hull_mask",
            "prediction_variants",
        ),
        "coco": ("MaskAnnotation", "coco_mask_ap"),
        "metrics": ("DEFAULT_BIN_EDGES", "FISHBOWL_OCCLUSION_RANGE", "iou", "occluded_iou"),
        "report": ("format_markdown", "write_report"),
        "predict": ("PredictionRun", "predict_dataset"),
        "runner": ("evaluate_model",),
    },
)

__all__ = [
    "CONVEX_HULL_BASELINE",
    "DEFAULT_BIN_EDGES",
    "FISHBOWL_OCCLUSION_RANGE",
    "RESTRICTED_TO_OCCLUDERS_SUFFIX",
    "UNION_WITH_VISIBLE_SUFFIX",
    "VISIBLE_BASELINE",
    "AmodalMetrics",
    "EvaluationResults",
    "MaskAnnotation",
    "PredictionRun",
    "coco_mask_ap",
    "convex_hull_mask",
    "evaluate_model",
    "format_markdown",
    "iou",
    "occluded_iou",
    "predict_dataset",
    "prediction_variants",
    "write_report",
]
