"""Hub upload (`c2f-hf push`): `push_folder` uploads an exported folder with `HfApi.create_repo(exist_ok=True)` and
`HfApi.upload_folder`; the token comes from the usual places (`HF_TOKEN`, `hf auth login`)."""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import HfApi

from .export import missing_files

logger = logging.getLogger(__name__)


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
    api = api or HfApi()
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(repo_dir), repo_id=repo_id, repo_type="model", commit_message=commit_message
    )
    return str(getattr(commit, "commit_url", commit))


__all__ = ["push_folder"]
