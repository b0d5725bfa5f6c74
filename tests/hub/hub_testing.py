"""Helpers of the Hub tests."""

import re
from pathlib import Path

import yaml

TRAINING_COMMAND = "c2f-hf train --preset tiny --dataset data/synthetic --output-dir runs/tiny"
EVALUATION_COMMAND = "c2f-hf evaluate --model runs/tiny/final --dataset data/synthetic --split test --out eval"


def front_matter(readme: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", readme, re.DOTALL)
    assert match, "README.md must start with YAML front matter"
    return yaml.safe_load(match.group(1))


def python_blocks(readme: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme, re.DOTALL)


class RecordingHfApi:
    """Stands in for `HfApi` (the Hub is unreachable here): records the calls and what the folder holds."""

    calls: list = []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def upload_folder(self, **kwargs):
        files = sorted(path.name for path in Path(kwargs["folder_path"]).iterdir())
        self.calls.append(("upload_folder", {**kwargs, "files": files}))
        return type("Commit", (), {"commit_url": f"https://hub.invalid/{kwargs['repo_id']}/commit/1"})()
