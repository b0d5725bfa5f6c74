"""Shared fixtures of the Hub tests: a tiny model folder, its metrics and its exported repo."""

import numpy as np
import pytest
import torch

from c2f_hf.evaluation import AmodalMetrics, prediction_variants, write_report
from c2f_hf.hub import export as hub
from c2f_hf.hub.cards import EvaluationSource
from c2f_testing import save_tiny_model
from hub_testing import EVALUATION_COMMAND, TRAINING_COMMAND


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="module")
def metrics_path(tmp_path_factory):
    metrics = AmodalMetrics()
    for index in range(4):
        amodal = np.zeros((32, 32), dtype=bool)
        amodal[4 : 20 + index, 4:24] = True
        visible = amodal.copy()
        visible[12:] = False
        prediction = amodal.copy()
        prediction[4 : 6 + index] = False
        metrics.add(prediction_variants(prediction, visible), amodal, visible, image_id=index)
    return write_report(metrics.compute(), tmp_path_factory.mktemp("report"))["json"]


@pytest.fixture(scope="module")
def exported(model_folder, metrics_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "repo"
    evaluation = EvaluationSource(metrics_path, "synthetic shapes", "synthetic-shapes", EVALUATION_COMMAND, "test")
    options = hub.ExportOptions(
        training_data="Synthetic occluded shapes from `c2f-hf data synthetic`.",
        training_command=TRAINING_COMMAND,
        datasets=["c2f-hf/synthetic-amodal"],
        evaluation=evaluation,
        synthetic_only=True,
    )
    hub.export_model(model_folder, out, options)
    return out
