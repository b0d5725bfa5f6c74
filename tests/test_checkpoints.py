"""The shipped checkpoints' folders and the SHA-256 check of every file in them, on every path that loads them."""

import shutil

import pytest
from transformers import pipeline

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.checkpoints import (
    DEFAULT_MODEL_NAME,
    DEFAULT_VIDEO_MODEL_NAME,
    SHIPPED_SHA256,
    _shipped,
    default_model_path,
    default_video_model_path,
    folder_digests,
    shipped_folder,
    verify_model_folder,
)


@pytest.fixture
def default_copy(tmp_path):
    copy = tmp_path / DEFAULT_MODEL_NAME
    shutil.copytree(default_model_path(), copy)
    return copy


@pytest.fixture
def damaged_digest_table(monkeypatch):
    """The recorded digests with the default model's config.json recorded as something else: the installed file
    then reads as damaged, without touching the installed folder others use."""
    digests = {**SHIPPED_SHA256[DEFAULT_MODEL_NAME], "config.json": "0" * 64}
    monkeypatch.setitem(SHIPPED_SHA256, DEFAULT_MODEL_NAME, digests)
    _shipped.cache_clear()
    yield
    _shipped.cache_clear()


def test_every_file_of_the_shipped_folders_is_recorded():
    for path in (default_model_path(), default_video_model_path()):
        assert folder_digests(path) == SHIPPED_SHA256[path.name]
        assert set(SHIPPED_SHA256[path.name]) == {
            "README.md",
            "config.json",
            "model.safetensors",
            "preprocessor_config.json",
        }


def test_a_changed_weights_file_is_refused_with_both_digests(default_copy):
    with (default_copy / "model.safetensors").open("r+b") as stream:
        stream.seek(-1, 2)
        last = stream.read(1)
        stream.seek(-1, 2)
        stream.write(bytes([last[0] ^ 1]))
    expected = SHIPPED_SHA256[DEFAULT_MODEL_NAME]["model.safetensors"]
    with pytest.raises(
        ValueError, match=rf"model.safetensors: SHA-256 [0-9a-f]{{64}} is not the shipped file's {expected}"
    ):
        verify_model_folder(default_copy, SHIPPED_SHA256[DEFAULT_MODEL_NAME])


@pytest.mark.parametrize("name", ["config.json", "preprocessor_config.json", "README.md"])
def test_a_changed_config_or_card_is_refused(default_copy, name):
    with (default_copy / name).open("a") as stream:
        stream.write("\n")
    with pytest.raises(ValueError, match=rf"{name}: SHA-256 [0-9a-f]{{64}} is not the shipped file's"):
        verify_model_folder(default_copy, SHIPPED_SHA256[DEFAULT_MODEL_NAME])


def test_missing_and_extra_files_are_named(default_copy, tmp_path):
    (default_copy / "notes.txt").write_text("extra")
    with pytest.raises(ValueError, match="holds files it was not shipped with: notes.txt"):
        verify_model_folder(default_copy, SHIPPED_SHA256[DEFAULT_MODEL_NAME])
    (default_copy / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        verify_model_folder(default_copy, SHIPPED_SHA256[DEFAULT_MODEL_NAME])
    with pytest.raises(FileNotFoundError, match="is missing"):
        verify_model_folder(tmp_path / "absent", SHIPPED_SHA256[DEFAULT_MODEL_NAME])


@pytest.mark.usefixtures("damaged_digest_table")
def test_every_load_path_of_a_shipped_folder_checks_its_digests():
    message = r"config\.json: SHA-256 [0-9a-f]{64} is not the shipped file's 0{64}"
    with pytest.raises(ValueError, match=message):
        default_model_path()
    with pytest.raises(ValueError, match=message):
        C2FSegForAmodalSegmentation.from_pretrained(shipped_folder(DEFAULT_MODEL_NAME))
    with pytest.raises(ValueError, match=message):
        pipeline("amodal-segmentation", trust_remote_code=False)


def test_other_folders_and_the_intact_video_model_load(default_copy):
    assert isinstance(C2FSegForAmodalSegmentation.from_pretrained(default_copy), C2FSegForAmodalSegmentation)
    assert default_video_model_path() == shipped_folder(DEFAULT_VIDEO_MODEL_NAME)
