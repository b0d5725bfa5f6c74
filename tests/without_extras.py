"""A subprocess runner in which the packages of the extras cannot be imported, as in a core install.

`sys.meta_path` gets wrapped before anything else is imported: every finder answers "no such module" for the
blocked top-level names, as when the package is not installed (`importlib.util.find_spec` returns None, so
libraries that probe for optional packages, as transformers does, see them as absent rather than failing).
`yaml` is not blocked: huggingface_hub and transformers require PyYAML, so a core install always has it.
"""

import os
import subprocess
from pathlib import Path

from c2f_testing import run_python

BLOCKED_MODULES = ("accelerate", "datasets", "gradio", "jinja2", "pyarrow", "pycocotools", "scipy", "torchvision")

_BLOCK_EXTRAS = f"""
import sys

BLOCKED_MODULES = {BLOCKED_MODULES!r}


class _Hiding:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED_MODULES:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)


sys.meta_path[:] = [_Hiding(finder) for finder in sys.meta_path]
try:
    import accelerate  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("the blocked modules must not be importable here")
"""


def run_without_extras(script: str, working_directory: Path) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python where `BLOCKED_MODULES` cannot be imported (`BLOCKED_MODULES` is defined in
    it), offline and without stdin."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")
    return run_python(_BLOCK_EXTRAS + script, working_directory, environment)
