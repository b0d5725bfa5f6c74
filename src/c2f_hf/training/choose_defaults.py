"""Choose a model's decoding defaults on validation sets: MaskGIT steps K, the mask threshold, the crop's enlarge
ratio and the second crop's (`second_crop_ratio`, "none" for one crop), whether the refined or the coarse
(VQ-decoded) amodal mask is the output, and how many codes per cell sampling draws from (`sampling_top_k`; 1 keeps
only the most likely code, which makes K = 1 decoding deterministic), against both completion and invented area.
("refined_where_visible", which differs from "refined" only on fully hidden video frames, which `evaluate_model`
does not score, is not among the default `--outputs`; `evaluation.hidden_frames` measures it.)

Every combination is scored with `evaluate_model` (the same crops, paste-back, metrics and baselines as
`c2f-hf evaluate`) on each validation set; never give it a test set. A setting's score is the mean over the sets
of (mIoU_full + mIoU_occ) / 2, minus the mean invented area of the objects nothing hides (both in percentage
points, over the sets that have such objects): a point of invented area costs as much as a point of mean IoU.
The best-scoring setting is the choice; `--apply` writes it into a copy of the model folder (`num_sampling_steps`,
`amodal_output` and `sampling_top_k` into config.json, `mask_threshold`, `enlarge_ratio` and `second_crop_ratio`
into preprocessor_config.json).

With `--must-beat FOLDER` (the model in use, with its own saved defaults) the choice is instead the setting that
improves on it by the widest margin without making any number of any set worse: each setting's smallest gain over
it (mIoU_full and mIoU_occ up, invented area down, in points) is reported; among the settings whose gains are all
at least 0 and one of them above 0, the largest smallest gain wins, and a tie (a number no setting changes, such as
the invented area of objects a second crop never re-crops) goes to the higher score. A new default then never makes
any validation number worse; when no setting improves on it so, nothing is chosen or applied.

The enlarge ratio decides how much of a hidden part the crop can hold: with the authors' 2 (the crop twice the
visible mask's box), a shape hidden 60% from one side has a third of its hidden extent inside the crop. A second
crop (`--second-crop-ratios`) crops again, around the first prediction, only the objects whose prediction reaches
past the first crop.

    python -m c2f_hf.training.choose_defaults --model FOLDER --validation synthetic-val:test:800 \\
        --validation simple-val:validation --out choice
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..data.schema import load_amodal_dataset
from ..evaluation import evaluate_model
from ..models.c2f_seg.configuration_c2f_seg import AMODAL_OUTPUTS
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationSet:
    """A dataset folder or Hub id, its split, and how many objects to score (None: all)."""

    dataset: str
    split: str
    max_objects: int | None

    @classmethod
    def parse(cls, text: str) -> ValidationSet:
        """`DATASET[:SPLIT[:MAX_OBJECTS]]`, split "validation" by default."""
        parts = text.split(":")
        if not 1 <= len(parts) <= 3 or not parts[0]:
            raise ValueError(f"--validation must be DATASET[:SPLIT[:MAX_OBJECTS]], got {text!r}")
        split = parts[1] if len(parts) > 1 and parts[1] else "validation"
        if split == "test":
            logger.warning("validation set %s reads a split named 'test': make sure it is not a test set", parts[0])
        max_objects = int(parts[2]) if len(parts) == 3 else None
        return cls(parts[0], split, max_objects)


@dataclass(frozen=True)
class Setting:
    """One combination of decoding defaults."""

    num_steps: int
    amodal_output: str
    mask_threshold: float
    enlarge_ratio: float
    sampling_top_k: int
    second_crop_ratio: float | None = None


@dataclass
class SettingScores:
    """A setting's numbers, in percent, per validation set (`"DATASET:SPLIT"`), and its score."""

    setting: Setting
    per_set: dict[str, dict[str, float | None]]
    score: float


def setting_score(per_set: dict[str, dict[str, float | None]]) -> float:
    """Mean over sets of (mIoU_full + mIoU_occ) / 2 minus the mean invented area (percentage points)."""
    completion = [(numbers["miou_full"] + numbers["miou_occ"]) / 2 for numbers in per_set.values()]
    invented = [numbers["invented_area"] for numbers in per_set.values() if numbers["invented_area"] is not None]
    return sum(completion) / len(completion) - (sum(invented) / len(invented) if invented else 0.0)


