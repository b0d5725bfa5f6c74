"""Inference speed of the authors' C2F-Seg code against ours, side by side in one process (random weights, K = 3).

The authors' KINS image model (`C2F_Seg` of amazon-science/c2f-seg, `src/image_model.py`) is imported at run time
from a checkout given with `--authors-repo` or the environment variable `C2F_SEG_AUTHORS_REPO` (their code is never
copied into this project) and built with random weights from `--seed`; its four state dicts (`g_model`, `model`,
`img_encoder`, `refine`) are converted into our `C2FSegForAmodalSegmentation` with the project's checkpoint
converter, so both hold the same weights. The authors' side runs their own `batch_predict_maskgit(meta, T=K)`,
patched at call time only where it needs a GPU or the dataset (see `prepare_authors_model`); ours runs
`generate(pixel_values, visible_masks, num_steps=K)`. Both sample (the authors' code has no greedy mode). Before
timing, the script checks on the same objects that the backbone features, the visible-mask codes and the amodal
masks agree (greedy on both sides, and seeded sampling).

Set-up, from the repository root: a separate venv, so the project's own stays as it is (the CPU wheel index is far
smaller where reachable), and an export of the authors' repository; `AUTHORS_VENV` and `C2F_SEG_AUTHORS_REPO` name
any two new folders:

    export AUTHORS_VENV=<new folder> C2F_SEG_AUTHORS_REPO=<new folder>
    python3 -m venv "$AUTHORS_VENV"
    "$AUTHORS_VENV/bin/pip" install torch==2.14.1 torchvision==0.29.1
    "$AUTHORS_VENV/bin/pip" install -e ".[hub]" matplotlib opencv-python-headless requests tqdm
    mkdir -p "$C2F_SEG_AUTHORS_REPO"
    git --git-dir=<fetched mirror of amazon-science/c2f-seg> archive HEAD | tar -x -C "$C2F_SEG_AUTHORS_REPO"

Full measurement (2 threads, batches 1 and 8, fp32 modes; takes several minutes on 2 cores):

    "$AUTHORS_VENV/bin/python" benchmarks/versus_authors.py --authors-repo "$C2F_SEG_AUTHORS_REPO" \\
        --out /tmp/versus_authors.json

On a GPU (`--device cuda`: the authors' fp32 and bf16-autocast modes against ours in fp32 and in the `gpu-fast`
mode of `inference.py`, bf16 + channels_last + `compile_for_inference(mode="reduce-overhead")`, at batches 1, 8 and
128; the first call, compilation and CUDA-graph capture included, is reported apart). Their code needs only torch,
torchvision, opencv, matplotlib, requests and tqdm, and ours runs from `src` where it is not installed:

    PYTHONPATH=src python benchmarks/versus_authors.py --authors-repo "$C2F_SEG_AUTHORS_REPO" --device cuda \\
        --out /tmp/versus_authors_gpu.json

The same with `--reuse-freed-memory` runs both sides in a process whose allocator keeps freed memory
(`c2f_hf.cpu_memory.reuse_freed_memory`, called before any model is built).

Smallest run, and the authors' code under bf16 autocast (10x slower than fp32 on CPUs without AVX512-BF16/AMX):

    "$AUTHORS_VENV/bin/python" benchmarks/versus_authors.py --authors-repo "$C2F_SEG_AUTHORS_REPO" \\
        --batch-sizes 1 --runs 1 --warmup 0 --check-objects 1 --out /tmp/versus_authors_smoke.json
    "$AUTHORS_VENV/bin/python" benchmarks/versus_authors.py --authors-repo "$C2F_SEG_AUTHORS_REPO" \\
        --modes authors-bf16 --batch-sizes 1 --runs 1 --warmup 0 --out /tmp/versus_authors_bf16.json

Without a checkout (neither the argument nor the variable, or a folder without `src/image_model.py`) it stops
before building anything, with a one-line error that says which.
"""

import argparse
import atexit
import copy
import importlib
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from common import (
    fill_unset_arguments,
    machine_description,
    made_gpu_fast,
    peak_memory_mib,
    print_machine,
    repeat,
    reset_peak_memory,
    synthetic_objects,
)
from torch import nn
from transformers import pipeline

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.cpu_memory import reuse_freed_memory
from c2f_hf.hub.convert import build_config_from_yaml
from c2f_hf.models.c2f_seg.convert_original_checkpoint import build_converted_model

