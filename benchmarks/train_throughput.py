"""Training throughput of both stages on the current device (model compute only, random masks and images).

    python benchmarks/train_throughput.py --preset tiny kins --batch-size 16 --steps 10 [--precision fp32 bf16]

Smallest run (the `micro` preset, one sample, one timed step, a few seconds):

    python benchmarks/train_throughput.py --preset micro --batch-size 1 --steps 1 --warmup 0 --threads 1

Prints the machine (`common.machine_description`: the GPU, or the CPU's name, ISA flags and torch's threads), then
for each preset the samples/s of stage 1 (VQ: forward, L1 + codebook loss, backward, Adam step) and stage 2
(composite forward with the training mask, losses, backward, AdamW step) after `--warmup` untimed steps, once per
`--precision`: fp32, or bf16 autocast around the forward and the loss as `c2f-hf train` runs under Accelerate's
`mixed_precision="bf16"` (weights, gradients and optimizer state stay fp32).
"""

import argparse
import contextlib
import time
from collections.abc import Callable

import torch
from common import machine_description, print_machine

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegVQModel
from c2f_hf.presets import model_config
from c2f_hf.training.c2f import parameter_groups
from c2f_hf.training.vq import reconstruction_loss


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_masks(batch_size: int, size: int, device: torch.device) -> torch.Tensor:
    """Axis-aligned boxes: `(batch, 1, size, size)` in {0, 1}."""
    masks = torch.zeros(batch_size, 1, size, size, device=device)
    for index in range(batch_size):
        top, left = torch.randint(0, size // 2, (2,)).tolist()
        masks[index, :, top : top + size // 3, left : left + size // 3] = 1
    return masks


def time_steps(step: Callable[[], None], steps: int, warmup: int, device: torch.device) -> float:
    """Mean seconds of `steps` calls of `step` after `warmup` untimed ones (one synchronisation at each end, so
    queued GPU steps overlap as in training)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - started) / steps


PRECISIONS = ("fp32", "bf16")


def forward_precision(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a training forward runs in: nothing for fp32, bf16 autocast for bf16."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def vq_step_time(
    preset: str, batch_size: int, steps: int, warmup: int, device: torch.device, precision: str = "fp32"
) -> float:
    """Seconds per stage-1 step: the VQ model's reconstruction loss, backward and Adam step."""
    config = model_config(preset).vq_config
    model = C2FSegVQModel(config).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.9))
    masks = random_masks(batch_size, config.resolution, device)

    def step() -> None:
        with forward_precision(precision, device):
            loss, _ = reconstruction_loss(model, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_steps(step, steps, warmup, device)


def c2f_step_time(
    preset: str, batch_size: int, steps: int, warmup: int, device: torch.device, precision: str = "fp32"
) -> float:
    """Seconds per stage-2 step: the composite model's training forward (frozen VQ model), backward and AdamW
    step."""
    config = model_config(preset)
    model = C2FSegForAmodalSegmentation(config).to(device).train()
    model.vq_model.requires_grad_(False)
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-4, betas=(0.9, 0.95))
    amodal = random_masks(batch_size, config.image_size, device)
    visible = amodal.clone()
    visible[..., config.image_size // 2 :, :] = 0
    pixel_values = torch.rand(batch_size, 3, config.image_size, config.image_size, device=device)
    generator = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        with forward_precision(precision, device):
            loss = model(pixel_values, visible, amodal, generator=generator).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_steps(step, steps, warmup, device)


def parse_arguments() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", nargs="+", default=["tiny", "kins"], help="one or more presets")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["fp32"], help="one or more")
    return parser.parse_args()


def main() -> None:
    """Print the machine, then each preset's ms/step and samples/s for both stages."""
    arguments = parse_arguments()
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)
    torch.manual_seed(0)
    print_machine(machine_description(device))
    print(f"batch: {arguments.batch_size}, {arguments.steps} timed steps after {arguments.warmup} warm-up")
    for preset in arguments.preset:
        for stage, timer in (("vq", vq_step_time), ("c2f", c2f_step_time)):
            for precision in arguments.precision:
                seconds = timer(preset, arguments.batch_size, arguments.steps, arguments.warmup, device, precision)
                rate = arguments.batch_size / seconds
                print(
                    f"preset {preset} stage {stage} {precision}: {seconds * 1000:.1f} ms/step, {rate:.3g} samples/s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
