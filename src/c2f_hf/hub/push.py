"""Hub uploads: `upload_to_hub` is the one function that writes to the Hub; `push_folder` (`c2f-hf push`,
`c2f-hf convert-original --push-to-hub`) uploads an exported model folder with it and `c2f_hf.data.push`
(`c2f-hf data push`) a dataset folder. Each upload is `HfApi.create_repo(exist_ok=True)` and one
`HfApi.create_commit`; the token comes from the usual places (`HF_TOKEN`, `hf auth login`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from fnmatch import fnmatch
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from .export import missing_files

logger = logging.getLogger(__name__)


def upload_to_hub(
    repo_id: str,
    files: Mapping[str, Path | bytes],
    *,
    commit_message: str,
    repo_type: str = "model",
    private: bool = False,
    delete_patterns: Sequence[str] = (),
    api: HfApi | None = None,
) -> str:
    """Create the repo `repo_id` if needed and write `files` (`{path in the repo: local file or contents}`) in one
    commit; return the commit URL.

    The same commit deletes the repo's files that match one of `delete_patterns` (`fnmatch`, e.g.
    `"data/*.parquet"`) and are not in `files`, so an upload can replace an earlier one's shards.
    """
    api = api or HfApi()
    api.create_repo(repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=True)
    operations: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo, content if isinstance(content, bytes) else str(content))
        for path_in_repo, content in files.items()
    ]
    if delete_patterns:
        existing = api.list_repo_files(repo_id=repo_id, repo_type=repo_type)
        operations += [
            CommitOperationDelete(path)
            for path in existing
            if path not in files and any(fnmatch(path, pattern) for pattern in delete_patterns)
        ]
    commit = api.create_commit(
        repo_id=repo_id, repo_type=repo_type, operations=operations, commit_message=commit_message
    )
    return str(getattr(commit, "commit_url", commit))


def folder_files(folder: Path) -> dict[str, Path]:
    """`{path in the repo: file}` of every file under `folder`, hidden ones (`.git/`, `.cache/`) left out."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            files[relative.as_posix()] = path
    return files


def push_folder(
    repo_dir: str | Path,
    repo_id: str,
    private: bool = False,
    commit_message: str = "Upload C2F-Seg model",
    api: HfApi | None = None,
) -> str:
    """Create the model repo `repo_id` if needed and upload `repo_dir` (an exported folder); return the commit URL.

    Raises ValueError when `repo_dir` misses a file an exported repo needs (nothing is uploaded then).
    """
    repo_dir = Path(repo_dir)
    if not repo_dir.is_dir():
        raise ValueError(f"REPO_DIR: {repo_dir} is not a folder")
    missing = missing_files(repo_dir)
    if missing:
        raise ValueError(f"REPO_DIR: {repo_dir} is not an exported repo, it lacks {missing}; run c2f-hf export first")
    if repo_id not in (repo_dir / "README.md").read_text(encoding="utf-8"):
        logger.warning("README.md's snippets do not load from %r: re-export with --repo-id %s", repo_id, repo_id)
    return upload_to_hub(repo_id, folder_files(repo_dir), commit_message=commit_message, private=private, api=api)


__all__ = ["folder_files", "push_folder", "upload_to_hub"]