# The authors' image models are built for 256 x 256 crops (their refiner hard-codes the upsampling sizes).
CROP_SIZE = 256
DATASET = "KINS"
AUTHORS_REPO_VARIABLE = "C2F_SEG_AUTHORS_REPO"


# ----- the authors' model -----


def authors_checkout(argument: Path | None) -> Path:
    """The authors' checkout: `--authors-repo`, else `$C2F_SEG_AUTHORS_REPO`. Exits with a one-line error when
    neither is given or the folder has no `src/image_model.py`."""
    variable = os.environ.get(AUTHORS_REPO_VARIABLE)
    if argument is None and not variable:
        raise SystemExit(
            "versus_authors.py: error: needs a checkout of amazon-science/c2f-seg: pass --authors-repo PATH or set "
            f"{AUTHORS_REPO_VARIABLE}"
        )
    given = f"--authors-repo {argument}" if argument is not None else f"{AUTHORS_REPO_VARIABLE}={variable}"
    repo = (argument or Path(variable)).resolve()
    if not (repo / "src" / "image_model.py").is_file():
        raise SystemExit(
            f"versus_authors.py: error: {given} is not a checkout of amazon-science/c2f-seg (no src/image_model.py "
            f"in {repo})"
        )
    return repo


def resnet50_without_download(pretrained: bool = False) -> nn.Module:
    """Stands in for torchvision's `resnet50(pretrained=True)` in the authors' `base_resnet`: the same network with
    random weights (no download; torchvision >= 0.13 has no `pretrained` argument anyway)."""
    import torchvision  # the authors' code needs it, c2f_hf does not: imported only where their model is built

    return torchvision.models.resnet50(weights=None)


def import_authors_modules(repo: Path) -> dict[str, object]:
    """The authors' `src.image_model`, `src.image_component` and `utils.utils`, imported from the checkout."""
    sys.path.insert(0, str(repo))
    names = {"image_model": "src.image_model", "image_component": "src.image_component", "utils": "utils.utils"}
    return {key: importlib.import_module(name) for key, name in names.items()}


def build_authors_model(repo: Path, seed: int, device: torch.device) -> nn.Module:
    """The authors' `C2F_Seg` for KINS from `configs/c2f_seg_KINS.yml` and `configs/vqgan_KINS.yml`, randomly
    initialised after `torch.manual_seed(seed)`, on `device` and in eval mode. Their constructor also builds an
    optimiser and asks `torch.distributed` for the rank: the rank is patched to 0 while it runs."""
    modules = import_authors_modules(repo)
    config = modules["utils"].Config(str(repo / "configs" / f"c2f_seg_{DATASET}.yml"))
    config._dict.update(device=device, dataset=DATASET)
    torch.manual_seed(seed)
    with (
        mock.patch.object(modules["image_component"], "resnet50", resnet50_without_download),
        mock.patch.object(torch.distributed, "get_rank", return_value=0),
    ):
        model = modules["image_model"].C2F_Seg(
            config, str(repo / "configs"), mode="test", logger=logging.getLogger("authors")
        )
    return prepare_authors_model(model.eval())


def prepare_authors_model(model: nn.Module) -> nn.Module:
    """Skip the three steps of `batch_predict_maskgit` that need the dataset, not the model: pasting the crops back
    into the raw image (`align_raw_size`, identity here: ours returns crops too), saving PNGs (`visualize`) and the
    IoU against ground truth (`loss_and_evaluation`, which returns the refined masks instead)."""
    model.align_raw_size = lambda masks, *unused: masks
    model.visualize = lambda *unused: None
    model.loss_and_evaluation = lambda amodal, meta, iteration, mode, pred_vm=None: {"amodal_masks": amodal}
    return model


def authors_state_dicts(model: nn.Module, repo: Path) -> dict[str, tuple[Path, dict[str, torch.Tensor]]]:
    """`{section: (file, state dict)}` as `c2f_hf.hub.convert.read_original_sections` returns it for the authors'
    two files."""
    vq_file, c2f_file = repo / f"vqgan_{DATASET}.pth", repo / f"c2f_seg_{DATASET}.pth"
    return {
        "g_model": (vq_file, model.g_model.state_dict()),
        "model": (c2f_file, model.transformer.state_dict()),
        "img_encoder": (c2f_file, model.img_encoder.state_dict()),
        "refine": (c2f_file, model.refine_module.state_dict()),
    }