def gains(candidate: dict[str, dict[str, float | None]], reference: dict[str, dict[str, float | None]]) -> list[float]:
    """Every improvement of `candidate` over `reference` (both `SettingScores.per_set`, the same sets), in points:
    mIoU_full and mIoU_occ gains, invented-area reductions where both have unoccluded objects."""
    improvements = []
    for name, numbers in candidate.items():
        before = reference[name]
        improvements += [numbers["miou_full"] - before["miou_full"], numbers["miou_occ"] - before["miou_occ"]]
        if numbers["invented_area"] is not None and before["invented_area"] is not None:
            improvements.append(before["invented_area"] - numbers["invented_area"])
    return improvements


def smallest_gain(
    candidate: dict[str, dict[str, float | None]], reference: dict[str, dict[str, float | None]]
) -> float:
    """The smallest of `gains(candidate, reference)`."""
    return min(gains(candidate, reference))


def saved_setting(model_folder: str, argument: str) -> Setting:
    """The decoding defaults saved in a model folder (its config and preprocessor config); a folder without them is
    a ValueError naming `argument`."""
    try:
        model_config = C2FSegForAmodalSegmentation.config_class.from_pretrained(model_folder)
        processor = C2FSegImageProcessor.from_pretrained(model_folder)
    except OSError as error:
        raise ValueError(
            f"{argument} {model_folder}: not a model folder with config.json and preprocessor_config.json ({error})"
        ) from error
    return Setting(
        model_config.num_sampling_steps,
        model_config.amodal_output,
        processor.mask_threshold,
        processor.enlarge_ratio,
        model_config.sampling_top_k,
        processor.second_crop_ratio,
    )


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def score_setting(model_folder: str, setting: Setting, sets: list[ValidationSet], seed: int) -> SettingScores:
    """Evaluate `setting` on every validation set."""
    model = C2FSegForAmodalSegmentation.from_pretrained(model_folder)
    model.config.amodal_output = setting.amodal_output
    model.config.sampling_top_k = setting.sampling_top_k
    processor = C2FSegImageProcessor.from_pretrained(
        model_folder,
        mask_threshold=setting.mask_threshold,
        enlarge_ratio=setting.enlarge_ratio,
        second_crop_ratio=setting.second_crop_ratio,
    )
    per_set = {}
    for item in sets:
        results = evaluate_model(
            model,
            load_amodal_dataset(item.dataset, item.split),
            image_processor=processor,
            num_steps=setting.num_steps,
            seed=seed,
            max_objects=item.max_objects,
            progress=False,
        )
        numbers = results.variants["model"]
        per_set[f"{item.dataset}:{item.split}"] = {
            "miou_full": _percent(numbers.miou_full),
            "miou_occ": _percent(numbers.miou_occ),
            "invented_area": _percent(numbers.invented_area),
        }
    return SettingScores(setting, per_set, setting_score(per_set))


def scores_table(scores: list[SettingScores], reference: SettingScores | None = None) -> str:
    """Markdown: one row per setting, best first, with every set's mIoU_full / mIoU_occ / invented area; with a
    `reference` (`--must-beat`), its row first and every setting's smallest gain over it."""
    names = list(scores[0].per_set)
    set_columns = " | ".join(f"{name} full / occ / invented" for name in names)
    gain_header, gain_rule = (" smallest gain |", "---:|") if reference is not None else ("", "")
    header = f"| K | top-k | output | threshold | enlarge ratio | second crop | {set_columns} | score |{gain_header}"
    lines = [header, "|---:|---:|---|---:|---:|---:|" + "---|" * len(names) + "---:|" + gain_rule]

    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    def row(item: SettingScores, gain: str) -> str:
        sets = " | ".join(
            " / ".join(cell(numbers[key]) for key in ("miou_full", "miou_occ", "invented_area"))
            for numbers in item.per_set.values()
        )
        setting = item.setting
        return (
            f"| {setting.num_steps} | {setting.sampling_top_k} | {setting.amodal_output} | {setting.mask_threshold} "
            f"| {setting.enlarge_ratio} | {setting.second_crop_ratio or 'none'} | {sets} | {item.score:.2f} |{gain}"
        )

    if reference is not None:
        lines.append(row(reference, " (the model to beat) |"))
    for item in sorted(scores, key=lambda entry: -entry.score):
        lines.append(
            row(item, f" {smallest_gain(item.per_set, reference.per_set):.2f} |" if reference is not None else "")
        )
    return "\n".join(lines)


def choose(scores: list[SettingScores], reference: SettingScores | None) -> SettingScores | None:
    """The best score; with a `reference`, among the settings no worse than it on any number and better on one,
    the largest smallest gain over it, ties to the higher score (None when no setting is so)."""
    if reference is None:
        return max(scores, key=lambda entry: entry.score)
    improvements = [(gains(item.per_set, reference.per_set), item) for item in scores]
    winners = [(min(values), item.score, item) for values, item in improvements if min(values) >= 0 and max(values) > 0]
    return max(winners, key=lambda entry: entry[:2])[2] if winners else None


