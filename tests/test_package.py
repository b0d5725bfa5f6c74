"""The install is lean and declares what the package imports."""

import ast
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "c2f_hf"
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "huggingface_hub": "huggingface_hub"}


def core_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["dependencies"]:
        name = requirement.split(";")[0]
        for separator in "<>=!~[ ":
            name = name.split(separator)[0]
        names.add(name.lower().replace("-", "_"))
    return names


def third_party_imports() -> set[str]:
    modules = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {module for module in modules if module not in sys.stdlib_module_names and module != "c2f_hf"}


def test_importing_the_package_does_not_import_gradio():
    script = "import sys, c2f_hf, c2f_hf.hub, c2f_hf.evaluation, c2f_hf.cli; print('gradio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.strip() == "False"


def test_converting_the_authors_weights_does_not_import_the_evaluation_stack():
    script = (
        "import sys, c2f_hf.convert_original_checkpoint; print(sorted({'datasets', 'pycocotools'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.strip() == "[]"


def test_gradio_is_an_extra_and_every_import_is_a_core_dependency():
    dependencies = core_dependencies()
    assert "gradio" not in dependencies
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("gradio") for requirement in extras["demo"])
    missing = {
        module for module in third_party_imports() if DISTRIBUTIONS.get(module, module).lower() not in dependencies
    }
    assert missing == set()


def test_the_declared_transformers_minimum_is_the_one_the_model_cards_name():
    from c2f_hf.hub.cards import MIN_TRANSFORMERS

    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"transformers>={MIN_TRANSFORMERS}" in requirements