def build_our_model(authors: nn.Module, repo: Path, device: torch.device) -> C2FSegForAmodalSegmentation:
    """Ours, configured from the authors' two yml files and holding the authors' model's tensors, on `device`."""
    config, _ = build_config_from_yaml(
        repo / "configs" / f"vqgan_{DATASET}.yml", repo / "configs" / f"c2f_seg_{DATASET}.yml"
    )
    model, _ = build_converted_model(config, authors_state_dicts(authors, repo))
    return model.to(device).eval()


def authors_meta(pixel_values: torch.Tensor, visible_masks: torch.Tensor) -> dict[str, torch.Tensor | None]:
    """The fields of the authors' data loader that `batch_predict_maskgit` reads: `img_crop (batch, S, S, 3)`
    channels-last as their loader gives it, `vm_crop (batch, 1, S, S)`, and the refine-loss targets `vm_crop_gt`
    and `fm_crop` (their inference computes two BCE losses; the visible mask stands in for both targets).
    `obj_position` and `vm_pad` only reach the skipped `align_raw_size`."""
    return {
        "img_crop": pixel_values.permute(0, 2, 3, 1).contiguous(),
        "vm_crop": visible_masks,
        "vm_crop_gt": visible_masks,
        "fm_crop": visible_masks,
        "obj_position": None,
        "vm_pad": None,
    }


def authors_cuda_calls_on(device: torch.device) -> AbstractContextManager:
    """The authors' transformer builds its all-ones attention mask with `.cuda()`: on the CPU, make that a no-op."""
    if device.type == "cuda":
        return nullcontext()
    return mock.patch.object(torch.Tensor, "cuda", lambda tensor, *unused, **unused_keywords: tensor)


@contextmanager
def authors_sampling_made_greedy() -> Iterator[None]:
    """Argmax codes and no confidence noise in the authors' loop (their `Categorical(...).sample()` and
    `Gumbel(0, 1).sample(shape)`), the same rule as our `greedy=True`."""
    with (
        mock.patch.object(
            torch.distributions.Categorical, "sample", lambda self, sample_shape=(): self.probs.argmax(dim=-1)
        ),
        mock.patch.object(
            torch.distributions.Gumbel, "sample", lambda self, sample_shape=(): torch.zeros(sample_shape)
        ),
    ):
        yield


def authors_predict(model: nn.Module, meta: dict[str, torch.Tensor], num_steps: int) -> torch.Tensor:
    """The authors' inference on one batch: refined amodal probabilities `(batch, 1, S, S)`."""
    with authors_cuda_calls_on(meta["vm_crop"].device):
        return model.batch_predict_maskgit(meta, 0, "test", T=num_steps)["amodal_masks"]


