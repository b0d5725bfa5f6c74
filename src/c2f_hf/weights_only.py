"""What torch's weights-only unpickler refused: the one place that tells pickled code from a broken file.

`torch.load(..., weights_only=True)` raises `pickle.UnpicklingError` both for a file that holds a class or function
(it names it as "[Unsupported] GLOBAL module.name") and for bytes that are no torch file at all. The converter of
the authors' checkpoints and the training checkpoints both word their refusals from `refused_global`.
"""

import re

_PICKLED_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)", flags=re.IGNORECASE)


def refused_global(error: Exception) -> str | None:
    """The `module.name` of the pickled class or function that `error` reports, or None when it reports none."""
    found = _PICKLED_GLOBAL.search(str(error))
    return found.group(1) if found else None


__all__ = ["refused_global"]
