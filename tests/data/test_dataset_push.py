"""`c2f-hf data push` against a local stand-in of the Hub (`local_hub.LocalHubApi`)."""

import datasets
import huggingface_hub.constants
import pytest
import yaml

from c2f_hf.cli import main
from c2f_hf.data import push
from c2f_hf.data.cards import DATASET_ID_PLACEHOLDER, build_dataset_card
from c2f_hf.data.schema import image_features, load_amodal_dataset
from c2f_hf.data.synthetic import generate_scenes
from c2f_hf.hub import push as hub_push
from local_hub import LocalHubApi, cache_hub_dataset, write_shards


def arrow_rows(dataset: datasets.Dataset) -> list[dict]:
    return dataset.with_format("arrow")[:].to_pylist()


def front_matter(readme: str) -> dict:
    return yaml.safe_load(readme.split("---\n")[1])


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory):
    """`c2f-hf data synthetic` output: train (3 rows), test (2 rows), README.md."""
    folder = tmp_path_factory.mktemp("synthetic")
    main(["data", "synthetic", "--out", str(folder), "--num-train", "3", "--num-test", "2", "--size", "64"])
    return folder


@pytest.fixture
def hub(tmp_path, monkeypatch):
    api = LocalHubApi(tmp_path / "hub")
    monkeypatch.setattr(hub_push, "HfApi", lambda: api)
    return api


def test_push_uploads_the_hub_layout_that_load_dataset_reads(synthetic_folder, hub, tmp_path, capsys, monkeypatch):
    command = ["data", "push", str(synthetic_folder), "--repo-id", "someone/shapes", "--private"]
    assert main([*command, "--commit-message", "v1"]) == 0
    assert "hub.invalid/datasets/someone/shapes/commit/1" in capsys.readouterr().out
    (create_name, create), (commit_name, commit) = hub.calls
    assert (create_name, commit_name) == ("create_repo", "create_commit")
    assert create == {"repo_id": "someone/shapes", "repo_type": "dataset", "private": True}
    assert commit["repo_type"] == "dataset" and commit["commit_message"] == "v1"
    shards = ["data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]
    assert sorted(commit["paths"]) == ["README.md", *shards]

    repo = hub.repo_folder("someone/shapes")
    readme = (repo / "README.md").read_text()
    (config,) = front_matter(readme)["configs"]
    assert config["data_files"] == [{"split": "test", "path": [shards[0]]}, {"split": "train", "path": [shards[1]]}]
    assert 'load_dataset("someone/shapes", split="train")' in readme and DATASET_ID_PLACEHOLDER not in readme
    for split in ("train", "test"):
        local = load_amodal_dataset(synthetic_folder, split, cache_dir=str(tmp_path / "local"))
        by_card = datasets.load_dataset(str(repo), split=split, cache_dir=str(tmp_path / "by_card"))
        assert arrow_rows(by_card) == arrow_rows(local)
        assert arrow_rows(load_amodal_dataset(repo, split, cache_dir=str(tmp_path / "hub_layout"))) == arrow_rows(local)

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache_hub_dataset(repo, "someone/shapes", ["train", "test"], tmp_path / "cache")
    by_id = load_amodal_dataset("someone/shapes", "test", cache_dir=str(tmp_path / "cache"))
    assert arrow_rows(by_id) == arrow_rows(load_amodal_dataset(synthetic_folder, "test"))


def test_push_keeps_hub_layout_shards_and_removes_stale_ones(tiny_config, hub, tmp_path):
    folder = tmp_path / "sharded"
    write_shards(list(generate_scenes(tiny_config, 3, 4)), folder, "train", num_shards=2)
    build_dataset_card("synthetic", image_features(), {"train": 4}, "c2f-hf data synthetic").save(folder / "README.md")
    stale = hub.repo_folder("someone/sharded") / "data" / "train-00000-of-00003.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier push")

    push.push_dataset(folder, "someone/sharded")
    shards = ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    assert hub.list_repo_files("someone/sharded") == ["README.md", *shards]
    (config,) = front_matter((hub.repo_folder("someone/sharded") / "README.md").read_text())["configs"]
    assert config["data_files"] == [{"split": "train", "path": shards}]
    assert len(datasets.load_dataset(str(hub.repo_folder("someone/sharded")), split="train")) == 4


@pytest.mark.parametrize("problem", ["no-card", "no-split", "broken-split", "bad-id"])
def test_push_refuses_a_folder_that_fails_a_check_and_uploads_nothing(problem, synthetic_folder, hub, tmp_path, capsys):
    folder, repo_id = tmp_path / "dataset", "someone/shapes"
    folder.mkdir()
    (folder / "README.md").write_text((synthetic_folder / "README.md").read_text())
    (folder / "train.parquet").write_bytes((synthetic_folder / "train.parquet").read_bytes())
    if problem == "no-card":
        (folder / "README.md").unlink()
    elif problem == "no-split":
        (folder / "train.parquet").unlink()
    elif problem == "broken-split":
        (folder / "data").mkdir()
        (folder / "data" / "test-00000-of-00001.parquet").write_text("not parquet")
    else:
        repo_id = "shapes-without-namespace"
    assert main(["data", "push", str(folder), "--repo-id", repo_id]) == 1
    expected = {
        "no-card": f"DIR: {folder} has no README.md dataset card",
        "no-split": f"DIR: {folder} holds no split",
        "broken-split": f"{folder / 'data' / 'test-00000-of-00001.parquet'}: is not a readable Parquet file",
        "bad-id": "--repo-id: expected a Hub dataset id namespace/name, got 'shapes-without-namespace'",
    }[problem]
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"c2f-hf data: {expected}")
    assert hub.calls == []


@pytest.mark.parametrize("recorded", ["--root /home/me/kins", "--annotations train=/home/me/a.json", "{folder}"])
def test_push_refuses_a_card_that_records_a_machine_path(synthetic_folder, hub, tmp_path, capsys, recorded):
    folder = tmp_path / "converted"
    folder.mkdir()
    for path in synthetic_folder.glob("*.parquet"):
        (folder / path.name).write_bytes(path.read_bytes())
    card = (synthetic_folder / "README.md").read_text()
    command = f"c2f-hf data convert coco_amodal {recorded.format(folder=folder.resolve())} --out out"
    (folder / "README.md").write_text(card.replace("c2f-hf data synthetic", command, 1))
    assert main(["data", "push", str(folder), "--repo-id", "someone/shapes"]) == 1
    err = capsys.readouterr().err
    assert "README.md records the machine path" in err and len(err.strip().splitlines()) == 1
    assert hub.calls == []