def checked_sampling_top_ks(model_folder: str, top_ks: list[int]) -> list[int]:
    """`top_ks`, each checked by the model config's own rule; a value it refuses is a ValueError naming
    `--sampling-top-ks` and the codebook size."""
    config = C2FSegForAmodalSegmentation.config_class.from_pretrained(model_folder)
    for top_k in top_ks:
        config.sampling_top_k = top_k
        try:
            config.validate_architecture()
        except ValueError as error:
            raise ValueError(
                f"--sampling-top-ks must be between 1 and the codebook size {config.vq_config.codebook_size}, got "
                f"{top_ks} ({error})"
            ) from error
    return top_ks


def apply_setting(model_folder: str, setting: Setting, out: Path) -> None:
    """Copy `model_folder` to `out` with `setting` as its saved defaults."""
    shutil.copytree(model_folder, out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config.update(
        num_sampling_steps=setting.num_steps,
        amodal_output=setting.amodal_output,
        sampling_top_k=setting.sampling_top_k,
    )
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    processor_path = out / "preprocessor_config.json"
    processor = json.loads(processor_path.read_text())
    processor.update(
        mask_threshold=setting.mask_threshold,
        enlarge_ratio=setting.enlarge_ratio,
        second_crop_ratio=setting.second_crop_ratio,
    )
    processor_path.write_text(json.dumps(processor, indent=2, sort_keys=True) + "\n")


def second_crop_ratio(text: str) -> float | None:
    """A `--second-crop-ratios` value: "none" (one crop) or a positive number."""
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected 'none' or a positive number, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="save_pretrained folder with its preprocessor_config.json")
    parser.add_argument(
        "--validation", action="append", required=True, help="DATASET[:SPLIT[:MAX_OBJECTS]] (repeatable)"
    )
    parser.add_argument("--num-steps", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--outputs", nargs="+", choices=AMODAL_OUTPUTS, default=["refined", "coarse"])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--enlarge-ratios", type=float, nargs="+", default=[2.0])
    parser.add_argument(
        "--second-crop-ratios",
        type=second_crop_ratio,
        nargs="+",
        default=[None],
        help="enlarge ratios of a second crop around the first prediction, or 'none' for one crop (the default)",
    )
    parser.add_argument(
        "--sampling-top-ks",
        type=int,
        nargs="+",
        help="codes per cell that sampling draws from (default: the model's sampling_top_k); 1 is argmax decoding",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for choice.md and choice.json")
    parser.add_argument("--apply", type=Path, help="also copy the model here with the chosen defaults saved")
    parser.add_argument(
        "--must-beat",
        help="model folder in use: choose the setting that improves on its saved defaults by the widest margin "
        "without a worse number (none when no setting does)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    sets = [ValidationSet.parse(text) for text in args.validation]
    try:
        own_top_k = saved_setting(args.model, "--model").sampling_top_k
        top_ks = checked_sampling_top_ks(args.model, args.sampling_top_ks or [own_top_k])
    except ValueError as error:
        parser.error(str(error))
    grid = itertools.product(
        args.num_steps, args.outputs, args.thresholds, args.enlarge_ratios, top_ks, args.second_crop_ratios
    )
    settings = [Setting(*values) for values in grid]
    reference_setting = saved_setting(args.must_beat, "--must-beat") if args.must_beat else None
    scores = []
    for setting in settings:
        scores.append(score_setting(args.model, setting, sets, args.seed))
        logger.info("%s: score %.2f", setting, scores[-1].score)
    reference = None
    if reference_setting is not None:
        reference = score_setting(args.must_beat, reference_setting, sets, args.seed)
    best = choose(scores, reference)
    args.out.mkdir(parents=True, exist_ok=True)
    table = scores_table(scores, reference)
    chosen = "none: no setting improves on --must-beat without a worse number" if best is None else str(best.setting)
    (args.out / "choice.md").write_text(f"Chosen: {chosen}\n\n{table}\n")
    records = [{"setting": vars(item.setting), "per_set": item.per_set, "score": item.score} for item in scores]
    summary = {"chosen": None if best is None else vars(best.setting), "settings": records}
    if reference is not None:
        summary["must_beat"] = {"setting": vars(reference.setting), "per_set": reference.per_set}
    (args.out / "choice.json").write_text(json.dumps(summary, indent=2))
    print(f"Chosen: {chosen}\n\n{table}")
    if args.apply and best is not None:
        apply_setting(args.model, best.setting, args.apply)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
