import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegVQModel
from c2f_hf.cli import main
from c2f_hf.training.c2f import parameter_groups
from c2f_hf.training.checkpoints import latest_checkpoint
from c2f_hf.training.common import object_loader, parameters_digest
from c2f_hf.training.config import parse_overrides, resolve_config
from c2f_hf.training.vq import reconstruction_loss
from c2f_testing import random_object_batch, tiny_config

STEPS = 6


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny synthetic dataset (64-pixel images) and the tiny model config as a JSON file."""
    folder = tmp_path_factory.mktemp("training")
    assert (
        main(
            [
                "data",
                "synthetic",
                "--out",
                str(folder / "data"),
                "--num-train",
                "6",
                "--num-test",
                "2",
                "--size",
                "64",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    tiny_config().save_pretrained(folder / "architecture")
    return folder


def common_flags(workspace, output, steps=STEPS):
    return [
        "--dataset",
        str(workspace / "data"),
        "--output-dir",
        str(output),
        "--model-config",
        str(workspace / "architecture"),
        "--max-steps",
        str(steps),
        "--batch-size",
        "4",
        "--save-every",
        "2",
        "--eval-every",
        "3",
        "--set",
        "log_every=1",
        "--set",
        "eval_max_objects=4",
        "--set",
        "sample_every=3",
        "--preset",
        "tiny",
    ]


def test_vq_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = C2FSegVQModel(tiny_config().vq_config)
    _, _, amodal = random_object_batch(4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    first = reconstruction_loss(model, amodal)[0].item()
    for _ in range(30):
        loss, _ = reconstruction_loss(model, amodal)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert reconstruction_loss(model, amodal)[0].item() < 0.7 * first


def test_c2f_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(tiny_config()).train()
    model.vq_model.requires_grad_(False)
    pixel_values, visible, amodal = random_object_batch(4)
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-3, betas=(0.9, 0.95))

    def loss() -> torch.Tensor:
        return model(pixel_values, visible, amodal, generator=torch.Generator().manual_seed(0)).loss

    first = loss().item()
    for _ in range(25):
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert loss().item() < 0.8 * first


def test_parameter_groups_follow_the_authors():
    model = C2FSegForAmodalSegmentation(tiny_config())
    decayed, not_decayed = parameter_groups(model, 0.01)
    assert decayed["weight_decay"] == 0.01 and not_decayed["weight_decay"] == 0.0
    not_decayed_ids = {id(p) for p in not_decayed["params"]}
    assert id(model.transformer.layers[0].layernorm_before.weight) in not_decayed_ids
    assert id(model.transformer.layers[0].attention.key.bias) in not_decayed_ids
    assert id(model.transformer.layers[0].attention.key.weight) not in not_decayed_ids
    grouped = {id(p) for group in (decayed, not_decayed) for p in group["params"]}
    assert not grouped & {id(p) for p in model.vq_model.parameters()}
    trainable = [model.backbone, model.transformer, model.refiner]
    assert grouped == {id(p) for part in trainable for p in part.parameters()}


def test_settings_resolve_preset_file_overrides_and_flags(tmp_path):
    (tmp_path / "settings.yaml").write_text("batch_size: 8\nlearning_rate: 0.002\n")
    from c2f_hf.training.config import read_config_file

    config = resolve_config(
        "c2f",
        "kins",
        read_config_file(tmp_path / "settings.yaml"),
        parse_overrides(["batch_size=12", "betas=[0.8, 0.9]"]),
        {"vq_model": "vq", "max_steps": 5, "learning_rate": None},
    )
    assert (config.batch_size, config.learning_rate, config.betas, config.max_steps) == (12, 0.002, (0.8, 0.9), 5)
    assert config.warmup_steps == 5000 and config.weight_decay == 0.01
    with pytest.raises(ValueError, match="unknown training settings"):
        resolve_config("vq", "kins", {"batchsize": 3})
    with pytest.raises(ValueError, match="needs vq_model"):
        resolve_config("c2f", "kins")
    with pytest.raises(ValueError, match=r"model_overrides: unknown fields \['hidden_size'\]"):
        resolve_config("c2f", "kins", {"vq_model": "vq", "model_overrides": {"hidden_size": 8}})
    with pytest.raises(ValueError, match="stage 'c2f' only"):
        resolve_config("vq", "kins", {"model_overrides": {"min_mask_ratio": 1.0}})


def run_cli(arguments, cwd):
    environment = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "c2f_hf.cli", *arguments],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_after_checkpoint(process: subprocess.Popen, output, step: int, timeout: float = 240) -> None:
    """SIGKILL the run once the checkpoint of `step` (or a later one) is complete."""
    deadline = time.monotonic() + timeout
    while latest_checkpoint(output) is None or int(latest_checkpoint(output).name.split("_")[-1]) < step:
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def assert_same_weights(first_folder, second_folder):
    first, second = load_file(first_folder / "model.safetensors"), load_file(second_folder / "model.safetensors")
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


@pytest.fixture(scope="module")
def vq_run(workspace):
    output = workspace / "vq_full"
    process = run_cli(["train-vq", *common_flags(workspace, output)], workspace)
    assert process.wait() == 0, process.stdout.read()[-3000:]
    return output


def test_vq_run_saves_a_loadable_model_and_logs(vq_run):
    model = C2FSegVQModel.from_pretrained(vq_run / "final")
    assert model.config.codebook_size == tiny_config().vq_config.codebook_size
    log = [json.loads(line) for line in (vq_run / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log if "loss" in entry] == list(range(1, STEPS + 1))
    assert any("train_reconstruction_miou" in entry for entry in log)
    assert json.loads((vq_run / "training_config.json").read_text())["max_steps"] == STEPS


def test_killed_vq_run_resumes_to_the_same_weights(workspace, vq_run):
    output = workspace / "vq_killed"
    process = run_cli(["train-vq", *common_flags(workspace, output)], workspace)
    kill_after_checkpoint(process, output, step=2)
    assert not (output / "final").exists()
    resumed = run_cli(["train-vq", *common_flags(workspace, output), "--resume"], workspace)
    assert resumed.wait() == 0, resumed.stdout.read()[-3000:]
    steps = [json.loads(line)["step"] for line in (output / "log.jsonl").read_text().splitlines()]
    assert max(steps) == STEPS
    assert_same_weights(vq_run / "final", output / "final")


def test_c2f_run_kill_resume_and_the_saved_model_predicts(workspace, vq_run):
    reference, killed = workspace / "c2f_full", workspace / "c2f_killed"
    flags = ["train", "--vq-model", str(vq_run / "final")]
    full = run_cli([*flags, *common_flags(workspace, reference)], workspace)
    assert full.wait() == 0, full.stdout.read()[-3000:]
    process = run_cli([*flags, *common_flags(workspace, killed)], workspace)
    kill_after_checkpoint(process, killed, step=2)
    resumed = run_cli([*flags, *common_flags(workspace, killed), "--resume"], workspace)
    assert resumed.wait() == 0, resumed.stdout.read()[-3000:]
    assert_same_weights(reference / "final", killed / "final")
    assert sorted(path.name for path in (reference / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    log = [json.loads(line) for line in (reference / "log.jsonl").read_text().splitlines()]
    assert any("convex_hull_baseline/miou_occ" in entry for entry in log)
    from transformers import pipeline

    segmenter = pipeline("amodal-segmentation", model=str(reference / "final"), trust_remote_code=False)
    import numpy as np

    mask = np.zeros((64, 64), dtype=bool)
    mask[20:40, 20:30] = True
    objects = segmenter(np.zeros((64, 64, 3), dtype=np.uint8), visible_masks=[mask], greedy=True)
    assert objects[0]["amodal_mask"].size == (64, 64)


def test_fine_tuning_from_a_whole_model_folder(workspace, vq_run):
    start, tuned = workspace / "c2f_start", workspace / "c2f_tuned"
    flags = ["train", *common_flags(workspace, start, steps=2)]
    first = run_cli([*flags, "--vq-model", str(vq_run / "final")], workspace)
    assert first.wait() == 0, first.stdout.read()[-3000:]
    overrides = "model_overrides={min_mask_ratio: 1.0, num_sampling_steps: 1}"
    second = run_cli(
        ["train", *common_flags(workspace, tuned, steps=2), "--init-model", str(start / "final"), "--set", overrides],
        workspace,
    )
    assert second.wait() == 0, second.stdout.read()[-3000:]
    tuned_config = C2FSegForAmodalSegmentation.config_class.from_pretrained(tuned / "final")
    assert (tuned_config.min_mask_ratio, tuned_config.num_sampling_steps) == (1.0, 1)
    before, after = load_file(start / "final" / "model.safetensors"), load_file(tuned / "final" / "model.safetensors")
    assert all(torch.equal(before[key], after[key]) for key in before if key.startswith("vq_model."))
    assert not all(torch.equal(before[key], after[key]) for key in before if key.startswith("transformer."))
    with pytest.raises(ValueError, match="not both"):
        resolve_config("c2f", "tiny", {"vq_model": "a", "init_model": "b"})


def test_the_micro_preset_trains_both_stages_for_smoke_tests(workspace, tmp_path):
    data = ["--dataset", str(workspace / "data"), "--max-steps", "2", "--set", "eval_every=2"]
    assert main(["train-vq", "--preset", "micro", *data, "--output-dir", str(tmp_path / "vq")]) == 0
    vq_model = C2FSegVQModel.from_pretrained(tmp_path / "vq" / "final")
    assert vq_model.config.resolution == 64 and vq_model.config.codebook_size == 16
    stage_two = ["--vq-model", str(tmp_path / "vq" / "final"), "--output-dir", str(tmp_path / "c2f")]
    assert main(["train", "--preset", "micro", *data, *stage_two]) == 0
    model = C2FSegForAmodalSegmentation.from_pretrained(tmp_path / "c2f" / "final")
    assert model.config.image_size == 64 and model.config.transformer_config.hidden_size == 32


class RunsCode:
    """A pickle payload that creates `marker` when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def copy_run_without_final(source, destination):
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("final"))
    return destination


