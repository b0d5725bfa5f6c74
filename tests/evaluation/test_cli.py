"""`c2f-hf evaluate` (`c2f_hf.evaluation.cli`) in-process, on tiny synthetic datasets."""

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from transformers import pipeline

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.checkpoints import default_model_path
from c2f_hf.cli import main
from c2f_hf.data.schema import load_amodal_dataset
from c2f_hf.evaluation import EvaluationResults, evaluate_model
from c2f_hf.models.c2f_seg.fast_inference import bf16_pays_off, cpu_has_native_bf16
from c2f_testing import TINY_IMAGE_SIZE, save_tiny_model
from evaluation_testing import VARIANTS


def test_cli_evaluate_writes_the_report(image_folder, model_folder, tmp_path, capsys):
    out = tmp_path / "report"
    arguments = ["--model", str(model_folder), "--dataset", str(image_folder), "--out", str(out)]
    options = ["--max-objects", "6", "--batch-size", "4", "--num-steps", "2", "--occlusion-range", "0", "0.9"]
    assert main(["evaluate", *arguments, *options]) == 0

    assert {path.name for path in out.iterdir()} == {"metrics.json", "metrics.md", "per_bin_miou.png"}
    written = json.loads((out / "metrics.json").read_text())
    results = EvaluationResults.from_dict(written)
    assert results.num_objects_added == 6 and results.occlusion_range == (0.0, 0.9)
    model = written["variants"]["model"]
    assert (model["invented_area"] is None) == (model["num_unoccluded_objects"] == 0)
    settings = results.run_settings
    assert settings["model"] == str(model_folder) and settings["dataset"] == str(image_folder)
    assert settings["dataset_split"] == "test" and settings["num_steps"] == 2 and settings["batch_size"] == 4
    assert settings["seed"] == 0 and settings["greedy"] is False and settings["visible_source"] == "gt"
    assert settings["max_objects"] == 6 and settings["crop_size"] > 0 and settings["device"] == "cpu"
    markdown = (out / "metrics.md").read_text()
    assert all(f"| {name} |" in markdown for name in VARIANTS)
    assert markdown.strip() in capsys.readouterr().out
    with Image.open(out / "per_bin_miou.png") as chart:
        chart.load()
        assert chart.size == (960, 720)

    with pytest.raises(SystemExit) as usage_error:
        main(["evaluate", *arguments, "--batch-size", "0"])
    assert usage_error.value.code == 2 and "--batch-size" in capsys.readouterr().err
    assert main(["evaluate", *arguments, "--visible-source", "predicted"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("c2f-hf evaluate: ") and "predicted_visible_masks" in line


def test_cli_evaluate_dtype_is_the_fast_path_unless_float32_is_asked_for(image_folder, tmp_path):
    shipped = C2FSegForAmodalSegmentation.config_class.from_pretrained(default_model_path())
    fast = "bfloat16" if cpu_has_native_bf16() and bf16_pays_off(shipped.vq_config) else "float32"
    arguments = ["--dataset", str(image_folder), "--max-objects", "2", "--greedy"]
    for dtype, expected in (("auto", fast), ("float32", "float32")):
        out = tmp_path / dtype
        options = [] if dtype == "auto" else ["--dtype", dtype]
        assert main(["evaluate", *arguments, *options, "--out", str(out)]) == 0
        assert json.loads((out / "metrics.json").read_text())["run_settings"]["dtype"] == expected


def test_cli_evaluate_crops_from_the_amodal_mask_on_request(image_folder, model_folder, tmp_path, capsys):
    arguments = ["--model", str(model_folder), "--dataset", str(image_folder), "--max-objects", "4", "--greedy"]
    reports = {}
    for crop_from in ("visible", "amodal"):
        out = tmp_path / crop_from
        assert main(["evaluate", *arguments, "--crop-from", crop_from, "--out", str(out), "--save-predictions"]) == 0
        reports[crop_from] = json.loads((out / "metrics.json").read_text())
        assert reports[crop_from]["run_settings"]["crop_from"] == crop_from
    assert (
        _saved_masks(tmp_path / "visible" / "predictions.json").keys()
        == _saved_masks(tmp_path / "amodal" / "predictions.json").keys()
    )
    capsys.readouterr()
    refused = ["--visible-source", "predicted", "--crop-from", "amodal", "--out", str(tmp_path / "no")]
    assert main(["evaluate", *arguments, *refused]) == 1
    assert "crop_from='amodal'" in capsys.readouterr().err


def _saved_masks(path) -> dict[tuple[str, int], np.ndarray]:
    """`predictions.json` as {(image id, object index): full-size bool amodal mask}."""
    return {
        (item["image_id"], item["object_index"]): mask_utils.decode(item["segmentation"]).astype(bool)
        for item in json.loads(path.read_text())
    }


@pytest.mark.parametrize("second_crop_ratio", [None, 1.5])
def test_cli_evaluate_and_the_pipeline_give_identical_masks_with_the_saved_processor(
    image_folder, tmp_path, second_crop_ratio
):
    model_folder = save_tiny_model(tmp_path / "model")
    saved = C2FSegImageProcessor(
        crop_resolution=TINY_IMAGE_SIZE, enlarge_ratio=1.7, mask_threshold=0.4, second_crop_ratio=second_crop_ratio
    )
    saved.save_pretrained(model_folder)
    out = tmp_path / "report"
    arguments = ["--model", str(model_folder), "--dataset", str(image_folder), "--out", str(out)]
    assert main(["evaluate", *arguments, "--greedy", "--batch-size", "1", "--save-predictions"]) == 0
    settings = json.loads((out / "metrics.json").read_text())["run_settings"]
    assert (settings["enlarge_ratio"], settings["mask_threshold"]) == (1.7, 0.4)
    assert settings["second_crop_ratio"] == second_crop_ratio
    evaluated = _saved_masks(out / "predictions.json")

    segmenter = pipeline("amodal-segmentation", model=str(model_folder), trust_remote_code=False)
    dataset = load_amodal_dataset(image_folder, "test")
    piped = {}
    for row in dataset:
        visible_masks = [np.asarray(item["visible_mask"].convert("L")) > 127 for item in row["objects"]]
        for index, result in enumerate(segmenter(row["image"], visible_masks=visible_masks, greedy=True)):
            piped[(row["image_id"], index)] = np.asarray(result["amodal_mask"]) > 0
    assert evaluated.keys() == piped.keys() and len(piped) > 0
    for key, mask in piped.items():
        np.testing.assert_array_equal(evaluated[key], mask, err_msg=str(key))

    # The saved settings matter: the class defaults (enlarge ratio 2.0, threshold 0.5) give other masks, and so
    # does the saved processor without its second crop.
    model = C2FSegForAmodalSegmentation.from_pretrained(model_folder)
    others = (
        [None]
        if second_crop_ratio is None
        else [None, saved.__class__.from_pretrained(model_folder, second_crop_ratio=None)]
    )
    for processor in others:
        predictions = []
        evaluate_model(
            model,
            dataset,
            image_processor=processor,
            greedy=True,
            batch_size=1,
            progress=False,
            predictions=predictions,
        )
        masks = {(item["image_id"], item["object_index"]): item for item in predictions}
        assert any(
            not np.array_equal(mask_utils.decode(masks[key]["segmentation"]).astype(bool), mask)
            for key, mask in piped.items()
        )


def rewritten_split(source_folder, folder, edit) -> None:
    """`folder/test.parquet`: the source folder's test split with `edit(table) -> table` applied (Arrow level)."""
    folder.mkdir()
    table = edit(pq.read_table(source_folder / "test.parquet"))
    pq.write_table(table, folder / "test.parquet")


def without_object_field(name: str):
    def edit(table: pa.Table) -> pa.Table:
        objects = table.column("objects").combine_chunks()
        structs = objects.values
        kept = [field for field in structs.type if field.name != name]
        reduced = pa.StructArray.from_arrays([structs.field(field.name) for field in kept], fields=kept)
        column = pa.ListArray.from_arrays(objects.offsets, reduced)
        return table.set_column(table.schema.get_field_index("objects"), "objects", column).replace_schema_metadata()

    return edit


def without_objects(table: pa.Table) -> pa.Table:
    objects = table.column("objects").combine_chunks()
    empty = pa.ListArray.from_arrays(pa.array([0] * (len(objects) + 1), pa.int32()), objects.values.slice(0, 0))
    return table.set_column(table.schema.get_field_index("objects"), "objects", empty)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda table: table.drop_columns(["image"]).replace_schema_metadata(),
            r"missing field\(s\) image of the image",
        ),
        (without_object_field("visible_mask"), r"missing field\(s\) objects.visible_mask of the image dataset schema"),
        (lambda table: table.slice(0, 0), "the split has no rows"),
        (without_objects, "no object was evaluated"),
    ],
    ids=["no-image-column", "no-nested-field", "zero-rows", "no-objects"],
)
def test_cli_evaluate_names_each_dataset_problem_in_one_line_and_fails(
    image_folder, model_folder, tmp_path, capsys, edit, message
):
    rewritten_split(image_folder, tmp_path / "data", edit)
    arguments = ["--model", str(model_folder), "--dataset", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    assert main(["evaluate", *arguments]) == 1
    error = capsys.readouterr().err
    line = error.strip().splitlines()[-1]
    assert "Traceback" not in error and line.startswith("c2f-hf evaluate: ") and re.search(message, line), error


@pytest.mark.parametrize("problem", ["missing-folder", "not-parquet", "missing-model"])
def test_cli_evaluate_names_missing_and_unreadable_files(image_folder, model_folder, tmp_path, capsys, problem):
    dataset, model = tmp_path / "data", model_folder
    if problem == "not-parquet":
        dataset.mkdir()
        (dataset / "test.parquet").write_text("image_id,image\n0,none\n")
    elif problem == "missing-folder":
        dataset = tmp_path / "nowhere"
    else:
        dataset, model = image_folder, tmp_path / "no_model"
    arguments = ["--model", str(model), "--dataset", str(dataset), "--out", str(tmp_path / "out")]
    assert main(["evaluate", *arguments]) == 1
    error = capsys.readouterr().err
    expected = {
        "missing-folder": f"c2f-hf evaluate: no dataset folder at {dataset}",
        "not-parquet": f"c2f-hf evaluate: {dataset / 'test.parquet'}: is not a readable Parquet file",
        "missing-model": f"c2f-hf evaluate: {model}",
    }[problem]
    assert "Traceback" not in error and error.strip().splitlines()[-1].startswith(expected), error
