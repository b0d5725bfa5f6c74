"""The Hub as local folders, for the dataset push and Hub-id tests (the Hub is unreachable here)."""

import shutil
from pathlib import Path

from datasets.data_files import DataFilesDict
from datasets.packaged_modules.parquet.parquet import Parquet
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from c2f_hf.data.schema import image_features, scene_to_row, split_files, write_split

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class LocalHubApi(HfApi):
    """An `HfApi` whose repos are folders `root/<namespace>/<name>`: `create_repo`, `list_repo_files` and
    `create_commit` act on them as the Hub would on a repo, and each call is recorded in `calls`."""

    def __init__(self, root: Path):
        super().__init__(token=False)
        self.root = root
        self.calls: list[tuple[str, dict]] = []

    def repo_folder(self, repo_id: str) -> Path:
        return self.root / repo_id

    def create_repo(self, repo_id, *, repo_type=None, private=False, exist_ok=False, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, "repo_type": repo_type, "private": private}))
        self.repo_folder(repo_id).mkdir(parents=True, exist_ok=exist_ok)

    def list_repo_files(self, repo_id, *, repo_type=None, **kwargs):
        folder = self.repo_folder(repo_id)
        return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())

    def create_commit(self, repo_id, operations, *, commit_message, repo_type=None, **kwargs):
        folder = self.repo_folder(repo_id)
        for operation in operations:
            target = folder / operation.path_in_repo
            if isinstance(operation, CommitOperationDelete):
                target.unlink()
            elif isinstance(operation, CommitOperationAdd):
                target.parent.mkdir(parents=True, exist_ok=True)
                with operation.as_file() as source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
        paths = [operation.path_in_repo for operation in operations]
        kinds = [type(operation).__name__ for operation in operations]
        self.calls.append(
            (
                "create_commit",
                {
                    "repo_id": repo_id,
                    "repo_type": repo_type,
                    "paths": paths,
                    "kinds": kinds,
                    "commit_message": commit_message,
                },
            )
        )
        return type("Commit", (), {"commit_url": f"https://hub.invalid/datasets/{repo_id}/commit/1"})()


def cache_hub_dataset(repo_folder: Path, repo_id: str, splits: list[str], cache_dir: Path) -> None:
    """Fill the `datasets` cache with Hub dataset `repo_id` as an online `load_dataset(repo_id)` leaves it
    (`<cache>/<namespace>___<name>/default/0.0.0/<commit>`), read from `repo_folder` in the Hub layout, so that
    with `HF_HUB_OFFLINE` the id resolves from the cache."""
    namespace, name = repo_id.split("/")
    builder = Parquet(cache_dir=str(cache_dir), repo_id=repo_id, dataset_name=name, config_name="default", hash=COMMIT)
    files = {split: [str(path) for path in split_files(repo_folder, split)] for split in splits}
    builder.config.data_files = DataFilesDict.from_local_or_remote(files, base_path=str(repo_folder))
    builder.download_and_prepare()


def write_shards(scenes: list, folder: Path, split: str, num_shards: int) -> list[Path]:
    """`scenes` in order as `num_shards` Hub-layout shards `folder/data/<split>-0000i-of-0000N.parquet`."""
    bounds = [round(index * len(scenes) / num_shards) for index in range(num_shards + 1)]
    paths = []
    for index, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        path = folder / "data" / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        rows = (scene_to_row(scenes[number], f"{split}-{number}") for number in range(start, stop))
        write_split(rows, image_features(), path)
        paths.append(path)
    return paths