def authors_tokens_and_masks(
    model: nn.Module, meta: dict[str, torch.Tensor], num_steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' final amodal codes `(batch, cells)` (recorded where they are decoded) and amodal
    probabilities `(batch, 1, S, S)`."""
    recorded = {}
    decode = model.g_model.quantize.get_codebook_entry

    def record_codes(indices: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        recorded["tokens"] = indices.view(shape[0], -1)
        return decode(indices, shape)

    with mock.patch.object(model.g_model.quantize, "get_codebook_entry", record_codes):
        masks = authors_predict(model, meta, num_steps)
    return recorded["tokens"], masks


# ----- modes -----


@dataclass(frozen=True)
class Models:
    """What every mode is built from: the authors' model, ours with the same weights (both on `device`), and K."""

    authors: nn.Module
    ours: C2FSegForAmodalSegmentation
    num_steps: int
    device: torch.device


@dataclass(frozen=True)
class Runner:
    """One mode. `prepare` turns synthetic objects (`(batch, 3, S, S)` RGB in [0, 1], `(batch, 1, S, S)` masks)
    into what that code's data loader hands it (not timed); `predict` runs one batch (timed) and returns the
    refined amodal probabilities `(batch, 1, S, S)` (the pipeline mode: its thresholded masks, `(batch, S, batch * S)`
    on the image holding the objects)."""

    prepare: Callable[[torch.Tensor, torch.Tensor], object]
    predict: Callable[[object], torch.Tensor]


def authors_fp32(models: Models) -> Runner:
    """Their inference as they wrote it (fp32)."""
    return Runner(authors_meta, lambda meta: authors_predict(models.authors, meta, models.num_steps))


def bce_outside_autocast(criterion: nn.BCELoss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """`criterion` computed in fp32 with autocast off: CUDA autocast refuses `BCELoss` ("unsafe to autocast")."""

    def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(prediction.device.type, enabled=False):
            return nn.functional.binary_cross_entropy(prediction.float(), target.float(), reduction=criterion.reduction)

    return loss


def authors_bf16(models: Models) -> Runner:
    """Their inference under bf16 autocast. Their two refine losses (computed but not returned) run in fp32 outside
    autocast (`bce_outside_autocast`), where CUDA autocast would refuse them."""
    criterion = models.authors.refine_criterion

    def predict(meta: dict[str, torch.Tensor]) -> torch.Tensor:
        with (
            mock.patch.object(criterion, "forward", bce_outside_autocast(criterion)),
            torch.autocast(models.device.type, dtype=torch.bfloat16),
        ):
            return authors_predict(models.authors, meta, models.num_steps)

    return Runner(authors_meta, predict)


def our_runner(model: C2FSegForAmodalSegmentation, num_steps: int) -> Runner:
    """`model.generate` (sampling, K = `num_steps`) on the synthetic objects as they come."""
    return Runner(
        lambda pixel_values, visible_masks: (pixel_values, visible_masks),
        lambda inputs: model.generate(*inputs, num_steps=num_steps).amodal_masks,
    )


def ours_fp32(models: Models) -> Runner:
    """Our reference path: fp32 as converted, what `from_pretrained(..., dtype=torch.float32)` gives."""
    return our_runner(models.ours, models.num_steps)


def ours_optimized(models: Models) -> Runner:
    """A copy of ours after `optimize_for_cpu()`: the default path, what `from_pretrained(folder)` and
    `pipeline("amodal-segmentation")` give on a CPU."""
    return our_runner(copy.deepcopy(models.ours).optimize_for_cpu(), models.num_steps)


def objects_side_by_side(
    pixel_values: torch.Tensor, visible_masks: torch.Tensor
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The crops `(batch, 3, S, S)` laid side by side as one `(S, batch * S, 3)` uint8 image, and each object's
    `(S, batch * S)` bool visible mask at its place: one image holding the batch's objects, as a user hands it to
    the pipeline."""
    image = (pixel_values.permute(2, 0, 3, 1).flatten(1, 2) * 255).round().to(torch.uint8).cpu().numpy()
    batch, _, size, _ = visible_masks.shape
    masks = []
    for index in range(batch):
        mask = np.zeros((size, batch * size), dtype=bool)
        mask[:, index * size : (index + 1) * size] = visible_masks[index, 0].cpu().numpy() > 0.5
        masks.append(mask)
    return image, masks


def ours_pipeline(models: Models) -> Runner:
    """`pipeline("amodal-segmentation")` with its defaults, as a user calls it: our model saved to a temporary
    folder and loaded by the pipeline (so it runs the default path of `from_pretrained`, on the CPU the one of
    `optimize_for_cpu()`), the objects of a batch in one image (`objects_side_by_side`), every object of the call
    in one forward pass (the default `batch_size`); cropping and pasting back are timed too."""
    folder = Path(tempfile.mkdtemp(prefix="versus_authors_model_"))
    atexit.register(shutil.rmtree, folder, True)
    models.ours.save_pretrained(folder)
    C2FSegImageProcessor(crop_resolution=CROP_SIZE).save_pretrained(folder)
    segmenter = pipeline("amodal-segmentation", model=str(folder), device=models.device)

    def predict(inputs: tuple[np.ndarray, list[np.ndarray]]) -> torch.Tensor:
        image, masks = inputs
        objects = segmenter(image, visible_masks=masks, num_steps=models.num_steps)
        return torch.stack([torch.from_numpy(np.asarray(item["amodal_mask"]) > 0) for item in objects])

    return Runner(objects_side_by_side, predict)


def ours_gpu_fast(models: Models) -> Runner:
    """A copy of ours in the `gpu-fast` mode (`common.made_gpu_fast`)."""
    return our_runner(made_gpu_fast(copy.deepcopy(models.ours)), models.num_steps)


MODES: dict[str, Callable[[Models], Runner]] = {
    "authors-fp32": authors_fp32,
    "authors-bf16": authors_bf16,
    "ours-fp32": ours_fp32,
    "ours-optimized": ours_optimized,
    "ours-pipeline": ours_pipeline,
    "ours-gpu-fast": ours_gpu_fast,
}
DEFAULT_MODES = {
    "cpu": ["authors-fp32", "ours-fp32", "ours-optimized"],
    "cuda": ["authors-fp32", "authors-bf16", "ours-fp32", "ours-gpu-fast"],
}


# ----- agreement -----


def relative_deviation(expected: torch.Tensor, actual: torch.Tensor) -> float:
    """max |actual - expected| / max |expected|."""
    return float((actual.float() - expected.float()).abs().max() / expected.float().abs().max().clamp_min(1e-12))


def mask_agreement(expected: torch.Tensor, actual: torch.Tensor) -> dict[str, float]:
    """Fraction of pixels on the same side of 0.5, and the largest probability difference."""
    return {
        "pixel_agreement": float(((expected > 0.5) == (actual > 0.5)).float().mean()),
        "max_probability_deviation": float((expected.float() - actual.float()).abs().max()),
    }


@torch.no_grad()
def check_agreement(models: Models, num_objects: int, seed: int) -> dict[str, object]:
    """Compare both fp32 models on the same `num_objects` objects: backbone maps (relative deviation per stage),
    visible-mask codes, then final codes and amodal masks, greedy and with the same global seed."""
    pixel_values, visible_masks = synthetic_objects(num_objects, CROP_SIZE, seed, models.device)
    meta = authors_meta(pixel_values, visible_masks)
    authors_features = models.authors.img_encoder(meta["img_crop"].permute(0, 3, 1, 2))
    our_features = models.ours.encode_image(pixel_values)
    _, authors_codes = models.authors.encode_to_z(visible_masks)
    report: dict[str, object] = {
        "objects": num_objects,
        "backbone_relative_deviation": [relative_deviation(a, o) for a, o in zip(authors_features, our_features)],
        "visible_code_agreement": float((authors_codes == models.ours.encode_masks(visible_masks)).float().mean()),
    }
    with authors_sampling_made_greedy():
        authors_tokens, authors_masks = authors_tokens_and_masks(models.authors, meta, models.num_steps)
    ours = models.ours.generate(pixel_values, visible_masks, num_steps=models.num_steps, greedy=True)
    report["greedy"] = {
        "token_agreement": float((authors_tokens == ours.amodal_tokens).float().mean()),
        **mask_agreement(authors_masks, ours.amodal_masks),
    }
    torch.manual_seed(seed)
    authors_tokens, authors_masks = authors_tokens_and_masks(models.authors, meta, models.num_steps)
    torch.manual_seed(seed)
    ours = models.ours.generate(pixel_values, visible_masks, num_steps=models.num_steps)
    report["sampled_same_seed"] = {
        "token_agreement": float((authors_tokens == ours.amodal_tokens).float().mean()),
        **mask_agreement(authors_masks, ours.amodal_masks),
    }
    return report


# ----- timing -----


def measure(runner: Runner, batch_size: int, device: torch.device, arguments: argparse.Namespace) -> dict[str, object]:
    """Warm up, time `runner.predict` on one synthetic batch on `device`, and return seconds per batch (the first
    warm-up call apart: compilation and CUDA-graph capture happen there), throughput and the peak memory during
    this measurement (all models stay loaded, so it includes their weights)."""
    inputs = runner.prepare(*synthetic_objects(batch_size, CROP_SIZE, arguments.seed, device))
    peak_memory_scope = reset_peak_memory(device)
    with torch.no_grad():
        warmup, _ = repeat(lambda: runner.predict(inputs), device, arguments.warmup, arguments.max_seconds)
        seconds, _ = repeat(lambda: runner.predict(inputs), device, arguments.runs, arguments.max_seconds)
    median = statistics.median(seconds)
    return {
        "median_s_per_batch": median,
        "min_s_per_batch": min(seconds),
        "objects_per_s": batch_size / median,
        "ms_per_object": 1000 * median / batch_size,
        "first_call_s": (warmup or seconds)[0],
        "peak_memory_mib": peak_memory_mib(device),
        "peak_memory_scope": peak_memory_scope,
        "runs": len(seconds),
    }


# ----- report -----

HEADER = (
    f"{'mode':<16}{'batch':>6}{'median s/batch':>16}{'min s/batch':>13}{'objects/s':>11}{'ms/object':>11}"
    f"{'peak MiB':>10}{'runs':>6}{'first call s':>14}"
)


def format_row(row: dict[str, object]) -> str:
    """One measurement as a line of the table under `HEADER`."""
    return (
        f"{row['mode']:<16}{row['batch_size']:>6}{row['median_s_per_batch']:>16.3f}{row['min_s_per_batch']:>13.3f}"
        f"{row['objects_per_s']:>11.2f}{row['ms_per_object']:>11.1f}{row['peak_memory_mib']:>10.0f}{row['runs']:>6}"
        f"{row['first_call_s']:>14.2f}"
    )


def format_agreement(report: dict[str, object]) -> list[str]:
    """The lines of `check_agreement`'s report."""
    stages = ", ".join(f"{value:.1e}" for value in report["backbone_relative_deviation"])
    lines = [
        f"agreement on {report['objects']} objects, authors vs ours (fp32):",
        f"  backbone maps, max relative deviation per stage: {stages}",
        f"  visible-mask codes agreeing: {report['visible_code_agreement']:.2%}",
    ]
    for name in ("greedy", "sampled_same_seed"):
        part = report[name]
        lines.append(
            f"  {name}: final codes agreeing {part['token_agreement']:.2%}, amodal pixels agreeing "
            f"{part['pixel_agreement']:.4%}, max |dp| {part['max_probability_deviation']:.1e}"
        )
    return lines


def versus_machine_description(device: torch.device, reuses_freed_memory: bool) -> dict[str, object]:
    """`common.machine_description`, with whether both sides reuse freed memory and torchvision's version (the
    authors' backbone's; their code is imported by then)."""
    import torchvision  # the authors' code needs it, c2f_hf does not

    return {
        "reuses_freed_memory": reuses_freed_memory,
        **machine_description(device),
        "torchvision": torchvision.__version__,
    }


def parse_arguments() -> argparse.Namespace:
    """The command line, with the authors' checkout checked (`authors_checkout`) and the device's defaults filled
    in."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--authors-repo",
        type=Path,
        default=None,
        help=f"checkout of amazon-science/c2f-seg (default: ${AUTHORS_REPO_VARIABLE})",
    )
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU comparison")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=list(MODES),
        default=None,
        help=f"default on the CPU: {' '.join(DEFAULT_MODES['cpu'])} (bf16 convolutions are ~10x slower without "
        f"AVX512-BF16/AMX); on CUDA: {' '.join(DEFAULT_MODES['cuda'])}",
    )
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None, help="default: 1 8 (CPU), 1 8 128 (CUDA)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per measurement (median; 5 CPU, 20 CUDA)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed runs before each measurement (default 1 on the CPU; 3 on CUDA, where CUDA graphs are captured "
        "in the second)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="stop warming up / timing a measurement after this many seconds, keeping at least one run",
    )
    parser.add_argument("--num-steps", type=int, default=3, help="MaskGIT decoding steps K")
    parser.add_argument("--check-objects", type=int, default=2, help="objects of the agreement check")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, the objects and the sampling")
    parser.add_argument(
        "--reuse-freed-memory",
        action="store_true",
        help="run both sides in a process whose allocator keeps freed memory (c2f_hf.cpu_memory)",
    )
    parser.add_argument("--out", type=Path, default=Path("versus_authors.json"))
    arguments = parser.parse_args()
    arguments.authors_repo = authors_checkout(arguments.authors_repo)
    on_gpu = torch.device(arguments.device).type == "cuda"
    defaults = {
        "modes": DEFAULT_MODES["cuda" if on_gpu else "cpu"],
        "batch_sizes": [1, 8, 128] if on_gpu else [1, 8],
        "runs": 20 if on_gpu else 5,
        "warmup": 3 if on_gpu else 1,
    }
    return fill_unset_arguments(arguments, defaults)


def main() -> None:
    """Build both models with the same weights, check that they agree, then time every mode and batch size and
    write the JSON report."""
    arguments = parse_arguments()
    reuses_freed_memory = arguments.reuse_freed_memory and reuse_freed_memory()
    torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)
    machine = versus_machine_description(device, reuses_freed_memory)
    print_machine(machine)
    authors = build_authors_model(arguments.authors_repo, arguments.seed, device)
    models = Models(authors, build_our_model(authors, arguments.authors_repo, device), arguments.num_steps, device)
    agreement = check_agreement(models, arguments.check_objects, arguments.seed)
    print("\n".join(format_agreement(agreement)), flush=True)
    runners = {name: MODES[name](models) for name in arguments.modes}
    print(f"\nK = {arguments.num_steps}, sampling on both sides\n{HEADER}", flush=True)
    rows = []
    for batch_size in arguments.batch_sizes:
        for name, runner in runners.items():
            row = {"mode": name, "batch_size": batch_size, **measure(runner, batch_size, device, arguments)}
            print(format_row(row), flush=True)
            rows.append(row)
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(arguments).items()}
    report = {"machine": machine, "settings": settings, "agreement": agreement, "results": rows}
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
