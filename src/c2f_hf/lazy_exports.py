"""Package `__init__`s that import a submodule only when one of its names is first used.

`c2f_hf.data`, `c2f_hf.evaluation` and `c2f_hf.hub` re-export their submodules' public names, and those submodules
need different extras (`datasets`, `pycocotools`, `scipy`, ...). Importing any submodule first runs its package's
`__init__`, so an eager `__init__` would make `c2f_hf.data.synthetic` (which the core demo uses) need every extra
of the package. With `__getattr__ = lazy_exports(__name__, {...})` (PEP 562) the `__init__` imports nothing.
"""

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that resolves each name of `exports` (`{submodule: names}`) by importing
    the submodule that defines it."""
    defining_module = {name: submodule for submodule, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in defining_module:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{defining_module[name]}"), name)

    return __getattr__


__all__ = ["lazy_exports"]
