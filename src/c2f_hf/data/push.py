"""`c2f-hf data push`: publish a dataset folder (converted or generated) as a Hub dataset repo with its card.

The repo gets the Hub layout, which the Hub's viewer and `datasets.load_dataset(repo_id)` read: our
`<split>.parquet` becomes `data/<split>-00000-of-00001.parquet`, Hub-layout shards keep their names, and the card's
`configs` front matter lists each split's files. Everything goes up in one commit through
`c2f_hf.hub.push.upload_to_hub` (the upload of `c2f-hf push` too) with `repo_type="dataset"`, and only after every
split has passed the schema checks; the same commit deletes the repo's `data/*.parquet` files that this push does
not write (the shards of an earlier push).
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from huggingface_hub import DatasetCard, HfApi

from ..hub.push import upload_to_hub
from .cards import DATASET_ID_PLACEHOLDER, data_files_config
from .schema import available_splits, check_split_files, is_hub_dataset_id, split_files, split_path

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
# The data files a push replaces: those of an earlier push that this one does not write are deleted.
STALE_DATA_FILES = "data/*.parquet"
# A path flag of a recorded command whose value is absolute (POSIX, home or Windows drive), e.g. `--root /data/kins`.
MACHINE_PATH_FLAG = re.compile(r"--(?:root|out|annotations|predictions)[ =](?:\w+=)?(?:/|~|[A-Za-z]:[\\/])\S*")


def hub_data_files(folder: Path) -> dict[str, dict[str, Path]]:
    """Per split, the repo path of each of its files -> the local file: `<split>.parquet` goes to
    `data/<split>-00000-of-00001.parquet`, a Hub-layout shard keeps its path."""
    layout = {}
    for split in available_splits(folder):
        paths = split_files(folder, split)
        if paths == [split_path(folder, split)]:
            layout[split] = {f"data/{split}-00000-of-00001.parquet": paths[0]}
        else:
            layout[split] = {path.relative_to(folder).as_posix(): path for path in paths}
    return layout


def check_dataset_folder(folder: Path) -> dict[str, dict[str, Path]]:
    """`hub_data_files` of `folder` once it holds a card and at least one split, every split readable with the
    schema (`check_split_files`); ValueError naming the folder or the file at fault otherwise."""
    if not folder.is_dir():
        raise ValueError(f"DIR: {folder} is not a folder")
    if not (folder / CARD_FILE).is_file():
        raise ValueError(f"DIR: {folder} has no {CARD_FILE} dataset card; write it with c2f-hf data convert/synthetic")
    layout = hub_data_files(folder)
    if not layout:
        raise ValueError(
            f"DIR: {folder} holds no split: neither <split>.parquet files nor data/<split>-NNNNN-of-NNNNN.parquet"
        )
    for files in layout.values():
        check_split_files(list(files.values()))
    return layout


def check_card_paths(text: str, folder: Path) -> None:
    """ValueError naming the card when it records an absolute path of this machine (a path flag of the command that
    wrote it, or the folder itself): cards written before `data convert` recorded folders by name would publish
    them."""
    found = MACHINE_PATH_FLAG.search(text)
    absolute = str(folder.resolve())
    if found or absolute in text:
        shown = found.group(0) if found else absolute
        raise ValueError(
            f"DIR: {folder / CARD_FILE} records the machine path {shown!r}; rewrite the card (c2f-hf data convert "
            "records folders by name) or edit it before pushing"
        )


def hub_card(folder: Path, repo_id: str, layout: dict[str, dict[str, Path]]) -> str:
    """The folder's card with `configs` naming the repo's data files and the loading snippets naming `repo_id`;
    ValueError when it records a machine path (`check_card_paths`)."""
    card = DatasetCard.load(folder / CARD_FILE)
    card.data.configs = data_files_config({split: sorted(files) for split, files in layout.items()})
    text = str(card).replace(DATASET_ID_PLACEHOLDER, repo_id)
    check_card_paths(text, folder)
    return text


def push_dataset(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    commit_message: str = "Upload amodal dataset",
    api: HfApi | None = None,
) -> str:
    """Create the dataset repo `repo_id` if needed and upload `folder` in the Hub layout; return the commit URL.

    Raises ValueError when `repo_id` is not `namespace/name`, or the folder lacks its card or a split, or a split
    fails the schema checks (nothing is uploaded then)."""
    folder = Path(folder)
    if not is_hub_dataset_id(repo_id):
        raise ValueError(f"--repo-id: expected a Hub dataset id namespace/name, got {repo_id!r}")
    layout = check_dataset_folder(folder)
    files: dict[str, Path | bytes] = {CARD_FILE: hub_card(folder, repo_id, layout).encode("utf-8")}
    files.update(
        {path_in_repo: path for split_layout in layout.values() for path_in_repo, path in split_layout.items()}
    )
    url = upload_to_hub(
        repo_id,
        files,
        commit_message=commit_message,
        repo_type="dataset",
        private=private,
        delete_patterns=(STALE_DATA_FILES,),
        api=api,
    )
    logger.info("pushed %s to the dataset repo %s", sorted(layout), repo_id)
    return url


def run_push(args: argparse.Namespace) -> int:
    """`c2f-hf data push`: print the commit URL."""
    print(push_dataset(args.folder, args.repo_id, args.private, args.commit_message))
    return 0


def add_push_command(commands: argparse._SubParsersAction) -> None:
    """Add `data push DIR --repo-id ID [--private] [--commit-message MESSAGE]` to the `data` subcommands."""
    push = commands.add_parser(
        "push",
        help="publish a dataset folder on the Hub (Hub layout, with its card)",
        description="Check DIR (a README.md card, every split readable with the schema) and upload it as the Hub "
        "dataset repo ID: <split>.parquet becomes data/<split>-00000-of-00001.parquet and the card's configs list "
        "the files, so load_dataset(ID) and the viewer find the splits.",
    )
    push.add_argument("folder", type=Path, metavar="DIR", help="folder written by c2f-hf data convert/synthetic")
    push.add_argument("--repo-id", required=True, help="Hub dataset id namespace/name (created if needed)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--commit-message", default="Upload amodal dataset")
    push.set_defaults(handler=run_push)


__all__ = ["add_push_command", "push_dataset"]
