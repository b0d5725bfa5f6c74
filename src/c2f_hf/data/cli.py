"""`c2f-hf data ...`: write the synthetic dataset and convert the public, the authors' and users' datasets to the
common schema."""

import argparse
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet
from datasets import Features

from .cards import build_dataset_card
from .converters import PAIRINGS, TEST_SETS, ConversionOptions
from .push import add_push_command
from .registry import CONVERTERS
from .schema import clip_to_row, image_features, scene_to_row, split_path, video_features, write_split
from .simple_occlusions import SimpleOcclusionConfig, generate_simple_scenes
from .synthetic import SyntheticConfig, generate_clips, generate_scenes

logger = logging.getLogger(__name__)
# One image (or clip frame) is generated in memory at a time with its masks; 4096 px keeps that under a few GB.
MIN_SYNTHETIC_SIZE, MAX_SYNTHETIC_SIZE, MAX_SYNTHETIC_FRAMES = 32, 4096, 128


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `data synthetic`, `data convert {kins,cocoa,fishbowl,movid_a,coco_amodal,mask_folder}` and `data push`."""
    data = subparsers.add_parser("data")
    commands = data.add_subparsers(dest="data_command", required=True)

    synthetic = commands.add_parser("synthetic", help="write a seeded synthetic amodal dataset")
    synthetic.add_argument("--out", type=Path, required=True, help="output folder")
    synthetic.add_argument("--num-train", type=int, required=True, help="rows of the train split (0: no split)")
    synthetic.add_argument("--num-test", type=int, required=True, help="rows of the test split (0: no split)")
    synthetic.add_argument("--video", action="store_true", help="write clips instead of images")
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.add_argument("--size", type=int, default=256, help="image side in pixels")
    synthetic.add_argument("--num-frames", type=int, default=8, help="frames per clip (with --video)")
    synthetic.add_argument(
        "--simple-occlusions",
        type=int,
        default=0,
        help="append this many simple occlusions (one shape and one occluder of a training kind, or none; "
        "c2f_hf.data.simple_occlusions, its training stream) to the train split of an image dataset",
    )
    synthetic.set_defaults(handler=run_synthetic)

    convert = commands.add_parser(
        "convert",
        help="convert a dataset to the common schema",
        description="Read a dataset in its release layout (see c2f_hf.data.coco_amodal, authors_detections, "
        "video_formats, mask_folders) and write <out>/<split>.parquet files and a dataset card. Ground truth is kept "
        "as released unless --amodal-union-visible.",
    )
    convert.add_argument("dataset", choices=sorted(CONVERTERS))
    convert.add_argument(
        "--root",
        type=Path,
        required=True,
        help="folder of the release (coco_amodal: the folder image file_names are under)",
    )
    convert.add_argument("--out", type=Path, required=True, help="output folder")
    convert.add_argument(
        "--predictions", type=Path, help="COCO results json of pre-detected visible masks (test split)"
    )
    convert.add_argument(
        "--pairing",
        choices=PAIRINGS,
        default="one-to-one",
        help="--predictions: pair each detection with the object its visible mask overlaps most (IoU >= 0.5), each "
        "object at most once in descending score order (one-to-one, COCO's rule, the default) or however many "
        "detections share it (per-detection, as in the authors' pickles)",
    )
    convert.add_argument(
        "--amodal-union-visible",
        action="store_true",
        help="replace each amodal mask by amodal ∪ visible (default: ground truth as released)",
    )
    convert.add_argument("--keep-stuff", action="store_true", help="cocoa, original json: keep the stuff regions")
    convert.add_argument(
        "--test-set",
        choices=TEST_SETS,
        default="auto",
        help="kins / cocoa test split: the authors' detection pickles (authors), the annotation json (annotations), "
        "or the pickles when they are there (auto, the default)",
    )
    convert.add_argument(
        "--annotations",
        action="append",
        default=[],
        metavar="SPLIT=PATH",
        help="coco_amodal: a COCO-style json per split (repeatable), e.g. train=ann/train.json",
    )
    convert.add_argument("--amodal-field", default="segmentation", help="coco_amodal: amodal segmentation field")
    convert.add_argument("--visible-field", default="visible_mask", help="coco_amodal: visible segmentation field")
    convert.add_argument("--category-field", default="category_id", help="coco_amodal: category id field")
    convert.set_defaults(handler=run_convert)

    add_push_command(commands)


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
    if split == "train":
        simple = SimpleOcclusionConfig(image_size=args.size)
        for index, scene in enumerate(generate_simple_scenes(simple, args.seed, args.simple_occlusions, "train")):
            rates.extend(item.occlusion_rate for item in scene.objects)
            yield scene_to_row(scene, f"train-simple-{index}")


def _check_range(flag: str, value: int, low: int, high: int) -> None:
    """ValueError naming `flag` when `value` is outside `[low, high]`."""
    if not low <= value <= high:
        raise ValueError(f"{flag} must be between {low} and {high}, got {value}")


def run_synthetic(args: argparse.Namespace) -> int:
    """Write `train.parquet` and `test.parquet` (a split of 0 rows is not written) and `README.md` into
    `args.out`. Raises ValueError on a negative count, when both are 0, or on a `--size` / `--num-frames` outside
    what the generator holds in memory."""
    counts = {"train": args.num_train, "test": args.num_test}
    for split, count in counts.items():
        if count < 0:
            raise ValueError(f"--num-{split} must be >= 0, got {count}")
    if args.simple_occlusions < 0 or (args.simple_occlusions and (args.video or not args.num_train)):
        raise ValueError(
            f"--simple-occlusions must be >= 0 and needs an image train split (--num-train > 0, no --video), got "
            f"{args.simple_occlusions}"
        )
    if not any(counts.values()):
        raise ValueError("--num-train and --num-test are both 0: there would be no data to write")
    _check_range("--size", args.size, MIN_SYNTHETIC_SIZE, MAX_SYNTHETIC_SIZE)
    _check_range("--num-frames", args.num_frames, 3, MAX_SYNTHETIC_FRAMES)
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
    if args.simple_occlusions:
        generation["simple_occlusions_in_train"] = args.simple_occlusions
        command += f" --simple-occlusions {args.simple_occlusions}"
    card = build_dataset_card("synthetic", features, splits, command, generation, rates)
    card.save(args.out / "README.md")
    logger.info("wrote %s to %s", splits, args.out)
    return 0


def _annotation_files(pairs: list[str]) -> tuple[tuple[str, Path], ...]:
    """`--annotations SPLIT=PATH` values as `(split, path)` pairs; ValueError naming a malformed one."""
    files = []
    for pair in pairs:
        split, separator, path = pair.partition("=")
        if not separator or not split or not path:
            raise ValueError(f"--annotations: {pair!r} should be SPLIT=PATH, e.g. train=annotations/train.json")
        files.append((split, Path(path)))
    return tuple(files)


def conversion_options(args: argparse.Namespace) -> ConversionOptions:
    """The `ConversionOptions` of a `data convert` command line."""
    return ConversionOptions(
        predictions=args.predictions,
        amodal_union_visible=args.amodal_union_visible,
        keep_stuff=args.keep_stuff,
        test_set=args.test_set,
        pairing=args.pairing,
        annotation_files=_annotation_files(args.annotations),
        amodal_field=args.amodal_field,
        visible_field=args.visible_field,
        category_field=args.category_field,
    )


def _written_features(out: Path, splits: dict[str, int]) -> Features:
    """The features of the written splits (the widest: a split with `predicted_visible_masks` if there is one)."""
    schemas = [Features.from_arrow_schema(pyarrow.parquet.read_schema(split_path(out, split))) for split in splits]
    return max(schemas, key=len)


def _card_path(path: Path, root: Path) -> str:
    """`path` as a card may show it: relative to `root` when inside it, else its name (the card is published, the
    machine's folders are not)."""
    path, root = Path(path).absolute(), Path(root).absolute()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name


def _command_line(args: argparse.Namespace, options: ConversionOptions) -> str:
    """The command as the card records it: folders by name, annotation files relative to `--root`."""
    command = f"c2f-hf data convert {args.dataset} --root {Path(args.root).absolute().name}"
    command += f" --out {Path(args.out).absolute().name}"
    flags = {"--amodal-union-visible": args.amodal_union_visible, "--keep-stuff": args.keep_stuff}
    command += "".join(f" {flag}" for flag, given in flags.items() if given)
    command += "" if args.test_set == "auto" else f" --test-set {args.test_set}"
    command += "" if args.pairing == "one-to-one" else f" --pairing {args.pairing}"
    files = options.annotation_files
    return command + "".join(f" --annotations {split}={_card_path(path, args.root)}" for split, path in files)


def run_convert(args: argparse.Namespace) -> int:
    """Convert `args.dataset` from `args.root` into `args.out` and write its card."""
    options = conversion_options(args)
    splits = CONVERTERS[args.dataset](args.root, args.out, options)
    card = build_dataset_card(
        args.dataset,
        _written_features(args.out, splits),
        splits,
        _command_line(args, options),
        conversion=options.card_entries(),
    )
    card.save(args.out / "README.md")
    logger.info("wrote %s to %s", splits, args.out)
    return 0
