"""Experiment trackers: `--report-to tensorboard` receives losses, metrics and samples."""

from c2f_hf.cli import main
from training_testing import common_flags


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
