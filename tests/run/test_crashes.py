"""The crash rule both executors share (the pool's and Ray's end-to-end tests kill real
workers; these pin the rule's edges)."""

from __future__ import annotations

from typing import Any

import pytest

from lastmile.errors import BackendError
from lastmile.run.crashes import DEAD_ON_ARRIVAL, CrashLedger
from lastmile.run.worker import Task


def _task(n: int) -> Task:
    return Task(f"u{n}", f"u{n}.flac", "words", ((f"u{n}__clean", "clean"), (f"u{n}__hum", "hum")))


def _ledger(retries: int) -> tuple[CrashLedger, list[dict[str, Any]]]:
    recorded: list[dict[str, Any]] = []

    def finish(rec: dict[str, Any], *, cached: bool) -> None:
        assert cached is False
        recorded.append(rec)

    ledger = CrashLedger(
        retries=retries, finish=finish, worker="worker", workers="workers", fix="do this"
    )
    return ledger, recorded


def test_a_task_lost_among_others_is_isolated_without_counting_a_death():
    ledger, recorded = _ledger(retries=0)
    ledger.lost(_task(1), alone=False)
    ledger.lost(_task(1), alone=False)
    assert list(ledger.isolate) == [_task(1), _task(1)]
    ledger.record(at_end=True)
    assert recorded == []


def test_a_task_that_dies_alone_more_than_retries_is_recorded_once_a_task_finished():
    ledger, recorded = _ledger(retries=1)
    ledger.lost(_task(1), alone=True)  # first death: one retry left
    assert list(ledger.isolate) == [_task(1)]
    ledger.isolate.clear()
    ledger.lost(_task(1), alone=True)  # second: out of retries
    assert not ledger.isolate
    ledger.record()
    assert recorded == []  # nothing finished yet: the backend may be what is broken
    ledger.finished()
    ledger.record()
    assert [r["item_id"] for r in recorded] == ["u1__clean", "u1__hum"]
    assert recorded[0]["error"] == "the worker died while decoding this item (2 times)"
    ledger.record(at_end=True)
    assert len(recorded) == 2  # recorded once


def test_tasks_that_all_die_before_any_finishes_stop_the_run_with_the_fix():
    ledger, recorded = _ledger(retries=0)
    for n in range(DEAD_ON_ARRIVAL - 1):
        ledger.lost(_task(n), alone=True)
    with pytest.raises(BackendError) as err:
        ledger.lost(_task(99), alone=True)
    assert str(err.value) == (
        f"the workers died on each of the first {DEAD_ON_ARRIVAL} items, once each, "
        "before finishing any; do this"
    )
    assert recorded == []


def test_after_a_finished_task_deaths_are_the_items_fault():
    ledger, recorded = _ledger(retries=0)
    ledger.finished()
    for n in range(DEAD_ON_ARRIVAL + 2):
        ledger.lost(_task(n), alone=True)
    ledger.record()
    assert len(recorded) == 2 * (DEAD_ON_ARRIVAL + 2)


def test_fewer_dead_tasks_than_it_takes_to_stop_are_recorded_at_the_end():
    ledger, recorded = _ledger(retries=0)
    ledger.lost(_task(1), alone=True)
    ledger.record()
    assert recorded == []
    ledger.record(at_end=True)
    assert [r["condition_id"] for r in recorded] == ["clean", "hum"]
    assert recorded[0]["error"] == "the worker died while decoding this item (once)"
