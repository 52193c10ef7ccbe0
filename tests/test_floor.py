"""The floor program (make bench's reference): a second BPF program, on the same base."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyexec import PyexecError
from pyexec.floor import FloorCounter

from .conftest import bpf
from .workload import posix_spawn_many

pytestmark = bpf


@pytest.mark.kernels  # the second program, on every kernel of the matrix too
def test_the_floor_counts_every_execution_and_is_let_go_of_on_close(true_binary: Path) -> None:
    with FloorCounter() as floor:
        before = floor.executions()
        posix_spawn_many(true_binary, 20)
        assert floor.executions() - before >= 20  # the host's others come on top
    with pytest.raises(PyexecError, match="FloorCounter is not started"):
        floor.executions()
