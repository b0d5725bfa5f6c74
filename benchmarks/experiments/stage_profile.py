"""Where the time of one `generate` goes: seconds per stage (backbone, VQ encode, K-step sampling, VQ decode,
refiner) and the heaviest operators of the VQ model, for random weights of the full-size (or tiny) model.

    python benchmarks/experiments/stage_profile.py --threads 2 --model full --repeats 3 [--optimize-for-cpu]
        [--compile [--freezing]]

On a GPU, eager (no compilation), in bf16 + channels_last, for a batch of 128 objects:

    python benchmarks/experiments/stage_profile.py --device cuda --bf16 --channels-last --batch-size 128 --repeats 10

Each stage runs once to warm up, then `--repeats` times (the median is printed). Stages are timed one after
another in one process, so a shared or frequency-scaling CPU makes the numbers noisy: compare runs of the same
command, and read the operator table for shares rather than absolute times.
"""

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks folder: common.py

import torch
from common import device_description, repeat, synthetic_objects
from torch._inductor import config as inductor_config
from torch.profiler import ProfilerActivity, profile

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation
from c2f_hf.presets import model_config

CONFIGS: dict[str, Callable[[], C2FSegConfig]] = {"full": C2FSegConfig, "tiny": lambda: model_config("micro")}


def median_seconds(run: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, object]:
    """Median time of `repeats` calls on `device` after one warm-up call, and the last output."""
    run()
    seconds, output = repeat(run, device, repeats, max_seconds=None)
    return statistics.median(seconds), output


def stage_seconds(
    model: C2FSegForAmodalSegmentation, batch_size: int, num_steps: int, repeats: int
) -> dict[str, float]:
    """Median seconds of each stage for `batch_size` synthetic objects."""
    device = model.device
    pixel_values, visible_masks = synthetic_objects(batch_size, model.config.image_size, 0, device)
    times = {}
    with torch.no_grad():
        times["backbone"], features = median_seconds(lambda: model.encode_image(pixel_values), device, repeats)
        times["vq_encode"], tokens = median_seconds(lambda: model.encode_masks(visible_masks), device, repeats)
        times["sample"], sampled = median_seconds(
            lambda: model.sample_tokens(features, tokens, num_steps, greedy=True), device, repeats
        )
        times["vq_decode"], coarse = median_seconds(lambda: model.decode_tokens(sampled.tokens), device, repeats)
        times["refine"], _ = median_seconds(lambda: model.refine(features, coarse), device, repeats)
    return times


def vq_operator_table(model: C2FSegForAmodalSegmentation, batch_size: int, rows: int) -> str:
    """The profiler's table of the heaviest operators of one VQ encode + decode (by GPU time on a GPU)."""
    _, masks = synthetic_objects(batch_size, model.config.image_size, 0, model.device)
    on_gpu = model.device.type == "cuda"
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if on_gpu else [ProfilerActivity.CPU]
    with torch.no_grad():
        tokens = model.encode_masks(masks)
        model.decode_tokens(tokens)
        with profile(activities=activities) as profiler:
            model.decode_tokens(model.encode_masks(masks))
    sort_by = "self_cuda_time_total" if on_gpu else "self_cpu_time_total"
    return profiler.key_averages().table(sort_by=sort_by, row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(CONFIGS), default="full")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="bf16 weights and activations")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-steps", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--optimize-for-cpu", action="store_true", help="time `model.optimize_for_cpu()`")
    parser.add_argument(
        "--compile", action="store_true", help="time `model.compile_for_inference()` (inductor, no CUDA graphs)"
    )
    parser.add_argument(
        "--freezing",
        action="store_true",
        help="with --compile: inductor freezing (weights as constants, oneDNN weight prepacking on a CPU)",
    )
    parser.add_argument("--operators", type=int, default=8, help="rows of the VQ operator table (0: none)")
    arguments = parser.parse_args()
    if arguments.freezing and not arguments.compile:
        parser.error("--freezing applies to --compile")
    inductor_config.freezing = arguments.freezing
    torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)
    print(f"{device_description(device)}, torch {torch.__version__}")
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(CONFIGS[arguments.model]()).eval().to(device)
    if arguments.bf16:
        model.to(torch.bfloat16)
    if arguments.channels_last:
        model.to(memory_format=torch.channels_last)
    if arguments.optimize_for_cpu:
        model.optimize_for_cpu()
    if arguments.compile:
        model.compile_for_inference()
    times = stage_seconds(model, arguments.batch_size, arguments.num_steps, arguments.repeats)
    layout = "channels_last" if arguments.channels_last else "NCHW"
    print(
        f"{arguments.model} model, {model.dtype}, batch {arguments.batch_size}, K = {arguments.num_steps}, {layout}"
        f"{', optimize_for_cpu()' if arguments.optimize_for_cpu else ''}"
        f"{', compile_for_inference()' if arguments.compile else ''}{', freezing' if arguments.freezing else ''}"
        f", median of {arguments.repeats}:"
    )
    for stage, seconds in times.items():
        print(f"  {stage:>10}: {seconds:8.3f} s")
    print(f"  {'total':>10}: {sum(times.values()):8.3f} s")
    if arguments.operators:
        print(vq_operator_table(model, arguments.batch_size, arguments.operators))


if __name__ == "__main__":
    main()
