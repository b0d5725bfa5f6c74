"""Dataset card metadata: licence terms per source, size buckets, tasks, data files, snippets, conversion options."""

import pytest
import yaml

from c2f_hf.data.cards import DATASET_ID_PLACEHOLDER, SOURCES, build_dataset_card, size_category
from c2f_hf.data.registry import CONVERTERS
from c2f_hf.data.schema import image_features, video_features


def front_matter(readme: str) -> dict:
    return yaml.safe_load(readme.split("---\n")[1])


@pytest.mark.parametrize(
    ("num_rows", "bucket"),
    [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (14_000, "10K<n<100K"), (250_000, "100K<n<1M")],
)
def test_size_category_uses_the_hub_buckets(num_rows, bucket):
    assert size_category(num_rows) == bucket


def test_every_converter_and_the_generator_have_terms():
    assert set(SOURCES) == {*CONVERTERS, "synthetic"}
    for terms in SOURCES.values():
        assert (terms.license == "other") == (terms.license_name is not None) == (terms.license_link is not None)


@pytest.mark.parametrize(
    ("source", "license_name", "links"),
    [
        ("kins", "kins-kitti-terms", ["github.com/qqlu/Amodal-Instance-Segmentation", "www.cvlibs.net/datasets/kitti"]),
        ("cocoa", "cocoa-coco-terms", ["github.com/Wakeupbuddy/amodalAPI", "cocodataset.org/#termsofuse"]),
        ("fishbowl", "fishbowl-terms", ["github.com/amazon-science/c2f-seg"]),
        ("movid_a", "movid-a-terms", ["github.com/amazon-science/c2f-seg"]),
    ],
)
def test_released_data_keeps_the_original_terms(source, license_name, links):
    features = video_features() if source in ("fishbowl", "movid_a") else image_features(True)
    readme = str(build_dataset_card(source, features, {"train": 1200, "test": 30}, f"c2f-hf data convert {source}"))
    data = front_matter(readme)
    assert data["license"] == "other" and data["license_name"] == license_name
    assert links[0] in data["license_link"]
    licence_section = readme.split("## Licence")[1]
    assert "see the original release" in licence_section and all(link in licence_section for link in links)
    assert data["size_categories"] == ["1K<n<10K"]


def test_card_front_matter_names_tasks_and_data_files_and_the_body_loads_them():
    card = build_dataset_card("synthetic", image_features(), {"train": 3, "test": 2}, "c2f-hf data synthetic")
    readme = str(card)
    data = front_matter(readme)
    assert data["license"] == "apache-2.0" and "license_name" not in data
    assert data["task_categories"] == ["image-segmentation"] and data["task_ids"] == ["instance-segmentation"]
    assert data["size_categories"] == ["n<1K"]
    assert data["configs"] == [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": "train.parquet"}, {"split": "test", "path": "test.parquet"}],
        }
    ]
    assert f'load_dataset("{DATASET_ID_PLACEHOLDER}", split="train")' in readme
    assert f'load_amodal_dataset("{DATASET_ID_PLACEHOLDER}", "train")' in readme
    assert "## Conversion options" not in readme


def test_conversion_options_are_stated():
    conversion = {"ground truth": "as released", "stuff regions": "excluded"}
    card = build_dataset_card("cocoa", image_features(), {"test": 5}, "c2f-hf data convert", conversion=conversion)
    section = str(card).split("## Conversion options")[1]
    assert "| ground truth | as released |" in section and "| stuff regions | excluded |" in section
