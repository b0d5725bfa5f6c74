"""`PlainDataUnpickler`: the unpickler of data pickles (the authors' KINS, COCOA and FISHBOWL files).

It admits only the globals that plain data needs (sets, bytes, bytearrays, complex numbers, `OrderedDict`, numpy arrays,
dtypes and scalars) and refuses every other one, so a pickle cannot import or run code. The constructors it admits
that allocate by a number rather than from the file's own bytes (`bytes(n)`, `bytearray(n)`, `ndarray(shape)`,
`_reconstruct(ndarray, shape, dtype)`, a numpy scalar of a huge dtype) are bounded by the file's size: a few bytes
of pickle cannot ask for gigabytes.
"""

import functools
import math
import pickle
from collections.abc import Callable
from typing import IO, Any

import numpy as np

PLAIN_PICKLE_GLOBALS = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytes"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("__builtin__", "set"),
        ("__builtin__", "frozenset"),
        ("__builtin__", "bytes"),
        ("__builtin__", "bytearray"),
        ("__builtin__", "complex"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


def _refuse(what: str, size: int, limit: int) -> None:
    if size > limit:
        raise pickle.UnpicklingError(
            f"{what} would allocate {size} bytes from a pickle of {limit} bytes (data pickles hold their data)"
        )


def _array_bytes(shape: Any, dtype: Any) -> int:
    """Bytes of an array of `shape` and `dtype`; UnpicklingError for a shape that is no tuple of integers."""
    dimensions = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(size, (int, np.integer)) and size >= 0 for size in dimensions):
        raise pickle.UnpicklingError(f"array shape {shape!r} should be non-negative integers")
    return math.prod(int(size) for size in dimensions) * np.dtype(dtype).itemsize


class PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that builds dicts, lists, tuples, strings, bytes, numbers, sets and numpy arrays / scalars,
    refuses every other global (classes, functions: what a code-running `__reduce__` needs) and every allocation
    beyond `limit` bytes (the file's size) that a constructor would make from a number."""

    def __init__(self, handle: IO[bytes], limit: int):
        super().__init__(handle, encoding="latin1")
        self.limit = limit

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in PLAIN_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not plain data")
        found = super().find_class(module, name)
        if name == "scalar":
            return functools.partial(self._scalar, found)
        if name in ("bytes", "bytearray"):
            return functools.partial(self._buffer, found)
        return {"ndarray": self._ndarray, "_reconstruct": self._reconstruct}.get(name, found)

    def _buffer(self, kind: type, *args: Any) -> bytes | bytearray:
        """`bytes(...)` / `bytearray(...)` (protocols 0-2 write empty bytes as `bytes()`), bounded by size."""
        if args and isinstance(args[0], int):
            _refuse(f"{kind.__name__}({args[0]})", args[0], self.limit)
        return kind(*args)

    def _ndarray(self, shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> np.ndarray:
        _refuse(f"ndarray({shape!r})", _array_bytes(shape, dtype), self.limit)
        return np.ndarray(shape, dtype, *args, **kwargs)

    def _reconstruct(self, cls: Callable, shape: Any, dtype: Any) -> np.ndarray:
        if cls != self._ndarray:
            raise pickle.UnpicklingError(f"_reconstruct of {cls!r} is not plain data")
        _refuse(f"_reconstruct(ndarray, {shape!r})", _array_bytes(shape, dtype), self.limit)
        return np.ndarray.__new__(np.ndarray, shape, dtype)

    def _scalar(self, scalar: Callable, dtype: np.dtype, *args: Any) -> Any:
        _refuse(f"numpy scalar of {dtype!r}", np.dtype(dtype).itemsize, self.limit)
        return scalar(dtype, *args)


__all__ = ["PLAIN_PICKLE_GLOBALS", "PlainDataUnpickler"]
