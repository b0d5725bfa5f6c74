"""The shipped checkpoints' folders and the SHA-256 check of their weights."""

import shutil

import pytest

from c2f_hf.checkpoints import (
    DEFAULT_MODEL_NAME,
    SHIPPED_WEIGHTS_SHA256,
    default_model_path,
    default_video_model_path,
    file_sha256,
    verify_model_folder,
)


def test_shipped_folders_are_verified_against_their_digests():
    for path in (default_model_path(), default_video_model_path()):
        assert file_sha256(path / "model.safetensors") == SHIPPED_WEIGHTS_SHA256[path.name]


def test_a_changed_weights_file_is_refused_with_both_digests(tmp_path):
    copy = tmp_path / DEFAULT_MODEL_NAME
    shutil.copytree(default_model_path(), copy)
    with (copy / "model.safetensors").open("r+b") as stream:
        stream.seek(-1, 2)
        last = stream.read(1)
        stream.seek(-1, 2)
        stream.write(bytes([last[0] ^ 1]))
    expected = SHIPPED_WEIGHTS_SHA256[DEFAULT_MODEL_NAME]
    with pytest.raises(
        ValueError, match=rf"model.safetensors: SHA-256 [0-9a-f]{{64}} is not the shipped weights' {expected}"
    ):
        verify_model_folder(copy, expected)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        verify_model_folder(tmp_path, "0" * 64)
    shutil.copy(default_model_path() / "config.json", tmp_path)
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        verify_model_folder(tmp_path, "0" * 64)
