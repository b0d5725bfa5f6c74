"""`c2f-hf export`: the repo folder and its remote code."""

import json
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch
from transformers import pipeline

from c2f_hf.cli import main
from c2f_hf.hub import export as hub
from c2f_testing import run_without_package, save_tiny_video_model
from hub_testing import python_blocks


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
    assert len(blocks) == 2 and all(f'model_id = "{exported.name}"' in block for block in blocks)
    (tmp_path / exported.name).symlink_to(exported)
    script = "import torch\ntorch.set_num_threads(1)\n" + "\n".join(
        f"exec(compile({block!r}, 'README.md snippet {index}', 'exec'), {{}})" for index, block in enumerate(blocks)
    )
    result = run_without_package(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "amodal_mask.png").is_file() and (tmp_path / "occluded_mask.png").is_file()
    assert "(1, 160, 200)" in result.stdout


def test_an_exported_repo_holds_no_local_path(exported, model_folder, metrics_path):
    import c2f_hf

    local_paths = {
        str(exported),
        str(exported.parent),
        str(model_folder),
        str(metrics_path.parent),
        str(Path(c2f_hf.__file__).parent),
        sys.prefix,
    }
    texts = {path.name: path.read_bytes().decode("utf-8", errors="replace") for path in exported.iterdir()}
    found = {name: [local for local in local_paths if local in text] for name, text in texts.items()}
    assert {name: paths for name, paths in found.items() if paths} == {}


def test_export_cli_validates_its_arguments(model_folder, metrics_path, tmp_path, capsys):
    def error_line(arguments: list[str]) -> str:
        assert main(["export", *arguments]) == 1
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.startswith("c2f-hf export: ")
        return line

    assert "--eval-dataset" in error_line(
        [str(model_folder), "--out", str(tmp_path / "a"), "--metrics", str(metrics_path)]
    )
    assert "no config.json" in error_line([str(tmp_path), "--out", str(tmp_path / "b")])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file.txt").write_text("x")
    assert "not an empty folder" in error_line([str(model_folder), "--out", str(tmp_path / "full")])
    (tmp_path / "bad.json").write_text("{}")
    arguments = [str(model_folder), "--out", str(tmp_path / "c"), "--metrics", str(tmp_path / "bad.json")]
    assert "not a metrics.json" in error_line([*arguments, "--eval-dataset", "x"])


def test_unset_trust_remote_code_raises_where_no_one_can_answer(exported, tmp_path):
    script = textwrap.dedent(
        f"""
        from transformers import AutoModel
        try:
            AutoModel.from_pretrained({str(exported)!r})
        except ValueError as error:
            print("refused:", error)
        """
    )
    completed = run_without_package(script, tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "refused:" in completed.stdout and "Please pass the argument `trust_remote_code=True`" in completed.stdout


def test_a_video_model_exports_with_the_video_pipeline_and_a_runnable_card(tmp_path):
    repo = tmp_path / "video_repo"
    hub.export_model(save_tiny_video_model(tmp_path / "video_model"), repo)
    assert hub.missing_files(repo) == []
    config = json.loads((repo / "config.json").read_text())
    assert config["custom_pipelines"]["video-amodal-segmentation"]["impl"].startswith(
        "pipeline_video_amodal_segmentation."
    )
    assert set(hub.CODE_FILES) <= {path.name for path in repo.iterdir()}
    readme = (repo / "README.md").read_text()
    assert "transformers>=5.21" in readme and 'pipeline("video-amodal-segmentation"' in readme
    (block,) = python_blocks(readme)
    script = "import torch\ntorch.set_num_threads(1)\n" + block
    result = run_without_package(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "amodal_mask_frame3.png").is_file() and "[True, True, True, True, True, True]" in result.stdout


def test_a_plain_saved_folder_names_no_remote_code_and_loads_without_a_question(
    exported, model_folder, tmp_path, monkeypatch, caplog
):
    """Only an export writes `auto_map` (and only inside it): a folder written by `save_pretrained`, even after an
    export in the same process, loads through `pipeline()` with `trust_remote_code` unset, asking nothing, and
    `AutoImageProcessor` loads its processor without a backend warning (torchvision installed or not)."""
    from transformers import AutoImageProcessor

    from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor

    def no_question(prompt=""):
        raise AssertionError(f"asked: {prompt}")

    monkeypatch.setattr("builtins.input", no_question)
    C2FSegForAmodalSegmentation.from_pretrained(model_folder).save_pretrained(tmp_path)
    C2FSegImageProcessor.from_pretrained(model_folder).save_pretrained(tmp_path)
    assert "auto_map" not in json.loads((tmp_path / "config.json").read_text())
    assert "auto_map" not in json.loads((tmp_path / "preprocessor_config.json").read_text())
    with caplog.at_level("WARNING"):
        processor = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(processor) is C2FSegImageProcessor
    assert not [record for record in caplog.records if "backend" in record.getMessage()]
    segmenter = pipeline("amodal-segmentation", model=str(tmp_path))
    assert type(segmenter.model) is C2FSegForAmodalSegmentation
