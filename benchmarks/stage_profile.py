"""Where the time of one `generate` goes: seconds per stage (backbone, VQ encode, K-step sampling, VQ decode,
refiner) and the heaviest operators of the VQ model, for random weights of the full-size (or tiny) model.

    python benchmarks/stage_profile.py --threads 2 --model full --repeats 3 [--optimize-for-cpu]

Each stage runs once to warm up, then `--repeats` times (the median is printed). Stages are timed one after
another in one process, so a shared or frequency-scaling CPU makes the numbers noisy: compare runs of the same
command, and read the operator table for shares rather than absolute times.
"""

import argparse
import statistics
from collections.abc import Callable

import torch
from hardware import cpu_name_and_flags
from inference import repeat, synthetic_objects
from torch.profiler import ProfilerActivity, profile

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation
from c2f_hf.presets import model_config

CONFIGS: dict[str, Callable[[], C2FSegConfig]] = {"full": C2FSegConfig, "tiny": lambda: model_config("micro")}


def median_seconds(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of `repeats` calls after one warm-up call, and the last output."""
    run()
    seconds, output = repeat(run, torch.device("cpu"), repeats, max_seconds=None)
    return statistics.median(seconds), output


def stage_seconds(model: C2FSegForAmodalSegmentation, num_steps: int, repeats: int) -> dict[str, float]:
    """Median seconds of each stage for one synthetic object (batch 1, `inference.synthetic_objects`)."""
    pixel_values, visible_masks = synthetic_objects(1, model.config.image_size, seed=0)
    times = {}
    with torch.no_grad():
        times["backbone"], features = median_seconds(lambda: model.encode_image(pixel_values), repeats)
        times["vq_encode"], tokens = median_seconds(lambda: model.encode_masks(visible_masks), repeats)
        times["sample"], sampled = median_seconds(
            lambda: model.sample_tokens(features, tokens, num_steps, greedy=True), repeats
        )
        times["vq_decode"], coarse = median_seconds(lambda: model.decode_tokens(sampled.tokens), repeats)
        times["refine"], _ = median_seconds(lambda: model.refine(features, coarse), repeats)
    return times


def vq_operator_table(model: C2FSegForAmodalSegmentation, rows: int) -> str:
    """The profiler's table of the heaviest operators of one VQ encode + decode."""
    _, masks = synthetic_objects(1, model.config.image_size, seed=0)
    with torch.no_grad():
        tokens = model.encode_masks(masks)
        model.decode_tokens(tokens)
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            model.decode_tokens(model.encode_masks(masks))
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(CONFIGS), default="full")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-steps", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--optimize-for-cpu", action="store_true", help="time `model.optimize_for_cpu()`")
    parser.add_argument("--operators", type=int, default=8, help="rows of the VQ operator table (0: none)")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    name, flags = cpu_name_and_flags()
    print(f"CPU: {name} [{' '.join(flags) or 'no AVX2'}], {torch.get_num_threads()} threads, torch {torch.__version__}")
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(CONFIGS[arguments.model]()).eval()
    if arguments.channels_last:
        model.to(memory_format=torch.channels_last)
    if arguments.optimize_for_cpu:
        model.optimize_for_cpu()
    times = stage_seconds(model, arguments.num_steps, arguments.repeats)
    layout = "channels_last" if arguments.channels_last else "NCHW"
    print(
        f"{arguments.model} model, batch 1, K = {arguments.num_steps}, {layout}"
        f"{', optimize_for_cpu()' if arguments.optimize_for_cpu else ''}, median of {arguments.repeats}:"
    )
    for stage, seconds in times.items():
        print(f"  {stage:>10}: {seconds:8.3f} s")
    print(f"  {'total':>10}: {sum(times.values()):8.3f} s")
    if arguments.operators:
        print(vq_operator_table(model, arguments.operators))


if __name__ == "__main__":
    main()
