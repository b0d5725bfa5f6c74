"""`load_amodal_dataset` on our layout, the Hub layout (shards under `data/`) and Hub dataset ids (offline)."""

import shutil

import datasets
import huggingface_hub.constants
import pytest

from c2f_hf.cli import main
from c2f_hf.data.schema import available_splits, load_amodal_dataset, split_path, write_split
from c2f_hf.data.synthetic import generate_scenes
from c2f_testing import save_tiny_model
from local_hub import cache_hub_dataset, write_shards


def arrow_rows(dataset: datasets.Dataset) -> list[dict]:
    """The stored (undecoded) rows: image bytes, masks, boxes, categories."""
    return dataset.with_format("arrow")[:].to_pylist()


@pytest.fixture(scope="module")
def hub_folder(tiny_config, tmp_path_factory):
    """The scenes of `tiny_folder` as two Hub-layout shards `data/train-0000{0,1}-of-00002.parquet`."""
    folder = tmp_path_factory.mktemp("hub_layout")
    write_shards(list(generate_scenes(tiny_config, 7, 6)), folder, "train", num_shards=2)
    return folder


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1 for `datasets` and `huggingface_hub`, whatever the environment says."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_hub_layout_shards_read_back_the_rows_of_our_layout(hub_folder, tiny_folder, tiny_dataset, tmp_path):
    assert available_splits(hub_folder) == ["train"]
    dataset = load_amodal_dataset(hub_folder, "train", cache_dir=str(tmp_path / "cache"))
    assert len(dataset) == 6 and arrow_rows(dataset) == arrow_rows(tiny_dataset)


def test_available_splits_reads_both_layouts_and_ignores_other_parquet_names(hub_folder, tiny_folder, tmp_path):
    folder = tmp_path / "both"
    shutil.copytree(hub_folder, folder)
    shutil.copy(split_path(tiny_folder, "train"), split_path(folder, "test"))
    shutil.copy(split_path(tiny_folder, "train"), folder / "data" / "notes.parquet")
    assert available_splits(folder) == ["test", "train"]
    with pytest.raises(FileNotFoundError, match=r"no split 'validation' in .*found \['test', 'train'\]"):
        load_amodal_dataset(folder, "validation")


def test_a_broken_shard_is_named(hub_folder, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(hub_folder, folder)
    broken = folder / "data" / "train-00001-of-00002.parquet"
    broken.write_text("not parquet")
    with pytest.raises(ValueError, match=rf"{broken}: is not a readable Parquet file"):
        load_amodal_dataset(folder, "train")


def test_a_shard_without_a_schema_field_is_named(hub_folder, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(hub_folder, folder)
    partial = folder / "data" / "train-00000-of-00002.parquet"
    write_split([{"image_id": "only-an-id"}], datasets.Features({"image_id": datasets.Value("string")}), partial)
    with pytest.raises(ValueError, match=rf"{partial}: missing field\(s\) image, objects of the image dataset"):
        load_amodal_dataset(folder, "train")


def test_a_hub_id_loads_from_the_datasets_cache_offline(hub_folder, tiny_dataset, tmp_path, offline):
    cache_hub_dataset(hub_folder, "someone/tiny-amodal", ["train"], tmp_path)
    dataset = load_amodal_dataset("someone/tiny-amodal", "train", cache_dir=str(tmp_path), revision="main")
    assert arrow_rows(dataset) == arrow_rows(tiny_dataset)


def test_schema_checks_apply_to_a_hub_id(tmp_path, offline):
    repo = tmp_path / "repo"
    features = datasets.Features({"image_id": datasets.Value("string"), "image": datasets.Image()})
    write_split([{"image_id": "a", "image": None}], features, repo / "data" / "train-00000-of-00001.parquet")
    cache_hub_dataset(repo, "someone/no-objects", ["train"], tmp_path / "cache")
    with pytest.raises(ValueError, match=r"someone/no-objects: missing field\(s\) objects of the image dataset"):
        load_amodal_dataset("someone/no-objects", "train", cache_dir=str(tmp_path / "cache"))


def test_an_uncached_hub_id_offline_says_so_and_names_the_id(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match=r"someone/not-cached: no such local dataset folder.*HF_HUB_OFFLINE"):
        load_amodal_dataset("someone/not-cached", "test", cache_dir=str(tmp_path))


def test_a_missing_path_that_is_no_hub_id_is_a_missing_folder(tmp_path):
    for missing in (tmp_path / "nowhere", "./nowhere", "a/b/c"):
        with pytest.raises(FileNotFoundError, match=f"no dataset folder at {missing}"):
            load_amodal_dataset(missing, "test")


def test_a_revision_with_a_local_folder_is_refused(tiny_folder):
    with pytest.raises(ValueError, match=rf"revision 'v1' applies to a Hub dataset id, but {tiny_folder} is a local"):
        load_amodal_dataset(tiny_folder, "train", revision="v1")


@pytest.mark.parametrize("command", ["evaluate", "train-vq", "train"])
def test_every_dataset_command_takes_a_hub_id_and_a_revision(command, tiny_folder, tmp_path, capsys, offline):
    init_model = save_tiny_model(tmp_path / "model") if command == "train" else None
    arguments = {
        "evaluate": ["--out", str(tmp_path / "report"), "--split", "train"],
        "train-vq": ["--preset", "micro", "--output-dir", str(tmp_path / "run")],
        "train": ["--preset", "micro", "--output-dir", str(tmp_path / "run"), "--init-model", str(init_model)],
    }[command]
    assert main([command, "--dataset", "someone/not-cached", "--revision", "v2", *arguments]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"c2f-hf {command}: someone/not-cached: no such local dataset folder"), error
    assert "HF_HUB_OFFLINE" in error
    assert main([command, "--dataset", str(tiny_folder), "--revision", "v2", *arguments]) == 1
    assert "revision 'v2' applies to a Hub dataset id" in capsys.readouterr().err
