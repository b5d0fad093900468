"""What becomes of the tasks a dead worker (a pool process or a Ray actor) was holding.

Both executors follow one rule. A task lost in a crash runs again alone (``isolate``), so
that the next crash can be pinned on it; a task that was alone when its worker died has died
once more. A task that died more than ``retries`` times is recorded as failed, each of its
items with the reason, but only once some task has finished (until then the crashes may be
the backend's, not the items'): if the first :data:`DEAD_ON_ARRIVAL` tasks to exhaust their
retries did so before any task finished, the backend itself is broken and the run stops with
a :class:`~lastmile.errors.BackendError`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from lastmile.errors import BackendError
from lastmile.run.worker import Task

__all__ = ["DEAD_ON_ARRIVAL", "CrashLedger"]

DEAD_ON_ARRIVAL = 3  # tasks whose workers all died, none finished: stop the run


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


class CrashLedger:
    """The crash bookkeeping of one run's executor.

    ``worker`` names one worker in the item's error ("the worker process"), ``workers`` all
    of them in the run's error, ``fix`` says what to do when the backend is broken.
    """

    def __init__(
        self,
        *,
        retries: int,
        finish: Callable[..., None],
        worker: str,
        workers: str,
        fix: str,
    ) -> None:
        self.isolate: deque[Task] = deque()  # tasks lost in a crash: each runs alone
        self._retries = retries
        self._finish = finish
        self._worker = worker
        self._workers = workers
        self._fix = fix
        self._deaths: dict[Task, int] = {}
        self._unrecorded: list[Task] = []  # died too often; recorded once a task finished
        self._any_finished = False

    def lost(self, task: Task, *, alone: bool) -> None:
        """``task`` was in flight when its worker died (``alone``: the only one it held)."""
        if alone:
            self._deaths[task] = self._deaths.get(task, 0) + 1
        deaths = self._deaths.get(task, 0)
        if deaths <= self._retries:
            self.isolate.append(task)
            return
        self._unrecorded.append(task)
        if not self._any_finished and len(self._unrecorded) >= DEAD_ON_ARRIVAL:
            raise BackendError(
                f"the {self._workers} died on each of the first {len(self._unrecorded)} "
                f"items, {_times(deaths)} each, before finishing any; {self._fix}"
            ) from None

    def finished(self) -> None:
        """A task finished: the backend works, so the tasks that died are the items' fault."""
        self._any_finished = True

    def record(self, *, at_end: bool = False) -> None:
        """Record the tasks that died too often as failed items, once a task has finished
        (``at_end``: in any case: the run had fewer such tasks than it takes to stop it)."""
        if not (self._any_finished or at_end):
            return
        for task in self._unrecorded:
            for item_id, condition_id in task.items:
                self._finish(
                    {
                        "item_id": item_id,
                        "condition_id": condition_id,
                        "error": f"the {self._worker} died while decoding this item "
                        f"({_times(self._deaths[task])})",
                    },
                    cached=False,
                )
        self._unrecorded.clear()