@pytest.mark.parametrize(
    "planted", ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_rank0.pt", "training_state.json"]
)
def test_resume_refuses_a_planted_pickle_in_any_checkpoint_file_without_running_it(
    workspace, vq_run, tmp_path, capsys, planted
):
    run = copy_run_without_final(vq_run, tmp_path / "run")
    checkpoint = latest_checkpoint(run)
    marker = tmp_path / "code_ran"
    with open(checkpoint / planted, "wb") as stream:
        pickle.dump({"state": RunsCode(marker)}, stream)
    torch.save({"state": RunsCode(marker)}, tmp_path / "payload.pt")
    if planted.endswith(".pt"):
        shutil.copy(tmp_path / "payload.pt", checkpoint / planted)
    assert main(["train-vq", *common_flags(workspace, run), "--resume"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{checkpoint / planted}:" in error, error
    assert not marker.exists() and not (run / "final").exists()


def test_an_incomplete_checkpoint_left_by_a_kill_is_ignored_and_removed_on_resume(workspace, vq_run, tmp_path):
    run = copy_run_without_final(vq_run, tmp_path / "run")
    checkpoints = sorted(path.name for path in (run / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint_2", "checkpoint_4", "checkpoint_6"]
    shutil.rmtree(run / "checkpoints" / "checkpoint_6")
    shutil.rmtree(run / "checkpoints" / "checkpoint_4")
    half_written = run / "checkpoints" / ".tmp-checkpoint_4"
    half_written.mkdir()
    (half_written / "model.safetensors").write_bytes(b"\x00" * 10)
    resumed = run_cli(["train-vq", *common_flags(workspace, run), "--resume"], workspace)
    assert resumed.wait() == 0, resumed.stdout.read()[-3000:]
    assert not half_written.exists()
    assert_same_weights(vq_run / "final", run / "final")


def test_killing_the_run_while_it_saves_still_resumes_to_the_same_weights(workspace, vq_run):
    output = workspace / "vq_killed_while_saving"
    flags = ["train-vq", *common_flags(workspace, output)]
    killed_mid_write = 0
    for step in (2, 4):
        process = run_cli([*flags, "--resume"], workspace)
        temporary = output / "checkpoints" / f".tmp-checkpoint_{step}"
        deadline = time.monotonic() + 240
        while not temporary.exists():
            assert process.poll() is None, process.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the checkpoint was never written"
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_mid_write += temporary.exists()
    resumed = run_cli([*flags, "--resume"], workspace)
    assert resumed.wait() == 0, resumed.stdout.read()[-3000:]
    assert_same_weights(vq_run / "final", output / "final")
    assert not list((output / "checkpoints").glob(".tmp-*")), f"{killed_mid_write} kills hit a write"


def test_precision_comes_from_the_launcher_unless_the_config_sets_it(tmp_path):
    script = textwrap.dedent(
        """
        from c2f_hf.training.common import build_accelerator
        from c2f_hf.training.config import resolve_config
        import sys
        overrides = {} if sys.argv[1] == "unset" else {"mixed_precision": sys.argv[1]}
        config = resolve_config("vq", "micro", {"dataset": "unused", **overrides})
        print(build_accelerator(config).mixed_precision)
        """
    )
    environment = dict(os.environ, ACCELERATE_MIXED_PRECISION="bf16")
    outputs = {
        setting: subprocess.run(
            [sys.executable, "-c", script, setting], env=environment, capture_output=True, text=True, check=True
        ).stdout.split()[-1]
        for setting in ("unset", "no")
    }
    assert outputs == {"unset": "bf16", "no": "no"}


def two_process_command(arguments) -> list[str]:
    """`torchrun --standalone --nproc_per_node 2 -m c2f_hf.cli ...` (on the CPU: Accelerate's MULTI_CPU, gloo)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "c2f_hf.cli",
    ] + [*arguments]


def run_two_processes(arguments, cwd, wait: bool = True):
    environment = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    process = subprocess.Popen(
        two_process_command(arguments),
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if wait:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-4000:]
    return process


def process_summaries(output) -> list[dict]:
    return [json.loads((output / "processes" / f"process_{index}.json").read_text()) for index in range(2)]


def two_process_flags(workspace, output, steps):
    data = ["--dataset", str(workspace / "data"), "--output-dir", str(output), "--batch-size", "2"]
    return [*data, "--max-steps", str(steps), "--save-every", "2", "--preset", "micro", "--set", "log_every=1"]


def test_two_processes_train_both_stages_shard_the_data_and_resume(workspace, tmp_path):
    straight, killed = tmp_path / "vq_straight", tmp_path / "vq_killed"
    run_two_processes(["train-vq", *two_process_flags(workspace, straight, 6)], workspace)
    process = run_two_processes(["train-vq", *two_process_flags(workspace, killed, 6)], workspace, wait=False)
    deadline = time.monotonic() + 300
    while latest_checkpoint(killed) is None or latest_checkpoint(killed).name != "checkpoint_4":
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint_4 appeared in time"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    run_two_processes(["train-vq", *two_process_flags(workspace, killed, 6), "--resume"], workspace)

    first, second = process_summaries(straight)
    assert (first["num_processes"], second["num_processes"]) == (2, 2)
    first_ids, second_ids = ({tuple(ids) for ids in summary["first_batch"]} for summary in (first, second))
    assert first_ids and second_ids and not first_ids & second_ids, "both processes trained on the same samples"
    assert first["parameters_sha256"] == second["parameters_sha256"]
    checkpoints = sorted(path.name for path in (straight / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint_2", "checkpoint_4", "checkpoint_6"]
    assert {"rng_rank0.pt", "rng_rank1.pt"} <= {
        path.name for path in (straight / "checkpoints" / "checkpoint_6").iterdir()
    }
    assert parameters_digest(C2FSegVQModel.from_pretrained(straight / "final")) == first["parameters_sha256"]
    assert process_summaries(killed)[0]["step"] == 6
    assert_same_weights(straight / "final", killed / "final")

    stage_two = tmp_path / "c2f"
    arguments = ["train", *two_process_flags(workspace, stage_two, 2), "--vq-model", str(straight / "final")]
    run_two_processes([*arguments, "--set", "eval_every=2"], workspace)
    first, second = process_summaries(stage_two)
    assert first["parameters_sha256"] == second["parameters_sha256"]
    assert (
        parameters_digest(C2FSegForAmodalSegmentation.from_pretrained(stage_two / "final"))
        == first["parameters_sha256"]
    )


def test_report_to_tensorboard_receives_losses_metrics_and_samples(workspace, vq_run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    output = tmp_path / "c2f"
    flags = ["train", "--vq-model", str(vq_run / "final"), *common_flags(workspace, output, steps=3)]
    assert main([*flags, "--report-to", "tensorboard"]) == 0
    accumulator = EventAccumulator(str(output / "trackers" / "c2f_hf-c2f"), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    scalars = set(accumulator.Tags()["scalars"])
    assert {"loss", "learning_rate", "samples_per_second", "model/miou_full"} <= scalars
    assert [event.step for event in accumulator.Scalars("loss")] == [1, 2, 3]
    assert accumulator.Tags()["images"] == ["samples"]
    assert (output / "log.jsonl").is_file()


def test_paper_presets_use_the_authors_augmentation_per_dataset_and_never_flip():
    expected = {
        "kins": (0.2, 0.4, 0.55, 0.1),
        "cocoa": (0.2, 0.7, 0.6, 0.2),
        "fishbowl": (0.1, 0.5, 0.5, 0.1),
        "movid_a": (0.1, 0.5, 0.5, 0.1),
    }
    names = ("blur_probability", "morphology_probability", "dilation_probability", "blur_after_morphology_probability")
    for preset, values in expected.items():
        config = resolve_config("c2f", preset, {"vq_model": "vq"})
        assert tuple(config.augmentation[name] for name in names) == values and config.flip_probability == 0.0
    assert resolve_config("c2f", "tiny", {"vq_model": "vq"}).flip_probability == 0.5
    with pytest.raises(ValueError, match=r"augmentation: unknown fields \['blur'\]"):
        resolve_config("c2f", "kins", {"vq_model": "vq", "augmentation": {"blur": 0.1}})
    with pytest.raises(ValueError, match="lr_scheduler_type: expected one of"):
        resolve_config("c2f", "kins", {"vq_model": "vq", "lr_scheduler_type": "bogus"})


def test_the_loader_applies_the_configured_augmentation(workspace, tmp_path):
    config = resolve_config(
        "vq",
        "micro",
        {"dataset": str(workspace / "data"), "output_dir": str(tmp_path), "flip_probability": 1.0},
        {"augmentation": {"blur_probability": 1.0, "morphology_probability": 0.0}},
    )
    transform = object_loader(config, 64).dataset.transform
    assert transform.flip_probability == 1.0 and transform.augmentation.blur_probability == 1.0
    batch = next(iter(object_loader(config, 64)))
    assert batch["flipped"].all()


def save_to_hub_cache(model, cache: Path, repo_id: str) -> None:
    """Save `model` where `huggingface_hub` finds `repo_id` offline: `cache/models--org--name/snapshots/<sha>`."""
    revision = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    model.save_pretrained(repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)


def test_init_backbone_loads_an_imagenet_style_resnet_from_the_offline_hub_cache(workspace, vq_run, tmp_path):
    from transformers import ResNetForImageClassification

    torch.manual_seed(3)
    resnet = ResNetForImageClassification(tiny_config().backbone_config)
    save_to_hub_cache(resnet, tmp_path / "hub", "someone/tiny-resnet")
    script = textwrap.dedent(
        f"""
        import torch
        from c2f_hf.training.c2f import build_model
        from c2f_hf.training.config import resolve_config
        settings = {{"vq_model": {str(vq_run / "final")!r}, "model_config": {str(workspace / "architecture")!r}}}
        model = build_model(resolve_config("c2f", "tiny", settings, {{"init_backbone": "someone/tiny-resnet"}}))
        torch.save(model.backbone.state_dict(), {str(tmp_path / "backbone.pt")!r})
        """
    )
    environment = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-c", script], env=environment, check=True, capture_output=True, text=True)
    loaded = torch.load(tmp_path / "backbone.pt", weights_only=True)
    expected = {name.removeprefix("resnet."): tensor for name, tensor in resnet.state_dict().items()}
    assert loaded.keys() <= expected.keys()
    for name, tensor in loaded.items():
        assert torch.equal(tensor, expected[name]), name
    assert resolve_config("c2f", "kins", {"vq_model": "vq"}).init_backbone == "microsoft/resnet-50"
    assert resolve_config("c2f", "tiny", {"vq_model": "vq"}).init_backbone is None


def test_init_backbone_of_another_architecture_is_refused(vq_run, tmp_path):
    from transformers import ResNetConfig, ResNetModel

    from c2f_hf.training.c2f import build_model

    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1])).save_pretrained(
        tmp_path / "other"
    )
    settings = {"vq_model": str(vq_run / "final"), "init_backbone": str(tmp_path / "other")}
    config = resolve_config("c2f", "micro", settings)
    with pytest.raises(ValueError, match=r"init_backbone: .* is a ResNet with other \['hidden_sizes'\]"):
        build_model(config)
