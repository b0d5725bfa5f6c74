"""The model bundle's import rule: what `c2f-hf export` copies into a Hub repo must import nothing else of ours."""

import ast
import sys
from pathlib import Path

import pytest

from c2f_hf.hub.export import CODE_FILES
from c2f_hf.models import c2f_seg

BUNDLE = Path(c2f_seg.__file__).parent
ALLOWED_PACKAGES = {"torch", "transformers", "huggingface_hub", "safetensors", "numpy", "PIL"}
MODULES = sorted(path.name for path in BUNDLE.glob("*.py"))


def imports_of(path: Path) -> list[tuple[int, str]]:
    """`(level, module)` of every import statement of a file (level 0: absolute)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


@pytest.mark.parametrize("name", MODULES)
def test_bundle_modules_import_only_the_inference_stack_and_each_other(name):
    for level, module in imports_of(BUNDLE / name):
        if level == 0:
            top = module.split(".")[0]
            assert top in sys.stdlib_module_names or top in ALLOWED_PACKAGES, f"{name} imports {module}"
        else:
            assert level == 1 and (BUNDLE / f"{module.split('.')[0]}.py").is_file(), f"{name} imports {module}"


@pytest.mark.parametrize("name", CODE_FILES)
def test_exported_modules_do_not_import_the_conversion_scripts(name):
    assert not any(module.startswith("convert_") for _, module in imports_of(BUNDLE / name)), name


def test_export_copies_every_bundle_module_but_the_package_init_and_the_converters():
    expected = {name for name in MODULES if name != "__init__.py" and not name.startswith("convert_")}
    assert set(CODE_FILES) == expected
    assert {"modeling_c2f_seg.py", "pipeline_amodal_segmentation.py", "mask_geometry.py"} <= expected
