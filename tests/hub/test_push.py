"""`c2f-hf push`."""

from c2f_hf.cli import main
from c2f_hf.hub import export as hub
from c2f_hf.hub import push
from hub_testing import RecordingHfApi


def test_push_creates_the_repo_and_uploads_the_whole_folder(exported, monkeypatch, capsys):
    RecordingHfApi.calls = []
    monkeypatch.setattr(push, "HfApi", RecordingHfApi)
    assert main(["push", str(exported), "--repo-id", "someone/c2f-seg", "--private", "--commit-message", "v1"]) == 0
    (create_name, create), (commit_name, commit) = RecordingHfApi.calls
    assert create_name == "create_repo" and commit_name == "create_commit"
    assert create == {"repo_id": "someone/c2f-seg", "repo_type": "model", "private": True, "exist_ok": True}
    assert commit["repo_id"] == "someone/c2f-seg" and commit["repo_type"] == "model"
    assert commit["commit_message"] == "v1"
    assert set(commit["paths"]) == {*hub.REQUIRED_FILES, "model.safetensors"}
    assert commit["sources"] == {name: str(exported / name) for name in commit["paths"]}
    assert "someone/c2f-seg/commit/1" in capsys.readouterr().out


def test_push_refuses_an_incomplete_folder(exported, tmp_path, monkeypatch, capsys):
    RecordingHfApi.calls = []
    monkeypatch.setattr(push, "HfApi", RecordingHfApi)
    partial = tmp_path / "partial"
    partial.mkdir()
    for path in exported.iterdir():
        if path.name != "modeling_c2f_seg.py":
            (partial / path.name).write_bytes(path.read_bytes())
    assert main(["push", str(partial), "--repo-id", "someone/c2f-seg"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("c2f-hf push: REPO_DIR: ") and "modeling_c2f_seg.py" in line
    assert RecordingHfApi.calls == []
