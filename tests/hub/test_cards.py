"""The model card of an exported repo."""

import json

from c2f_hf.hub import export as hub
from c2f_hf.hub.cards import CONVERTED_MARKER
from hub_testing import EVALUATION_COMMAND, TRAINING_COMMAND, front_matter


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
    assert front_matter(readme)["license"] == "apache-2.0"
    assert "licensed under Apache-2.0 ([https://github.com/amazon-science/c2f-seg]" in readme


def test_a_fine_tuned_model_names_its_base_model(model_folder, tmp_path):
    hub.export_model(model_folder, tmp_path / "repo", hub.ExportOptions(base_model="someone/c2f-seg-kins"))
    assert front_matter((tmp_path / "repo" / "README.md").read_text())["base_model"] == "someone/c2f-seg-kins"
