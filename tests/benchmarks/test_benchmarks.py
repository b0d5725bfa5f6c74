"""The product benchmarks (`benchmarks/*.py`) run from the repository root in their smallest configuration, through
their real code paths, and print what they promise: the machine first, then positive timings.

The runs are subprocesses started together (`started_runs`): they spend most of their time importing torch,
transformers and gradio on one core each, so on 2 cores they finish in about half the time of one after another.

`versus_authors.py` needs a checkout of the authors' code, which tests never have: its command line must stop at
once with a one-line error that names `--authors-repo` and `C2F_SEG_AUTHORS_REPO`; its parts that do not need that
code (the checkout check, the patches it applies to the authors' sampling and losses, its table) run in-process.
"""

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import torch

from c2f_hf.checkpoints import default_model_path

REPOSITORY = Path(__file__).resolve().parents[2]
BENCHMARKS = REPOSITORY / "benchmarks"
TIMEOUT_SECONDS = 300
POSITIVE_NUMBER = r"(\d+\.?\d*(?:e[-+]?\d+)?)"
# Each benchmark's smallest command line; `{folder}` is the run's own scratch folder.
SMALLEST_RUNS: dict[str, tuple[str, ...]] = {
    "inference_run": (
        *("inference.py", "--device", "cpu", "--models", "tiny", "--modes", "optimized", "--batch-sizes", "1"),
        *("--runs", "1", "--warmup", "0", "--threads", "1", "--out", "{folder}/inference.json"),
    ),
    "train_throughput_run": (
        *("train_throughput.py", "--device", "cpu", "--preset", "micro", "--batch-size", "1", "--steps", "1"),
        *("--warmup", "0", "--threads", "1", "--precision", "fp32", "bf16"),
    ),
    "demo_latency_run": ("demo_latency.py", "--threads", "1", "--repeats", "1", "--max-examples", "1"),
    "versus_authors_run": ("versus_authors.py", "--batch-sizes", "1", "--runs", "1"),
}


@dataclass(frozen=True)
class Finished:
    """A benchmark run that has ended: its exit status, what it printed, and its scratch folder."""

    returncode: int
    stdout: str
    stderr: str
    folder: Path

    def succeeded(self) -> str:
        """The standard output of a run that must have succeeded (its error output in the failure message)."""
        assert self.returncode == 0, self.stderr[-3000:]
        return self.stdout


def start(command: tuple[str, ...], folder: Path) -> subprocess.Popen:
    """`python benchmarks/<command>` from the repository root, offline, one OpenMP thread, without the authors'
    checkout in the environment; its output goes to files in `folder` (pipes could fill while other runs are read)."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    environment.pop("C2F_SEG_AUTHORS_REPO", None)
    script, *arguments = (part.format(folder=folder) for part in command)
    with (folder / "stdout").open("w") as stdout, (folder / "stderr").open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, str(Path("benchmarks") / script), *arguments],
            cwd=REPOSITORY,
            env=environment,
            stdout=stdout,
            stderr=stderr,
        )


@pytest.fixture(scope="module")
def started_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[subprocess.Popen, Path]]]:
    """The smallest run of every benchmark that a selected test asks for (by fixture name), all started at once."""
    wanted = sorted({name for item in request.session.items for name in item.fixturenames if name in SMALLEST_RUNS})
    runs = {}
    for name in wanted:
        folder = tmp_path_factory.mktemp(name)
        runs[name] = (start(SMALLEST_RUNS[name], folder), folder)
    yield runs
    for process, _ in runs.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def finished_run(name: str) -> Callable[..., Finished]:
    """A module fixture called `name`: the run of `SMALLEST_RUNS[name]`, waited for."""

    @pytest.fixture(name=name, scope="module")
    def fixture(started_runs: dict[str, tuple[subprocess.Popen, Path]]) -> Finished:
        process, folder = started_runs[name]
        returncode = process.wait(timeout=TIMEOUT_SECONDS)
        return Finished(returncode, (folder / "stdout").read_text(), (folder / "stderr").read_text(), folder)

    return fixture


inference_run = finished_run("inference_run")
train_throughput_run = finished_run("train_throughput_run")
demo_latency_run = finished_run("demo_latency_run")
versus_authors_run = finished_run("versus_authors_run")


def assert_machine_printed(stdout: str, threads: int) -> None:
    """`common.print_machine` ran first: the device line (CPU, ISA flags, threads), the CPU's name, torch."""
    assert stdout.startswith("device: "), stdout[:500]
    assert re.search(rf"^device: .+\[.+\], {threads} threads$", stdout, re.MULTILINE), stdout[:500]
    assert re.search(r"^cpu: \S", stdout, re.MULTILINE), stdout[:500]
    assert re.search(rf"^torch: {re.escape(torch.__version__)}$", stdout, re.MULTILINE), stdout[:500]
    assert re.search(rf"^torch_threads: {threads}$", stdout, re.MULTILINE), stdout[:500]


def positive_numbers(pattern: str, stdout: str) -> list[float]:
    """The numbers `pattern`'s groups capture in its single match in `stdout`, each checked to be positive."""
    matches = re.findall(pattern, stdout, re.MULTILINE)
    assert len(matches) == 1, f"{pattern!r} should match once in:\n{stdout}"
    numbers = [float(value) for value in (matches[0] if isinstance(matches[0], tuple) else (matches[0],))]
    assert all(number > 0 for number in numbers), (pattern, numbers)
    return numbers


