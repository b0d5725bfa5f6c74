"""Assemble a folder ready to push as the Hugging Face Space: this folder's app and the modules it imports, README,
requirements and examples, plus a copy of the `c2f_hf` package (its code and shipped models) beside `app.py`.

A Space installs only what `requirements.txt` names, and `c2f_hf` is not on PyPI; a relative path or local wheel
in `requirements.txt` is not guaranteed to resolve, since the Space may install its requirements in a build step
that sees that file only. Shipping the package folder next to `app.py` works whatever the build does: the app's
folder comes first on `sys.path`, so `import c2f_hf` finds the copy, and `requirements.txt` names what the app and
the package's inference path import. The tools that make the Space (this script, `make_examples.py`) stay behind.

    python spaces_demo/build_space.py OUT_DIR && huggingface-cli upload SPACE_ID OUT_DIR --repo-type space
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

SPACE_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = SPACE_DIR.parent / "src" / "c2f_hf"
SPACE_FILES = ("README.md", "requirements.txt")
TOOLS = ("build_space.py", "make_examples.py")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def space_modules() -> list[Path]:
    """The Space's Python modules: `app.py` and the modules it imports, every `.py` file here but the tools."""
    return [path for path in sorted(SPACE_DIR.glob("*.py")) if path.name not in TOOLS]


def build_space(out: Path) -> Path:
    """Write the Space into `out` (replacing a `c2f_hf` and `examples` folder there); returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for path in [*space_modules(), *(SPACE_DIR / name for name in SPACE_FILES)]:
        shutil.copy2(path, out / path.name)
    for source, target in ((SPACE_DIR / "examples", out / "examples"), (PACKAGE_DIR, out / "c2f_hf")):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=IGNORED)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the Space into")
    build_space(parser.parse_args().out)


if __name__ == "__main__":
    main()
