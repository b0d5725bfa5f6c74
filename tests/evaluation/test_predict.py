"""`c2f-hf predict` (`c2f_hf.evaluation.predict`) in-process, with the shipped tiny model on tiny synthetic data."""

import json

import datasets
import numpy as np
import pyarrow.parquet
import pytest
import torch
from pycocotools import mask as mask_utils

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.cli import main
from c2f_hf.data.schema import image_features, load_amodal_dataset, write_split
from c2f_hf.evaluation.predict import SETTINGS_FILE
from c2f_testing import tiny_video_config


@pytest.fixture(scope="module")
def predicted(image_folder, tmp_path_factory):
    """`c2f-hf predict` of the test split, 2 rows per shard, and `c2f-hf evaluate --save-predictions` alike."""
    folder = tmp_path_factory.mktemp("predicted")
    # float32: on CPUs with bf16 units the default bf16 path rounds differently as objects are batched differently
    common = ["--dataset", str(image_folder), "--batch-size", "3", "--seed", "7", "--dtype", "float32"]
    assert main(["predict", *common, "--rows-per-shard", "3", "--out", str(folder / "out")]) == 0
    assert main(["evaluate", *common, "--save-predictions", "--out", str(folder / "report")]) == 0
    return folder


def test_predict_writes_every_object_with_the_mask_evaluate_predicts(image_folder, predicted):
    out = predicted / "out"
    assert sorted(path.name for path in (out / "data").iterdir()) == [
        "test-00000-of-00002.parquet",
        "test-00001-of-00002.parquet",
    ]
    rows = load_amodal_dataset(out, "test")
    same = datasets.load_dataset("parquet", data_files=str(out / "data" / "test-*.parquet"), split="train")
    assert same.num_rows == rows.num_rows == load_amodal_dataset(image_folder, "test").num_rows
    saved = {
        (item["image_id"], item["object_index"]): item
        for item in json.loads((predicted / "report" / "predictions.json").read_text())
    }
    for row in rows:
        for position, item in enumerate(row["objects"]):
            mask = np.asarray(item["predicted_amodal_mask"]) > 127
            expected = saved.pop((row["image_id"], position))
            assert mask.shape == np.asarray(row["image"]).shape[:2]
            np.testing.assert_array_equal(mask, mask_utils.decode(expected["segmentation"]).astype(bool))
            assert item["predicted_amodal_score"] == pytest.approx(expected["score"])
    assert saved == {}


def test_predict_card_says_how_it_was_made_without_local_paths(image_folder, predicted):
    card = (predicted / "out" / "README.md").read_text()
    command = f"c2f-hf predict --model c2f-seg-synthetic-tiny --dataset {image_folder.name} --split test"
    assert command in card and "--seed 7" in card and "--batch-size 3 --rows-per-shard 3 --out out" in card
    assert "path: data/test-*.parquet" in card and "predicted_amodal_mask" in card
    assert str(predicted.parent) not in card and str(image_folder.parent) not in card
    settings = json.loads((predicted / "out" / SETTINGS_FILE).read_text())["settings"]
    assert settings["seed"] == 7 and settings["greedy"] is False and settings["model_sha256"]
    assert settings["dtype"] == "float32" and "--dtype float32" in card


def test_predict_resumes_the_missing_shards_and_refuses_another_runs_folder(image_folder, predicted, capsys):
    out = predicted / "out"
    paths = sorted((out / "data").glob("*.parquet"))
    expected = [pyarrow.parquet.read_table(path) for path in paths]
    kept = paths[0].stat().st_mtime_ns
    paths[1].unlink()
    paths[1].with_name(paths[1].name + ".partial").write_bytes(b"cut short")
    common = [
        "--dataset",
        str(image_folder),
        "--batch-size",
        "3",
        "--seed",
        "7",
        "--dtype",
        "float32",
        "--out",
        str(out),
    ]
    assert main(["predict", *common, "--rows-per-shard", "3"]) == 0
    assert [pyarrow.parquet.read_table(path) for path in paths] == expected
    assert paths[0].stat().st_mtime_ns == kept and not list((out / "data").glob("*.partial"))

    capsys.readouterr()
    assert main(["predict", *common, "--rows-per-shard", "2"]) == 1
    error = capsys.readouterr().err
    assert "holds the output of a different prediction run" in error and "rows_per_shard: 3 there, 2 here" in error
    assert main(["predict", *common[:-1], str(predicted / "report")]) == 1
    assert f"has no {SETTINGS_FILE}" in capsys.readouterr().err


def test_predict_completes_every_detection(image_folder, tmp_path):
    rows = load_amodal_dataset(image_folder, "test").with_format("arrow")[:2].to_pylist()
    for row in rows:
        detections = [
            {"visible_mask": item["visible_mask"], "score": 0.5, "category": item["category"], "object_index": index}
            for index, item in enumerate(row["objects"])
        ]
        row["predicted_visible_masks"] = [*detections, {**detections[0], "object_index": -1}]
    write_split(rows, image_features(with_predictions=True), tmp_path / "data" / "test.parquet")
    out = tmp_path / "out"
    assert (
        main(["predict", "--dataset", str(tmp_path / "data"), "--visible-source", "predicted", "--out", str(out)]) == 0
    )
    for row in load_amodal_dataset(out, "test"):
        assert "predicted_amodal_mask" not in row["objects"][0]
        for detection in row["predicted_visible_masks"]:
            predicted_mask = np.asarray(detection["predicted_amodal_mask"]) > 127
            assert predicted_mask.shape == np.asarray(row["image"]).shape[:2]
            assert predicted_mask.any() and 0.0 <= detection["predicted_amodal_score"] <= 1.0


def test_predict_completes_every_track_on_every_frame_with_a_video_model(video_folder, tmp_path, capsys):
    torch.manual_seed(0)
    video_model = str(tmp_path / "video_model")
    C2FSegForAmodalSegmentation(tiny_video_config(num_frames=3)).save_pretrained(video_model)
    common = ["--dataset", str(video_folder), "--batch-size", "2", "--seed", "3"]
    assert main(["predict", "--model", video_model, *common, "--out", str(tmp_path / "out")]) == 0
    assert (
        main(["evaluate", "--model", video_model, *common, "--save-predictions", "--out", str(tmp_path / "report")])
        == 0
    )
    saved = json.loads((tmp_path / "report" / "predictions.json").read_text())
    saved = {(item["image_id"], item["object_index"]): item for item in saved}
    for clip in load_amodal_dataset(tmp_path / "out", "test"):
        for track_index, track in enumerate(clip["objects"]):
            masks, scores = track["predicted_amodal_masks"], track["predicted_amodal_scores"]
            assert len(masks) == len(scores) == len(clip["frames"])
            for frame, (mask, score) in enumerate(zip(masks, scores)):
                mask = np.asarray(mask) > 127
                expected = saved.pop((f"{clip['video_id']}/{frame}", track_index), None)
                if expected is None:  # hidden on this frame: nothing completed
                    assert score is None and not mask.any()
                else:
                    np.testing.assert_array_equal(mask, mask_utils.decode(expected["segmentation"]).astype(bool))
    assert saved == {}

    assert main(["predict", *common, "--out", str(tmp_path / "image_model")]) == 1
    assert "got an image model and a video dataset" in capsys.readouterr().err
