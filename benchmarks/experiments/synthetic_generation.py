"""Speed of the synthetic amodal scene generator (images/s on one thread) and its occlusion-rate histogram.

Run on one core:

    taskset -c 0 python benchmarks/experiments/synthetic_generation.py --num-images 500
    python benchmarks/experiments/synthetic_generation.py --num-images 2000 --occlusion-histogram
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from c2f_hf.data.synthetic import (  # noqa: E402
    SHAPE_CATEGORIES,
    SyntheticConfig,
    generate_clips,
    generate_scenes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=500)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-clips", type=int, default=20)
    parser.add_argument("--occlusion-histogram", action="store_true")
    args = parser.parse_args()
    config = SyntheticConfig(image_size=args.size)

    start = time.perf_counter()
    scenes = list(generate_scenes(config, args.seed, args.num_images))
    elapsed = time.perf_counter() - start
    rate = args.num_images / elapsed
    print(f"images: {args.num_images} at {args.size}x{args.size} in {elapsed:.2f} s = {rate:.1f} images/s")

    start = time.perf_counter()
    for _ in generate_clips(config, args.seed, args.num_clips):
        pass
    elapsed = time.perf_counter() - start
    rate = args.num_clips / elapsed
    print(f"clips: {args.num_clips} x {config.num_frames} frames in {elapsed:.2f} s = {rate:.1f} clips/s")

    if args.occlusion_histogram:
        rates = np.array([item.occlusion_rate for scene in scenes for item in scene.objects])
        counts = [scene_object.category for scene in scenes for scene_object in scene.objects]
        edges = np.linspace(0.0, 0.9, 10)
        histogram, _ = np.histogram(rates, bins=edges)
        per_image = rates.size / len(scenes)
        print(f"objects: {rates.size}, per image: {per_image:.2f}, exactly 0: {np.mean(rates == 0):.1%}")
        for low, high, count in zip(edges[:-1], edges[1:], histogram):
            print(f"  [{low:.1f}, {high:.1f}{']' if high == edges[-1] else ')'}: {count / rates.size:.1%}")
        print("classes:", {name: counts.count(name) for name in SHAPE_CATEGORIES})


if __name__ == "__main__":
    main()
