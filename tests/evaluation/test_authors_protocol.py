"""`c2f-hf evaluate` on KINS converted from the authors' detection pickles scores exactly the authors' object set."""

import json

from authors_layouts import write_kins_release
from c2f_hf.cli import main
from c2f_hf.evaluation import EvaluationResults
from c2f_testing import save_tiny_model


def test_evaluate_counts_every_listed_detection_and_nothing_else(tmp_path):
    write_kins_release(tmp_path / "kins")
    converted = tmp_path / "kins-c2f"
    assert main(["data", "convert", "kins", "--root", str(tmp_path / "kins"), "--out", str(converted)]) == 0
    model = save_tiny_model(tmp_path / "model")
    out = tmp_path / "report"
    arguments = ["--model", str(model), "--dataset", str(converted), "--visible-source", "predicted", "--out", str(out)]
    assert main(["evaluate", *arguments]) == 0
    results = EvaluationResults.from_dict(json.loads((out / "metrics.json").read_text()))
    listed = (tmp_path / "kins" / "kins_intersection_list.txt").read_text().split()
    assert results.num_objects_added == results.num_objects_counted == len(listed) == 3
