from __future__ import annotations

from haneul.platform.executors import Executor, get_executor
from haneul.platform.testing import ExecutorConformance


class TestLocalExecutor(ExecutorConformance):
    def make_executor(self) -> Executor:
        return get_executor("local")


def test_unknown_executor_lists_choices() -> None:
    import pytest

    from haneul.errors import InvalidInput

    with pytest.raises(InvalidInput, match="choose one of: local, ray$"):
        get_executor("slurm")
