"""Helpers of the Hub tests."""

import re

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
    """Stands in for `HfApi` (the Hub is unreachable here): records the calls, each commit with the sorted `paths`
    it writes and `sources`, `{path in the repo: local file}`."""

    calls: list = []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def create_commit(self, **kwargs):
        sources = {operation.path_in_repo: operation.path_or_fileobj for operation in kwargs["operations"]}
        self.calls.append(("create_commit", {**kwargs, "paths": sorted(sources), "sources": sources}))
        return type("Commit", (), {"commit_url": f"https://hub.invalid/{kwargs['repo_id']}/commit/1"})()
