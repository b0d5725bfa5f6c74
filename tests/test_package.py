"""The install is lean: the core dependencies are what inference needs, each command family's extra covers what
its modules import, and a core install loads the shipped model, segments an image and runs `c2f-hf demo`."""

import ast
import json
import sys
from functools import cache
from pathlib import Path

import tomllib

from c2f_hf.cli import COMMANDS
from without_extras import run_without_extras

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Import names whose distribution is named otherwise.
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml"}
# Calls that make huggingface_hub import a package at run time: `RepoCard.from_template` renders with jinja2.
INDIRECT_IMPORTS = {"from_template": "jinja2"}
# The extra of each command family's folder; every other module is core.
FAMILY_EXTRAS = {"data": "data", "evaluation": "data", "training": "train", "hub": "hub"}
# Modules of those folders that the core install runs: `c2f-hf demo` draws synthetic scenes and scores them, and
# importing a module first runs its package's `__init__`.
CORE_MODULES_OF_FAMILIES = {"c2f_hf.data", "c2f_hf.data.synthetic", "c2f_hf.evaluation", "c2f_hf.evaluation.metrics"}


def distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement string or of an import name."""
    name = requirement.split(";")[0]
    for separator in "<>=!~[ ":
        name = name.split(separator)[0]
    return DISTRIBUTIONS.get(name, name).lower().replace("-", "_")


def requirements(extra: str | None = None) -> set[str]:
    """The distributions of the core install (`extra` None) or of one extra, self-references (`c2f_hf[data]`)
    resolved."""
    names = set()
    for requirement in PROJECT["optional-dependencies"][extra] if extra else PROJECT["dependencies"]:
        if distribution(requirement) == "c2f_hf":
            for included in requirement.split("[")[1].rstrip("]").split(","):
                names |= requirements(included.strip())
        else:
            names.add(distribution(requirement))
    return names


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in (SOURCE / "c2f_hf").rglob("*.py"):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


@cache
def lazy_exports(package: str) -> dict[str, str]:
    """`{name: submodule}` of a package whose `__init__` resolves names lazily (`c2f_hf.lazy_exports`)."""
    for node in ast.walk(ast.parse(MODULES[package].read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports":
            exports = ast.literal_eval(node.args[1])
            return {name: f"{package}.{submodule}" for submodule, names in exports.items() for name in names}
    return {}


def _imported_names(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names `node` imports: a `from X import Y` may import the submodule X.Y, or the submodule that
    defines Y when X's `__init__` exports it lazily."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    lazy = lazy_exports(base) if base in MODULES else {}
    return [base] + [lazy.get(alias.name, f"{base}.{alias.name}") for alias in node.names]


def direct_imports(module: str) -> tuple[set[str], set[str]]:
    """(modules of the package, third-party distributions) that `module` imports anywhere in its code, with
    the packages whose `__init__` an import runs."""
    own, third_party = set(), set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Attribute) and node.attr in INDIRECT_IMPORTS:
            third_party.add(INDIRECT_IMPORTS[node.attr])
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for name in _imported_names(module, node):
            top = name.split(".")[0]
            if top == "c2f_hf":
                parts = name.split(".")
                own |= {".".join(parts[:end]) for end in range(1, len(parts) + 1)} & MODULES.keys()
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(distribution(top))
    return own - {module}, third_party


@cache
def third_party_closure(module: str) -> frozenset[str]:
    """The distributions that importing and running `module` can import, through every module of the package it
    imports."""
    seen, pending, distributions = {module}, [module], set()
    while pending:
        own, third_party = direct_imports(pending.pop())
        distributions |= third_party
        pending += sorted(own - seen)
        seen |= own
    return frozenset(distributions)


def family_extra(module: str) -> str | None:
    """The extra `module` may use: its command family's, or None (core)."""
    parts = module.split(".")
    if module in CORE_MODULES_OF_FAMILIES or len(parts) < 3:
        return None
    return FAMILY_EXTRAS.get(parts[1])


def uncovered(module: str) -> set[str]:
    """What `module` imports (transitively) that neither the core install nor its family's extra declares."""
    extra = family_extra(module)
    declared = requirements() | (requirements(extra) if extra else set())
    return set(third_party_closure(module)) - declared - {"c2f_hf"}


def test_core_is_what_inference_needs():
    assert requirements() == {"torch", "transformers", "huggingface_hub", "safetensors", "numpy", "pillow"}


def test_the_inference_path_imports_only_core_dependencies():
    core = [module for module in MODULES if family_extra(module) is None]
    assert {"c2f_hf", "c2f_hf.models.c2f_seg", "c2f_hf.checkpoints", "c2f_hf.visualization", "c2f_hf.demo"} <= set(core)
    assert {module: uncovered(module) for module in core if uncovered(module)} == {}


def test_every_other_module_is_covered_by_the_extra_of_its_command_family():
    families = [module for module in MODULES if family_extra(module) is not None]
    assert {module.split(".")[1] for module in families} == FAMILY_EXTRAS.keys()
    assert {module: uncovered(module) for module in families if uncovered(module)} == {}


def test_each_command_needs_the_extra_of_its_module_family():
    for command in COMMANDS:
        assert command.extra == family_extra(command.module), command.name
        assert uncovered(command.module) == set(), command.name


def test_the_extras():
    extras = PROJECT["optional-dependencies"]
    assert {"data", "train", "hub", "demo", "tensorboard", "dev"} <= extras.keys()
    assert "accelerate" in requirements("train") and requirements("data") <= requirements("train")
    assert "gradio" in requirements("demo") and "gradio" not in requirements()
    assert requirements("sam2") == {"torchvision"}, "SAM 2's processors need torchvision; nothing else needs it"
    development = requirements("dev")
    assert {"pytest", "ruff"} <= development
    for extra in extras:
        assert requirements(extra) <= development, extra


def test_the_declared_transformers_minimum_is_the_one_the_model_cards_name():
    from c2f_hf.hub.cards import MIN_TRANSFORMERS

    assert f"transformers>={MIN_TRANSFORMERS}" in PROJECT["dependencies"]


CORE_INSTALL_SCRIPT = """
import json
import sys

import numpy as np
import c2f_hf
from transformers import pipeline

from c2f_hf.cli import main

segmenter = pipeline("amodal-segmentation")
image = np.full((96, 128, 3), 200, dtype=np.uint8)
image[20:70, 30:90] = (30, 120, 200)
visible = np.zeros((96, 128), dtype=bool)
visible[20:70, 30:60] = True
(result,) = segmenter(image, visible_masks=[visible], seed=0, union_with_visible=True)
amodal = np.asarray(result["amodal_mask"]) > 0
occluded = np.asarray(result["occluded_mask"]) > 0
status = main(["demo", "--out", "demo"])
print(json.dumps({
    "shape": list(amodal.shape),
    "holds_visible": bool(amodal[visible].all()),
    "occluded_is_the_rest": bool((occluded == (amodal & ~visible)).all()),
    "demo_status": status,
    "imported": sorted({name.split(".")[0] for name in sys.modules} & set(BLOCKED_MODULES)),
}))
"""


def test_a_core_install_segments_with_the_shipped_model_and_runs_the_demo(tmp_path):
    result = run_without_extras(CORE_INSTALL_SCRIPT, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "shape": [96, 128],
        "holds_visible": True,
        "occluded_is_the_rest": True,
        "demo_status": 0,
        "imported": [],
    }
    assert {path.name for path in (tmp_path / "demo").iterdir()} == {"demo.png", "scene.png", "results.json"}