def test_inference_measures_the_tiny_model_against_the_reference_and_writes_its_report(inference_run: Finished):
    stdout = inference_run.succeeded()
    assert_machine_printed(stdout, threads=1)
    report_path = inference_run.folder / "inference.json"
    report = json.loads(report_path.read_text())
    assert {"cpu", "isa_flags", "torch", "torch_threads", "cpu_has_native_bf16"} <= set(report["machine"])
    (row,) = report["results"]
    assert (row["model"], row["batch_size"], row["fast"]["mode"], row["reference"]["mode"]) == (
        "tiny",
        1,
        "optimized",
        "reference",
    )
    for record in (row["reference"], row["fast"]):
        assert record["timed_runs"] == 1 and record["warmup_runs"] == 0
        assert min(record[key] for key in ("objects_per_s", "ms_per_batch", "first_call_s", "peak_memory_mib")) > 0
    assert row["speedup"] > 0 and 0 <= row["pixel_agreement"] <= 1 and 0 <= row["token_agreement"] <= 1
    assert f"wrote {report_path}" in stdout


def test_train_throughput_times_both_stages_of_the_micro_preset_in_both_precisions(train_throughput_run: Finished):
    stdout = train_throughput_run.succeeded()
    assert_machine_printed(stdout, threads=1)
    for stage in ("vq", "c2f"):
        for precision in ("fp32", "bf16"):
            positive_numbers(
                rf"^preset micro stage {stage} {precision}: {POSITIVE_NUMBER} ms/step, {POSITIVE_NUMBER} samples/s$",
                stdout,
            )


def test_demo_latency_times_one_image_example_and_one_clip_through_the_space(demo_latency_run: Finished):
    stdout = demo_latency_run.succeeded()
    assert_machine_printed(stdout, threads=1)
    processor_config = json.loads((default_model_path() / "preprocessor_config.json").read_text())
    threshold = re.escape(str(processor_config["mask_threshold"]))
    assert re.search(rf"^threads: 1, K = \d+, threshold {threshold}, 1 examples x 1 repeats$", stdout, re.MULTILINE), (
        "the image tab is timed at the shipped model's mask threshold, as the Space starts",
        stdout,
    )
    positive_numbers(rf"^\d+ objects in {POSITIVE_NUMBER} s: {POSITIVE_NUMBER} s per object", stdout)
    positive_numbers(rf"^video: 1 clips of 8 frames in {POSITIVE_NUMBER} s: {POSITIVE_NUMBER} s per clip", stdout)


def test_versus_authors_without_a_checkout_stops_with_one_line_naming_the_argument_and_the_variable(
    versus_authors_run: Finished,
):
    assert versus_authors_run.returncode != 0
    assert versus_authors_run.stdout == "", "nothing is built or printed before the checkout is known"
    assert "Traceback" not in versus_authors_run.stderr, versus_authors_run.stderr
    line = versus_authors_run.stderr.strip().splitlines()[-1]
    assert line.startswith("versus_authors.py: error: "), line
    assert "--authors-repo" in line and "C2F_SEG_AUTHORS_REPO" in line, line


@pytest.fixture(scope="module")
def versus_authors() -> Iterator[ModuleType]:
    """`benchmarks/versus_authors.py` as a module (imported the way the scripts import `common`, then forgotten)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        yield importlib.import_module("versus_authors")
    for name in ("versus_authors", "common"):
        sys.modules.pop(name, None)


def test_versus_authors_takes_the_checkout_from_the_argument_or_the_variable(
    versus_authors: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "image_model.py").touch()
    monkeypatch.delenv("C2F_SEG_AUTHORS_REPO", raising=False)
    assert versus_authors.authors_checkout(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv("C2F_SEG_AUTHORS_REPO", str(tmp_path))
    assert versus_authors.authors_checkout(None) == tmp_path.resolve()
    monkeypatch.setenv("C2F_SEG_AUTHORS_REPO", str(tmp_path / "src"))
    with pytest.raises(SystemExit, match=r"C2F_SEG_AUTHORS_REPO=.* is not a checkout .*src/image_model\.py"):
        versus_authors.authors_checkout(None)
    with pytest.raises(SystemExit, match=r"--authors-repo .* is not a checkout"):
        versus_authors.authors_checkout(tmp_path / "missing")


def test_versus_authors_greedy_patch_takes_the_argmax_and_drops_the_confidence_noise(versus_authors: ModuleType):
    probabilities = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    with versus_authors.authors_sampling_made_greedy():
        codes = torch.distributions.Categorical(probs=probabilities).sample()
        noise = torch.distributions.Gumbel(0, 1).sample((4,))
    assert codes.tolist() == [1, 0]
    assert noise.tolist() == [0.0] * 4


def test_versus_authors_loss_outside_autocast_equals_the_authors_criterion(versus_authors: ModuleType):
    criterion = torch.nn.BCELoss()
    prediction, target = torch.tensor([0.2, 0.9, 0.6]), torch.tensor([0.0, 1.0, 1.0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = versus_authors.bce_outside_autocast(criterion)(prediction.bfloat16(), target)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, criterion(prediction, target), atol=1e-2, rtol=0)


def test_versus_authors_table_rows_line_up_with_the_header(versus_authors: ModuleType):
    row = {
        "mode": "ours-optimized",
        "batch_size": 8,
        "median_s_per_batch": 23.29,
        "min_s_per_batch": 22.39,
        "objects_per_s": 0.34,
        "ms_per_object": 2912.0,
        "peak_memory_mib": 3033.0,
        "runs": 3,
        "first_call_s": 25.0,
    }
    assert len(versus_authors.format_row(row)) == len(versus_authors.HEADER)
