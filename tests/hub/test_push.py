"""`c2f-hf push`."""

import pytest

from c2f_hf.cli import main
from c2f_hf.hub import export as hub
from c2f_hf.hub import push
from hub_testing import RecordingHfApi


def test_push_creates_the_repo_and_uploads_the_whole_folder(exported, monkeypatch, capsys):
    RecordingHfApi.calls = []
    monkeypatch.setattr(push, "HfApi", RecordingHfApi)
    assert main(["push", str(exported), "--repo-id", "someone/c2f-seg", "--private", "--commit-message", "v1"]) == 0
    (create_name, create), (upload_name, upload) = RecordingHfApi.calls
    assert create_name == "create_repo" and upload_name == "upload_folder"
    assert create == {"repo_id": "someone/c2f-seg", "repo_type": "model", "private": True, "exist_ok": True}
    assert upload["repo_id"] == "someone/c2f-seg" and upload["folder_path"] == str(exported)
    assert upload["commit_message"] == "v1"
    assert set(upload["files"]) == {*hub.REQUIRED_FILES, "model.safetensors"}
    assert "someone/c2f-seg/commit/1" in capsys.readouterr().out


def test_push_refuses_an_incomplete_folder(exported, tmp_path, monkeypatch):
    RecordingHfApi.calls = []
    monkeypatch.setattr(push, "HfApi", RecordingHfApi)
    partial = tmp_path / "partial"
    partial.mkdir()
    for path in exported.iterdir():
        if path.name != "modeling_c2f_seg.py":
            (partial / path.name).write_bytes(path.read_bytes())
    with pytest.raises(SystemExit, match="modeling_c2f_seg.py"):
        main(["push", str(partial), "--repo-id", "someone/c2f-seg"])
    assert RecordingHfApi.calls == []
