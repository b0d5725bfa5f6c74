"""`c2f-hf`: every command listed, only the one that runs imported, one error line per failure."""

import json

import pytest

from c2f_hf.cli import COMMANDS, main
from without_extras import run_without_extras

HELP_AND_MISSING_EXTRAS_SCRIPT = """
import contextlib
import io
import json
import sys

from c2f_hf.cli import main

help_text = io.StringIO()
with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
    main(["--help"])
loaded_by_help = sorted(name for name in sys.modules if name.startswith("c2f_hf."))
errors = {}
for command in ("data", "train-vq", "train", "evaluate", "predict", "convert-original", "export", "push"):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main([command, "--help"])
    errors[command] = [status, stderr.getvalue()]
print(json.dumps({"help": help_text.getvalue(), "loaded_by_help": loaded_by_help, "errors": errors}))
"""


@pytest.fixture(scope="module")
def without_extras(tmp_path_factory):
    """`c2f-hf --help`, then each command that needs an extra, in a process where no extra is installed."""
    result = run_without_extras(HELP_AND_MISSING_EXTRAS_SCRIPT, tmp_path_factory.mktemp("cli"))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_help_lists_every_command_without_importing_any_command_module(without_extras):
    listing = " ".join(without_extras["help"].split())
    for command in COMMANDS:
        assert f"{command.name} {command.help}" in listing
    command_packages = ("c2f_hf.data", "c2f_hf.demo", "c2f_hf.evaluation", "c2f_hf.hub", "c2f_hf.training")
    assert "c2f_hf.cli" in without_extras["loaded_by_help"]
    assert [name for name in without_extras["loaded_by_help"] if name.startswith(command_packages)] == []


def test_a_command_whose_extra_is_missing_names_the_extra_in_one_line(without_extras):
    for command in COMMANDS:
        if command.extra is None:
            continue
        status, stderr = without_extras["errors"][command.name]
        prefix = (
            f'c2f-hf {command.name}: this command needs the "{command.extra}" extra: '
            f'pip install "c2f_hf[{command.extra}]" (missing module: '
        )
        assert status == 1 and stderr.count("\n") == 1 and stderr.startswith(prefix), stderr


def test_a_command_help_shows_its_own_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--help"])
    assert exit_.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "--visible-source" in help_text and "score a model against the visible and convex-hull baselines" in help_text
    )


def test_an_error_is_one_line_and_verbose_shows_the_traceback(tmp_path, capsys):
    arguments = ["export", str(tmp_path), "--out", str(tmp_path / "repo")]
    assert main(arguments) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"c2f-hf export: MODEL_DIR: {tmp_path} is not a save_pretrained folder (it has no config.json)"
    )
    with pytest.raises(ValueError, match="it has no config.json"):
        main(["--verbose", *arguments])
