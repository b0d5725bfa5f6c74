"""The paper's coarse-vs-refined ablation: score the VQ-decoded coarse masks as if they were the model's output.

`c2f-hf evaluate` scores the amodal masks the model's `amodal_output` names ("refined" unless a model chose
otherwise). This runs the same `evaluate_model` (same crops, paste-back, threshold, metrics and baselines) with
`amodal_output = "coarse"`, so the two reports differ only in the refiner:

    python -m c2f_hf.training.coarse_ablation --model FOLDER --dataset synthetic --split test --seed 0 --out OUT
"""

import argparse
import logging
from pathlib import Path

from ..data.schema import load_amodal_dataset
from ..evaluation import evaluate_model
from ..evaluation.report import write_report
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation

logger = logging.getLogger(__name__)


def evaluate_coarse_masks(args: argparse.Namespace) -> Path:
    """Evaluate the coarse masks of `args.model` on `args.dataset` / `args.split`; returns the report folder."""
    model = C2FSegForAmodalSegmentation.from_pretrained(args.model)
    model.config.amodal_output = "coarse"
    processor = C2FSegImageProcessor.from_pretrained(args.model)
    results = evaluate_model(
        model,
        load_amodal_dataset(args.dataset, args.split),
        image_processor=processor,
        num_steps=args.num_steps,
        seed=args.seed,
        greedy=args.greedy,
        max_objects=args.max_objects,
        progress=False,
    )
    results.run_settings["dataset"] = str(args.dataset)
    results.run_settings["masks"] = "coarse (VQ-decoded, before the refiner)"
    write_report(results, args.out)
    return args.out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="save_pretrained folder with its preprocessor_config.json")
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--num-steps", type=int, help="MaskGIT steps K (default: the model config's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--greedy", action="store_true")
    parser.add_argument("--max-objects", type=int)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    logger.info("wrote %s", evaluate_coarse_masks(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
