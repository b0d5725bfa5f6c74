"""Fixtures of the training tests, shared by every file: a tiny synthetic dataset and one complete stage-1 run."""

import pytest

from c2f_hf.cli import main
from c2f_testing import tiny_config
from training_testing import common_flags, run_cli


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def vq_run(workspace):
    output = workspace / "vq_full"
    process = run_cli(["train-vq", *common_flags(workspace, output)], workspace)
    assert process.wait() == 0, process.stdout.read()[-3000:]
    return output
