import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import pipeline

from c2f_hf import hub
from c2f_hf.cards import CONVERTED_MARKER, EvaluationSource
from c2f_hf.cli import main
from c2f_hf.evaluation import AmodalMetrics, prediction_variants, write_report
from c2f_testing import run_without_package, save_tiny_model

TRAINING_COMMAND = "c2f-hf train --preset tiny --dataset data/synthetic --output-dir runs/tiny"
EVALUATION_COMMAND = "c2f-hf evaluate --model runs/tiny/final --dataset data/synthetic --split test --out eval"


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


def front_matter(readme: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", readme, re.DOTALL)
    assert match, "README.md must start with YAML front matter"
    return yaml.safe_load(match.group(1))


def python_blocks(readme: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme, re.DOTALL)


def test_export_writes_every_file_of_a_remote_code_repo(exported):
    assert hub.missing_files(exported) == []
    hub.check_remote_code(exported)
    config = json.loads((exported / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_c2f_seg.C2FSegForAmodalSegmentation"
    assert config["custom_pipelines"]["amodal-segmentation"]["impl"].startswith("pipeline_amodal_segmentation.")
    processor = json.loads((exported / "preprocessor_config.json").read_text())
    assert processor["auto_map"]["AutoImageProcessor"] == "image_processing_c2f_seg.C2FSegImageProcessor"
    for module in hub.CODE_FILES:
        assert not re.search(r"^\s*(from|import)\s+c2f_hf", (exported / module).read_text(), re.MULTILINE), module


def test_exported_repo_loads_without_the_package_and_matches_it(exported, model_folder, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)
    masks = np.zeros((2, 70, 90), dtype=bool)
    masks[0, 10:40, 10:50] = True
    masks[1, 35:65, 40:85] = True
    segmenter = pipeline("amodal-segmentation", model=str(model_folder), trust_remote_code=False)
    expected = segmenter(image, visible_masks=list(masks), greedy=True, return_coarse=True)
    crops = segmenter.image_processor(image, visible_masks=list(masks))
    with torch.no_grad():
        expected_logits = segmenter.model.generate(crops["pixel_values"], crops["visible_masks"], greedy=True)
    np.savez(tmp_path / "inputs.npz", image=image, masks=masks)
    script = textwrap.dedent(
        f"""
        import numpy as np
        import torch
        from transformers import AutoImageProcessor, AutoModel, pipeline
        torch.set_num_threads(1)
        repo, inputs = {str(exported)!r}, np.load({str(tmp_path / "inputs.npz")!r})
        model = AutoModel.from_pretrained(repo, trust_remote_code=True).eval()
        processor = AutoImageProcessor.from_pretrained(repo, trust_remote_code=True)
        segmenter = pipeline("amodal-segmentation", model=repo, trust_remote_code=True)
        for loaded in (model, processor, segmenter):
            assert type(loaded).__module__.startswith("transformers_modules"), type(loaded).__module__
        crops = processor(inputs["image"], visible_masks=list(inputs["masks"]))
        with torch.no_grad():
            output = model.generate(crops["pixel_values"], crops["visible_masks"], greedy=True)
        objects = segmenter(inputs["image"], visible_masks=list(inputs["masks"]), greedy=True, return_coarse=True)
        np.savez({str(tmp_path / "out.npz")!r}, amodal=output.amodal_masks.numpy(), scores=output.scores.numpy(),
                 pixels=crops["pixel_values"].numpy(),
                 masks=np.stack([np.asarray(o["amodal_mask"]) for o in objects]),
                 coarse=np.stack([np.asarray(o["coarse_amodal_mask"]) for o in objects]),
                 rates=np.array([o["occlusion_rate"] for o in objects]))
        """
    )
    result = run_without_package(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "out.npz")
    assert np.array_equal(outputs["pixels"], crops["pixel_values"].numpy())
    assert np.allclose(outputs["amodal"], expected_logits.amodal_masks.numpy(), atol=1e-5)
    assert np.allclose(outputs["scores"], expected_logits.scores.numpy(), atol=1e-6)
    assert np.array_equal(outputs["masks"], np.stack([np.asarray(o["amodal_mask"]) for o in expected]))
    assert np.array_equal(outputs["coarse"], np.stack([np.asarray(o["coarse_amodal_mask"]) for o in expected]))
    assert np.allclose(outputs["rates"], [o["occlusion_rate"] for o in expected])


def test_card_snippets_run_against_the_exported_folder(exported, tmp_path):
    blocks = python_blocks((exported / "README.md").read_text())
    assert len(blocks) == 2 and all(f'model_id = "{exported}"' in block for block in blocks)
    script = "import torch\ntorch.set_num_threads(1)\n" + "\n".join(
        f"exec(compile({block!r}, 'README.md snippet {index}', 'exec'), {{}})" for index, block in enumerate(blocks)
    )
    result = run_without_package(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "amodal_mask.png").is_file() and (tmp_path / "occluded_mask.png").is_file()
    assert "(1, 160, 200)" in result.stdout


def test_card_front_matter_and_model_index(exported, metrics_path):
    readme = (exported / "README.md").read_text()
    data = front_matter(readme)
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "image-segmentation"
    assert {"amodal-segmentation", "c2f-seg"} <= set(data["tags"])
    assert data["license"] == "apache-2.0" and data["datasets"] == ["c2f-hf/synthetic-amodal"]
    (entry,) = data["model-index"]
    (result,) = entry["results"]
    assert result["dataset"] == {"name": "synthetic shapes", "type": "synthetic-shapes", "split": "test"}
    metrics = json.loads(metrics_path.read_text())["variants"]
    values = {metric["name"]: metric["value"] for metric in result["metrics"]}
    assert values["mIoU_full (%)"] == round(100 * metrics["model"]["miou_full"], 2)
    assert values["mIoU_occ (%)"] == round(100 * metrics["model"]["miou_occ"], 2)
    for variant, title in (("visible_baseline", "baseline: visible mask"), ("convex_hull_baseline", "convex hull")):
        assert f"{100 * metrics[variant]['miou_full']:.2f}" in readme.split(title)[1].splitlines()[0]
    for text in (TRAINING_COMMAND, EVALUATION_COMMAND, "synthetic shapes only", "seed=", "greedy=True"):
        assert text in readme
    assert "Apache-2.0" in readme and "Coarse-to-Fine Amodal Segmentation with Shape Prior" in readme


def test_card_without_metrics_or_commands_states_nothing_invented(model_folder, tmp_path):
    hub.export_model(model_folder, tmp_path / "repo", hub.ExportOptions(repo_id="someone/c2f-seg"))
    readme = (tmp_path / "repo" / "README.md").read_text()
    data = front_matter(readme)
    assert "model-index" not in data and "metrics" not in data
    assert "No evaluation results were given" in readme and "Not given when this card was written." in readme
    assert 'model_id = "someone/c2f-seg"' in readme and "synthetic shapes only" not in readme


def test_converted_weights_keep_the_authors_licence(model_folder, tmp_path):
    source = tmp_path / "converted"
    source.mkdir()
    for path in model_folder.iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    (source / "README.md").write_text(f"# C2F-Seg ({CONVERTED_MARKER})\n")
    hub.export_model(source, tmp_path / "repo")
    readme = (tmp_path / "repo" / "README.md").read_text()
    assert front_matter(readme)["license"] == "other"
    assert "their licence and terms apply" in readme


def test_export_cli_validates_its_arguments(model_folder, metrics_path, tmp_path):
    with pytest.raises(SystemExit, match="--eval-dataset"):
        main(["export", str(model_folder), "--out", str(tmp_path / "a"), "--metrics", str(metrics_path)])
    with pytest.raises(SystemExit, match="no config.json"):
        main(["export", str(tmp_path), "--out", str(tmp_path / "b")])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file.txt").write_text("x")
    with pytest.raises(SystemExit, match="not an empty folder"):
        main(["export", str(model_folder), "--out", str(tmp_path / "full")])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="not a metrics.json"):
        main(
            [
                "export",
                str(model_folder),
                "--out",
                str(tmp_path / "c"),
                "--metrics",
                str(tmp_path / "bad.json"),
                "--eval-dataset",
                "x",
            ]
        )


class RecordingHfApi:
    """Stands in for `HfApi` (the Hub is unreachable here): records the calls and what the folder holds."""

    calls: list = []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def upload_folder(self, **kwargs):
        files = sorted(path.name for path in Path(kwargs["folder_path"]).iterdir())
        self.calls.append(("upload_folder", {**kwargs, "files": files}))
        return type("Commit", (), {"commit_url": f"https://hub.invalid/{kwargs['repo_id']}/commit/1"})()


def test_push_creates_the_repo_and_uploads_the_whole_folder(exported, monkeypatch, capsys):
    RecordingHfApi.calls = []
    monkeypatch.setattr(hub, "HfApi", RecordingHfApi)
    assert main(["push", str(exported), "--repo-id", "someone/c2f-seg", "--private", "--commit-message", "v1"]) == 0
    (create_name, create), (upload_name, upload) = RecordingHfApi.calls
    assert create_name == "create_repo" and upload_name == "upload_folder"
    assert create == {"repo_id": "someone/c2f-seg", "repo_type": "model", "private": True, "exist_ok": True}
    assert upload["repo_id"] == "someone/c2f-seg" and upload["folder_path"] == str(exported)
    assert upload["commit_message"] == "v1"
    assert set(upload["files"]) == {*hub.REQUIRED_FILES, "model.safetensors"}
    assert "someone/c2f-seg/commit/1" in capsys.readouterr().out


def test_push_refuses_an_incomplete_folder(exported, tmp_path, monkeypatch):
    RecordingHfApi.calls = []
    monkeypatch.setattr(hub, "HfApi", RecordingHfApi)
    partial = tmp_path / "partial"
    partial.mkdir()
    for path in exported.iterdir():
        if path.name != "modeling_c2f_seg.py":
            (partial / path.name).write_bytes(path.read_bytes())
    with pytest.raises(SystemExit, match="modeling_c2f_seg.py"):
        main(["push", str(partial), "--repo-id", "someone/c2f-seg"])
    assert RecordingHfApi.calls == []
