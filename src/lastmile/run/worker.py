"""Work done per utterance: render its pending conditions, decode them, score them.

Runs inline (one worker) or in pool processes, each of which builds its backend once.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lastmile.errors import FatalBackendError, LastmileError
from lastmile.render.engine import Renderer
from lastmile.scenario.pack import LoadedPack, load_pack
from lastmile.score import score_item

__all__ = [
    "RenderedTask",
    "Task",
    "WorkerContext",
    "decode_task",
    "init_worker",
    "process_task",
    "process_task_in_worker",
    "render_task",
    "score_fields",
]


@dataclass(frozen=True)
class Task:
    """One utterance and the items of it still to do."""

    utterance_id: str
    audio: str
    text: str
    items: tuple[tuple[str, str], ...]  # (item_id, condition_id)


class WorkerContext:
    """The backend, renderer and settings one worker uses for every task."""

    def __init__(
        self,
        loaded: LoadedPack,
        backend: Any,
        *,
        normalizer: str,
        retries: int,
        item_timeout_s: float | None = None,
        backend_spec: Any = None,
    ) -> None:
        self.loaded = loaded
        self.backend = backend
        self.backend_spec = backend_spec
        self.item_timeout_s = item_timeout_s
        self.renderer = Renderer(
            loaded,
            sample_rate=backend.sample_rate,
            render_rate=loaded.pack.render_sample_rate,
        )
        self.normalizer = normalizer
        self.retries = retries

    def transcribe(self, audios: list[np.ndarray]) -> list[str]:
        """The backend's transcripts; with ``item_timeout_s``, a call that runs longer than
        that per item raises TimeoutError, and the stuck backend is abandoned for a new one.

        The abandoned call goes on in a daemon thread, which nothing waits for: the process
        exits when its work is done, whatever the stuck decoder does. A backend with a
        ``cancel()`` method is asked to stop the call (the command backend kills the program
        it is waiting for) before it is abandoned."""
        if self.item_timeout_s is None:
            return list(self.backend.transcribe(audios))
        outcome: list[Any] = []
        done = threading.Event()
        backend = self.backend

        def work() -> None:
            try:
                outcome.append(list(backend.transcribe(audios)))
            except BaseException as exc:  # handed to the waiting thread
                outcome.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name="lastmile-decode", daemon=True).start()
        if not done.wait(self.item_timeout_s * len(audios)):
            _cancel(backend)
            if self.backend_spec is not None:
                from lastmile.asr import build_backend

                self.backend = build_backend(self.backend_spec)
            raise TimeoutError(f"the backend took longer than {self.item_timeout_s:g} s per item")
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        result: list[str] = outcome[0]
        return result


def _cancel(backend: Any) -> None:
    """Ask ``backend`` to stop its calls in flight, if it can (an optional ``cancel()``)."""
    cancel = getattr(backend, "cancel", None)
    if callable(cancel):
        with contextlib.suppress(Exception):  # the call is abandoned either way
            cancel()


_CONTEXT: dict[str, WorkerContext] = {}  # the one context of a pool process


def init_worker(
    pack_path: str,
    backend_spec: Any,
    normalizer: str,
    retries: int,
    item_timeout_s: float | None = None,
    scratch: str | None = None,
) -> None:
    """Pool initializer: load the pack and build the backend once per process, with the
    process settings of ``lastmile.tuning``; temporary files go to the run folder's
    ``scratch`` (:func:`lastmile.run.files.scratch_folder`)."""
    from lastmile.asr import build_backend
    from lastmile.scratch import set_current
    from lastmile.tuning import configure_worker

    set_current(scratch)
    configure_worker()
    loaded = load_pack(Path(pack_path))
    _CONTEXT["ctx"] = WorkerContext(
        loaded,
        build_backend(backend_spec),
        normalizer=normalizer,
        retries=retries,
        item_timeout_s=item_timeout_s,
        backend_spec=backend_spec,
    )


def process_task_in_worker(task: Task) -> list[dict[str, Any]]:
    return process_task(_CONTEXT["ctx"], task)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, LastmileError):
        return f"{type(exc).__name__}: {exc}"
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _decode(ctx: WorkerContext, audios: list[np.ndarray]) -> tuple[list[str | None], list[str]]:
    """Decode a batch; on failure, each item alone, retried up to ``ctx.retries`` times
    (a batch of one item was that item's first try already: it gets ``ctx.retries`` more).
    A :class:`FatalBackendError` (it would fail every item the same way) stops the run.

    A backend with ``transcribe_detailed`` (remote backends: they retry each request
    themselves) reports each item's transcript or error; its items are not retried again."""
    detailed = getattr(ctx.backend, "transcribe_detailed", None)
    if detailed is not None:
        outcomes = detailed(audios)
        if len(outcomes) != len(audios):
            raise RuntimeError(f"backend returned {len(outcomes)} outcomes for {len(audios)}")
        return (
            [None if o.error is not None else (o.text or "") for o in outcomes],
            [f"BackendError: {o.error}" if o.error is not None else "" for o in outcomes],
        )
    try:
        hyps = ctx.transcribe(audios)
        if len(hyps) != len(audios):
            raise RuntimeError(f"backend returned {len(hyps)} transcripts for {len(audios)}")
        return list(hyps), [""] * len(audios)
    except FatalBackendError:
        raise
    except Exception as exc:
        batch_error = _error_text(exc)
    out: list[str | None] = []
    errors: list[str] = []
    alone = len(audios) == 1  # then the batch was the item's first try: its error stands
    tries = ctx.retries + (0 if alone else 1)
    for audio in audios:
        last = batch_error if alone else ""
        for _attempt in range(tries):
            try:
                out.append(ctx.transcribe([audio])[0])
                last = ""
                break
            except FatalBackendError:
                raise
            except Exception as exc:
                last = _error_text(exc)
        else:
            out.append(None)
        errors.append(last)
    return out, errors


def score_fields(reference: str, hypothesis: str, normalizer: str) -> dict[str, Any]:
    """An item record's score columns: counts (N, hits, S, D, I), the normalized texts and
    the normalizer's name."""
    counts = score_item(reference, hypothesis, normalizer=normalizer)
    return {
        "n_ref": counts.n_ref,
        "hits": counts.hits,
        "substitutions": counts.substitutions,
        "deletions": counts.deletions,
        "insertions": counts.insertions,
        "reference": counts.reference,
        "hypothesis": counts.hypothesis,
        "normalizer": counts.normalizer,
    }


@dataclass(frozen=True)
class RenderedTask:
    """A task's items rendered and ready to decode, and the records of those that failed."""

    duration_s: float
    notes: tuple[str, ...]
    ready: tuple[tuple[str, str, Any], ...]  # (item_id, condition_id, RenderedItem)
    failed: tuple[dict[str, Any], ...]


def render_task(ctx: WorkerContext, task: Task) -> RenderedTask:
    """Read the utterance once and render each pending item (no decoding); an item that
    cannot be rendered gets its error record."""
    try:
        speech, notes = ctx.renderer.load_speech(Path(task.audio))
    except Exception as exc:
        err = _error_text(exc)
        failed = tuple({"item_id": i, "condition_id": c, "error": err} for i, c in task.items)
        return RenderedTask(0.0, (), (), failed)
    ready = []
    errors = []
    for item_id, condition_id in task.items:
        cond = ctx.loaded.condition(condition_id)
        try:
            r = ctx.renderer.render(speech, cond, utterance_id=task.utterance_id)
            ready.append((item_id, condition_id, r))
        except Exception as exc:
            errors.append(
                {"item_id": item_id, "condition_id": condition_id, "error": _error_text(exc)}
            )
    duration_s = speech.size / ctx.renderer.render_rate
    return RenderedTask(duration_s, tuple(notes), tuple(ready), tuple(errors))


def decode_task(ctx: WorkerContext, task: Task, rendered: RenderedTask) -> list[dict[str, Any]]:
    """Decode and score the rendered items of ``task``; returns every item's record."""
    records = list(rendered.failed)
    if not rendered.ready:
        return records
    t0 = time.perf_counter()
    hyps, errors = _decode(ctx, [r.audio for _, _, r in rendered.ready])
    decode_s = (time.perf_counter() - t0) / len(rendered.ready)
    for (item_id, condition_id, r), hyp, err in zip(rendered.ready, hyps, errors, strict=True):
        rec: dict[str, Any] = {
            "item_id": item_id,
            "condition_id": condition_id,
            "duration_s": round(rendered.duration_s, 4),
            "decode_s": round(decode_s, 4),
            "target_snr_db": r.target_snr_db,
            "achieved_snr_db": None if r.achieved_snr_db is None else round(r.achieved_snr_db, 4),
            "params": r.params,
            "notes": list(rendered.notes),
            "error": err or None,
        }
        if hyp is not None:
            rec.update(hypothesis_raw=hyp, **score_fields(task.text, hyp, ctx.normalizer))
        records.append(rec)
    return records


def process_task(ctx: WorkerContext, task: Task) -> list[dict[str, Any]]:
    """Render, decode and score every pending item of one utterance."""
    return decode_task(ctx, task, render_task(ctx, task))
