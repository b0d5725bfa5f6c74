"""The Space as it is deployed: its README against the card builder, requirements.txt against what the Space
imports, and the folder spaces_demo/build_space.py writes."""

import ast
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import gradio as gr
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from build_space import space_modules
from c2f_hf.hub.cards import build_space_card
from spaces_demo_testing import DEMO_DIR

ROOT = DEMO_DIR.parent
PACKAGE_ROOT = ROOT / "src"
SPACE_MODULES = {
    "app.py",
    "editor.py",
    "image_tab.py",
    "page.py",
    "sam_prompts.py",
    "segmenters.py",
    "video_inputs.py",
    "video_tab.py",
}


def is_import_call(node: ast.AST) -> bool:
    """Whether `node` is `importlib.import_module("name")` (or `import_module("name")`) with a literal name."""
    if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
        return False
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
    return name == "import_module" and isinstance(node.args[0].value, str)


def imported_modules(path: Path, module: str) -> set[str]:
    """The dotted names module `module` (file `path`) imports anywhere in its code, relative imports resolved;
    `from X import Y` gives X and X.Y (Y may be a module); `importlib.import_module("X")` with a literal name (as
    the SAM 2 sources import torchvision, which transformers' SAM 2 processors need) gives X."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if is_import_call(node):
            names.add(node.args[0].value)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def package_file(module: str) -> Path | None:
    """The file of `c2f_hf` module `module` in src/, or None when it names no module (a class, a function)."""
    path = PACKAGE_ROOT.joinpath(*module.split("."))
    return next((file for file in (path / "__init__.py", path.with_suffix(".py")) if file.is_file()), None)


def third_party_imports() -> set[str]:
    """Top-level names of what the Space imports at run time, outside the standard library: its modules' imports
    and, through every `c2f_hf` module they reach, the package's."""
    found = {name for path in space_modules() for name in imported_modules(path, path.stem)}
    pending, seen = [name for name in found if name.split(".")[0] == "c2f_hf"], set()
    while pending:
        module = pending.pop()
        path = package_file(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        for name in imported_modules(path, module):
            found.add(name)
            if name.split(".")[0] == "c2f_hf":
                pending.append(name)
    local = {path.stem for path in space_modules()} | {"c2f_hf"}
    return {name.split(".")[0] for name in found} - local - set(sys.stdlib_module_names)


def requirements_by_name(lines: list[str]) -> dict[str, Requirement]:
    """Normalised distribution name -> requirement, for the requirement lines among `lines` (not comments)."""
    requirements = [Requirement(line) for line in map(str.strip, lines) if line[:1].isalnum()]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def test_space_readme_front_matter_matches_the_card_builder():
    readme = (DEMO_DIR / "README.md").read_text()
    front_matter = yaml.safe_load(readme.split("---\n")[1])
    assert front_matter["sdk"] == "gradio" and front_matter["app_file"] == "app.py"
    assert front_matter["sdk_version"].split(".")[0] == gr.__version__.split(".")[0]
    assert 0 < len(front_matter["short_description"]) <= 60
    assert set(front_matter["preload_from_hub"]) == set(front_matter["models"])
    card = build_space_card(
        front_matter["title"],
        front_matter["models"],
        front_matter["sdk_version"],
        front_matter["short_description"],
        front_matter["preload_from_hub"],
    )
    assert readme.strip() == str(card).strip()
    for variable in ("C2F_HF_MODEL", "C2F_HF_SAM_MODEL", "C2F_HF_VIDEO_MODEL", "C2F_HF_SAM2_MODEL"):
        assert variable in readme


def test_requirements_name_what_the_space_imports_and_the_packages_core_dependencies_with_their_pins():
    requirements = requirements_by_name((DEMO_DIR / "requirements.txt").read_text().splitlines())
    core = requirements_by_name(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    imported = third_party_imports()
    assert "gradio" in imported, "gradio comes from the README's sdk_version, not from requirements.txt"
    distributions = {canonicalize_name(packages_distributions()[name][0]) for name in imported - {"gradio"}}
    assert set(requirements) == distributions | set(core), (sorted(requirements), sorted(distributions), sorted(core))
    assert all(requirements[name].specifier == core[name].specifier for name in core)


def test_the_built_space_holds_every_module_and_imports_its_own_package(tmp_path):
    subprocess.run([sys.executable, str(DEMO_DIR / "build_space.py"), str(tmp_path / "space")], check=True)
    space = tmp_path / "space"
    assert {path.name for path in space.glob("*.py")} == SPACE_MODULES
    assert {path.name for path in space_modules()} == SPACE_MODULES
    assert {"README.md", "requirements.txt", "examples", "c2f_hf"} <= {path.name for path in space.iterdir()}
    assert (space / "c2f_hf" / "models" / "c2f_seg" / "pipeline_video_amodal_segmentation.py").is_file()
    assert not list(space.rglob("__pycache__"))
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import app, c2f_hf, c2f_hf.checkpoints as c, image_tab as i, video_tab as v;"
            "print(c2f_hf.__file__, c.default_video_model_path(), app.__file__, i.__file__, v.__file__)",
        ],
        cwd=space,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(found) == 5 and all(Path(path).is_relative_to(space) for path in found), found
