"""Evaluation and prediction on several processes: which process runs which objects, and how their results reach
the main process.

`c2f-hf evaluate` and `c2f-hf predict` started by a launcher (`torchrun --nproc-per-node N -m c2f_hf.cli ...` or
`accelerate launch -m c2f_hf.cli ...`) see `WORLD_SIZE` > 1 in their environment and join the launcher's process
group through Accelerate's `PartialState`, as training does (`training.common.build_accelerator`): one GPU per
process, or Accelerate's MULTI_CPU (gloo) on a machine without a GPU. Each process takes one contiguous share of
the samples (`Processes.shard`), so concatenating the shares in process order gives back the one-process order, and
`Processes.gather` brings every share to the main process. Run alone, nothing is imported from Accelerate and
`Processes()` is the single process that runs everything. (Accelerate's own multi-CPU launcher, `accelerate
launch --cpu`, uses mpirun; on CPUs launch with torchrun, or `accelerate launch --multi_gpu`, which runs torchrun.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Processes:
    """The processes that share one run: this one's `index` among `count`, and the `device` its model runs on
    (None: the caller's choice, for a single process)."""

    index: int = 0
    count: int = 1
    device: torch.device | None = None

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def shard(self, items: range) -> range:
        """This process's contiguous share of `items`: the first `len(items) % count` processes take one more."""
        size, extra = divmod(len(items), self.count)
        start = self.index * size + min(self.index, extra)
        return items[start : start + size + (self.index < extra)]

    def gather(self, value: Any) -> list[Any] | None:
        """Every process's `value` (picklable), in process order, on the main process; None on the others."""
        if self.count == 1:
            return [value]
        gathered = [None] * self.count if self.is_main else None
        torch.distributed.gather_object(value, gathered, dst=0)
        return gathered

    def broadcast(self, value: Any) -> Any:
        """The main process's `value` (picklable) on every process."""
        if self.count == 1:
            return value
        holder = [value]
        torch.distributed.broadcast_object_list(holder, src=0)
        return holder[0]

    def wait(self) -> None:
        """Block until every process gets here."""
        if self.count > 1:
            torch.distributed.barrier()


def _launched_state():
    """Accelerate's `PartialState` of the launcher's process group (MULTI_CPU, gloo, when there is no GPU)."""
    try:
        from accelerate import PartialState
    except ImportError as error:
        raise ValueError(
            f'running on {os.environ["WORLD_SIZE"]} processes needs Accelerate, which the "data" extra brings: '
            f'pip install "c2f_hf[data]" (missing module: {error.name})'
        ) from None
    return PartialState(cpu=not torch.cuda.is_available())


@contextmanager
def launched_processes() -> Iterator[Processes]:
    """The processes of this run: those of the launcher's process group when `WORLD_SIZE` > 1 (the group is
    destroyed on exit), else the one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield Processes()
        return
    state = _launched_state()
    logger.info("process %d of %d on %s", state.process_index, state.num_processes, state.device)
    try:
        yield Processes(state.process_index, state.num_processes, torch.device(state.device))
    finally:
        state.destroy_process_group()


__all__ = ["Processes", "launched_processes"]
