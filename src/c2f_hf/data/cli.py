"""`c2f-hf data ...`: write the synthetic dataset and convert the public datasets to the common schema."""

import argparse
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

from .cards import build_dataset_card
from .converters import CONVERTERS
from .schema import clip_to_row, image_features, scene_to_row, video_features, write_split
from .synthetic import SyntheticConfig, generate_clips, generate_scenes

logger = logging.getLogger(__name__)


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `data synthetic` and `data convert {kins,cocoa,fishbowl,movid_a}`."""
    data = subparsers.add_parser("data", help="write or convert amodal datasets (Parquet, common schema)")
    commands = data.add_subparsers(dest="data_command", required=True)

    synthetic = commands.add_parser("synthetic", help="write a seeded synthetic amodal dataset")
    synthetic.add_argument("--out", type=Path, required=True, help="output folder")
    synthetic.add_argument("--num-train", type=int, required=True, help="rows of the train split (0: no split)")
    synthetic.add_argument("--num-test", type=int, required=True, help="rows of the test split (0: no split)")
    synthetic.add_argument("--video", action="store_true", help="write clips instead of images")
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.add_argument("--size", type=int, default=256, help="image side in pixels")
    synthetic.add_argument("--num-frames", type=int, default=8, help="frames per clip (with --video)")
    synthetic.set_defaults(handler=run_synthetic)

    convert = commands.add_parser("convert", help="convert a public dataset to the common schema")
    convert.add_argument("dataset", choices=sorted(CONVERTERS))
    convert.add_argument("--root", type=Path, required=True, help="folder of the original release")
    convert.add_argument("--out", type=Path, required=True, help="output folder")
    convert.add_argument("--predictions", type=Path, help="COCO results json of pre-detected visible masks")
    convert.set_defaults(handler=run_convert)


def _synthetic_rows(config: SyntheticConfig, args: argparse.Namespace, split: str, rates: list) -> Iterator[dict]:
    """Rows of one split; appends every object's (per-frame, non-empty) occlusion rates to `rates`."""
    count = args.num_train if split == "train" else args.num_test
    if args.video:
        for index, clip in enumerate(generate_clips(config, args.seed, count, split)):
            rates.extend(
                float(rate)
                for track in clip.objects
                for rate, mask in zip(track.occlusion_rates, track.amodal_masks)
                if mask.any()
            )
            yield clip_to_row(clip, f"{split}-{index}")
        return
    for index, scene in enumerate(generate_scenes(config, args.seed, count, split)):
        rates.extend(item.occlusion_rate for item in scene.objects)
        yield scene_to_row(scene, f"{split}-{index}")


def run_synthetic(args: argparse.Namespace) -> int:
    """Write `train.parquet` and `test.parquet` (a split of 0 rows is not written) and `README.md` into
    `args.out`. Raises ValueError on a negative count or when both are 0."""
    counts = {"train": args.num_train, "test": args.num_test}
    for split, count in counts.items():
        if count < 0:
            raise ValueError(f"--num-{split} must be >= 0, got {count}")
    if not any(counts.values()):
        raise ValueError("--num-train and --num-test are both 0: there would be no data to write")
    config = SyntheticConfig(image_size=args.size, num_frames=args.num_frames)
    features = video_features() if args.video else image_features()
    rates: list[float] = []
    splits = {
        split: write_split(_synthetic_rows(config, args, split, rates), features, args.out / f"{split}.parquet")
        for split, count in counts.items()
        if count > 0
    }
    generation = {"seed": args.seed, "video": args.video, **dataclasses.asdict(config)}
    command = f"c2f-hf data synthetic --num-train {args.num_train} --num-test {args.num_test} --seed {args.seed}"
    command += f" --size {args.size}" + (f" --video --num-frames {args.num_frames}" if args.video else "")
    card = build_dataset_card("synthetic", features, splits, command, generation, rates)
    card.save(args.out / "README.md")
    logger.info("wrote %s to %s", splits, args.out)
    return 0


def run_convert(args: argparse.Namespace) -> int:
    """Convert `args.dataset` from `args.root` into `args.out` and write its card."""
    splits = CONVERTERS[args.dataset](args.root, args.out, args.predictions)
    features = (
        video_features() if args.dataset in ("fishbowl", "movid_a") else image_features(args.predictions is not None)
    )
    command = f"c2f-hf data convert {args.dataset}"
    build_dataset_card(args.dataset, features, splits, command).save(args.out / "README.md")
    logger.info("wrote %s to %s", splits, args.out)
    return 0
