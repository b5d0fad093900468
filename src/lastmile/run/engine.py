"""Run a scenario pack: plan, cache lookups, local execution, run store, run folder.

Every finished item is committed to the run store as it completes, so a killed run resumes
(``resume=RUN_DIR``) with nothing lost and nothing counted twice.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import json
import logging
import os
import platform
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from lastmile.corpus import Corpus, Utterance
from lastmile.errors import ConfigError, RunFailed
from lastmile.forkserver import pool_context
from lastmile.run.crashes import CrashLedger
from lastmile.run.files import (
    csv_cell,
    ensure_dir,
    open_atomic,
    refuse_symlink,
    safe_component,
    scratch_folder,
    write_text_atomic,
    write_with,
)
from lastmile.run.identity import identity_changes, identity_digests, run_identity
from lastmile.run.plan import PlannedItem, file_sha256, iter_plan, load_pack_corpus
from lastmile.run.plan import item_id as make_item_id
from lastmile.run.store import RunStore, TranscriptCache
from lastmile.run.worker import (
    RenderedTask,
    Task,
    WorkerContext,
    decode_task,
    init_worker,
    process_task_in_worker,
    render_task,
    score_fields,
)
from lastmile.scenario.pack import CLEAN_ID, LoadedPack, load_pack
from lastmile.tuning import decoding_heap

__all__ = [
    "ITEM_COLUMNS",
    "Progress",
    "RunOptions",
    "RunResult",
    "run_pack",
]

_log = logging.getLogger(__name__)

RUN_SCHEMA_VERSION = 1
_PLAN_CHUNK = 64  # utterances planned at a time
_ERRORS_SHOWN = 5  # distinct errors listed when a run fails
_ERRORS_KEPT = 50  # distinct errors recorded in run.json
_NUMBERS = re.compile(r"\d+")  # left out when errors are grouped by kind
ITEM_COLUMNS = [
    "item_id",
    "condition_id",
    "utterance_id",
    "speaker",
    "group",
    "n_ref",
    "substitutions",
    "deletions",
    "insertions",
    "hits",
    "reference",
    "hypothesis",
    "hypothesis_raw",
    "normalizer",
    "duration_s",
    "decode_s",
    "target_snr_db",
    "achieved_snr_db",
    "item_seed",
    "cached",
    "error",
    "params",
]


@dataclass(frozen=True)
class Progress:
    """A progress report: items done of total, of which cache hits and failures."""

    done: int
    total: int
    cached: int
    failed: int
    elapsed_s: float


@dataclass(frozen=True)
class RunOptions:
    """How to run a pack. ``asr`` overrides the pack's backend spec."""

    asr: str | dict[str, Any] | None = None
    out: Path | None = None
    limit: int | None = None
    workers: int = 1  # worker processes; an io_bound backend runs in this process
    resume: Path | None = None
    use_cache: bool = True
    cache_path: Path | None = None
    retries: int = 2
    item_timeout_s: float | None = None
    examples_per_condition: int = 3
    reports: bool = True
    conditions: tuple[str, ...] | None = None
    """Run only these of the pack's conditions (ids; clean is always run). A subset is part of
    the run's identity: ``--resume`` refuses another subset."""
    absolute_paths: bool = False
    """Also record the pack's, the manifest's and the run folder's absolute paths in run.json
    (``paths``). Off by default: run.json, summary.json and the reports are shared, and show
    the pack by its file name and the manifest relative to the pack."""
    executor: str | None = None
    """``local`` (processes on this machine) or ``ray`` (actors on a Ray cluster, see
    :mod:`lastmile.run.ray_executor`); ``None``: the pack's ``run.executor``."""
    ray_address: str | None = None
    """The Ray cluster to use (``HOST:PORT``, ``ray://HOST:PORT``, ``auto``); ``None``: the
    pack's ``run.ray_address``, else a local Ray started for the run and stopped after it."""
    ship_audio: bool = False
    """With Ray: send the utterances' audio and the pack's noise and profile data through
    the object store, for workers that cannot read the driver's files."""


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    n_items: int
    n_failed: int
    n_cached: int
    wall_s: float
    backend_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in (
        "lastmile",
        "numpy",
        "scipy",
        "faster-whisper",
        "ctranslate2",
        "jiwer",
        "soxr",
        "soundfile",
        "pocketsphinx",
        "whisper-normalizer",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_run_dir(loaded: LoadedPack) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("lastmile-runs") / f"{loaded.pack.name}-{stamp}"


def _tasks(items: list[PlannedItem], *, per_utterance: bool) -> Iterator[Task]:
    """Items as tasks: one per utterance (its conditions together: one read of the speech)
    when running inline, one per item in a pool (the tail stays balanced)."""
    current: list[PlannedItem] = []
    for item in items:
        if current and (not per_utterance or current[0].utterance.id != item.utterance.id):
            yield _task(current)
            current = []
        current.append(item)
    if current:
        yield _task(current)


def _task(items: list[PlannedItem]) -> Task:
    utt = items[0].utterance
    return Task(
        utterance_id=utt.id,
        audio=str(utt.audio),
        text=utt.text,
        items=tuple((i.item_id, i.condition.id) for i in items),
    )


def _run_meta(
    loaded: LoadedPack, corpus: Corpus, backend: Any, backend_spec: Any, fingerprint: str
) -> dict[str, Any]:
    """run.json's content; paths are relative (shareable): the pack by its file name, the
    manifest relative to the pack's folder, paths in the backend's spec and fingerprint (a
    command's program) relative to the pack's folder or the home folder (``~``)."""
    spec = backend_spec if isinstance(backend_spec, str) else dict(backend_spec)
    return {
        "schema_version": RUN_SCHEMA_VERSION,
        "pack": {
            "name": loaded.pack.name,
            "path": loaded.path.name,
            "description": loaded.pack.description,
            "seed": loaded.pack.seed,
        },
        "backend": {
            "spec": _shareable_value(spec, loaded.base_dir),
            "name": backend.name,
            "fingerprint": _shareable_text(fingerprint, loaded.base_dir),
            "sample_rate": backend.sample_rate,
        },
        "normalizer": loaded.pack.normalizer,
        "group_by": loaded.pack.group_by,
        "clean_condition_id": CLEAN_ID,
        "fairness": loaded.pack.fairness.model_dump(mode="json"),
        "render_sample_rate": loaded.pack.render_sample_rate,
        "conditions": [
            {
                "id": c.id,
                "label": c.label,
                "noise_family": c.noise_family,
                "snr_db": c.snr_db,
                "spec": c.spec(),
            }
            for c in loaded.conditions
        ],
        "corpus": {
            "manifest": Path(os.path.relpath(corpus.manifest, loaded.base_dir)).as_posix(),
            "n_utterances": len(corpus),
            "groups": corpus.groups,
            "n_speakers": len(corpus.speakers),
        },
        "versions": _versions(),
    }


def run_pack(
    pack_path: str | Path,
    options: RunOptions | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    backend: Any = None,
) -> RunResult:
    """Run ``pack_path`` end to end and write the run folder; see :class:`RunOptions`.

    ``backend`` may pass an already built backend (it must match ``options.asr``); otherwise
    it is built from the spec (the CLI's ``--asr`` or the pack's ``asr``).

    With ``workers > 1`` the workers are processes started from a fork server (spawn where
    there is none), which import the calling script again: call this from a script under
    ``if __name__ == "__main__":``, as with any ``multiprocessing`` code.
    """
    with contextlib.ExitStack() as cleanup:  # a Ray session ends with the run
        return _run_pack(pack_path, options or RunOptions(), on_progress, backend, cleanup=cleanup)


def _run_pack(
    pack_path: str | Path,
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None,
    backend: Any,
    *,
    cleanup: contextlib.ExitStack,
) -> RunResult:
    from lastmile.asr import build_backend

    t_start = time.perf_counter()
    loaded = only_conditions(load_pack(pack_path), options.conditions)
    spec = options.asr if options.asr is not None else loaded.pack.asr
    own_backend = backend is None
    backend = backend or build_backend(spec)
    corpus = load_pack_corpus(loaded, limit=options.limit)
    if len(corpus) == 0:
        raise ConfigError(f"{loaded.path}: the corpus selection is empty")
    if options.limit is not None:
        _warn_thin_groups(loaded, corpus, options.limit)

    ctx = WorkerContext(
        loaded,
        backend,
        normalizer=loaded.pack.normalizer,
        retries=options.retries,
        item_timeout_s=options.item_timeout_s,
        backend_spec=spec if own_backend else None,
    )
    for cond in loaded.conditions:
        ctx.renderer.validate_condition(cond)
    condition_keys = {c.id: ctx.renderer.condition_key(c) for c in loaded.conditions}
    total = len(corpus) * len(loaded.conditions)
    fingerprint = backend.fingerprint()
    meta = _run_meta(loaded, corpus, backend, spec, fingerprint)
    audio_digests = {utt.id: _audio_digest(Path(utt.audio)) for utt in corpus.utterances}
    identity = run_identity(
        loaded,
        corpus,
        backend_fingerprint=fingerprint,
        condition_keys=condition_keys,
        audio_digests=audio_digests,
        limit=options.limit,
    )
    meta["identity"] = identity_digests(identity)
    # Ray: connected and its nodes checked before the run folder changes
    ray_session = _ray_session(loaded, spec, options, ctx, cleanup)

    if options.resume is not None:
        run_dir = Path(options.resume)
        if not (run_dir / "store.sqlite").is_file():
            raise ConfigError(
                f"{run_dir}: not a run folder (no store.sqlite); give the folder a killed run "
                "wrote, or drop --resume"
            )
        _refuse_links(run_dir)
        store = RunStore(run_dir / "store.sqlite")
        _check_same_run(run_dir, store, identity, fingerprint=fingerprint, total=total)
    else:
        run_dir = Path(options.out) if options.out else default_run_dir(loaded)
        if (run_dir / "store.sqlite").exists():
            raise ConfigError(
                f"{run_dir}: already holds a run; use --resume {run_dir} to continue it or "
                "choose another --out"
            )
        _refuse_links(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        store = RunStore(run_dir / "store.sqlite")
    if options.absolute_paths:
        meta["paths"] = {
            "pack": str(loaded.path),
            "manifest": str(Path(corpus.manifest).resolve()),
            "run_dir": str(run_dir.resolve()),
        }
    store.set_meta("plan", {"fingerprint": fingerprint, "items": total})
    store.set_meta("identity", identity)
    meta["started_at"] = store.get_meta("started_at") or _now()
    store.set_meta("started_at", meta["started_at"])
    meta["complete"] = False
    write_text_atomic(run_dir / "run.json", json.dumps(meta, indent=2) + "\n")

    cache = TranscriptCache(options.cache_path) if options.use_cache else None
    n_cached = n_failed = 0
    n_done = store.count()
    backend_s = 0.0
    # items planned and not yet finished: the plan is made a chunk of utterances at a time,
    # as the executor asks for work, so memory does not grow with the pack
    by_id: dict[str, PlannedItem] = {}

    def report() -> None:
        if on_progress is not None:
            on_progress(Progress(n_done, total, n_cached, n_failed, time.perf_counter() - t_start))

    converted: set[str] = set()  # utterances whose audio conversions were said

    def finish(record: dict[str, Any], *, cached: bool) -> None:
        nonlocal n_done, n_failed, n_cached, backend_s
        item = by_id.pop(record["item_id"])
        if record.get("notes") and item.utterance.id not in converted:
            converted.add(item.utterance.id)  # said once per file, whichever process read it
            for note in record["notes"]:
                _log.warning(
                    "%s: %s", item.utterance.audio, note, extra={"lastmile_conversion": note}
                )
        if record.get("error"):
            record = {**record, "error": shareable(str(record["error"]))}
        full = {
            **record,
            "utterance_id": item.utterance.id,
            "speaker": item.utterance.speaker,
            "group": item.utterance.group,
            "item_seed": item.item_seed,
            "cached": cached,
        }
        if store.put(item.item_id, item.seq, full):
            n_done += 1
            n_cached += int(cached)
            if full.get("error"):
                n_failed += 1
            elif not cached:
                backend_s += float(full.get("decode_s") or 0.0)
        if cache is not None and not cached and not full.get("error"):
            cache.put(item.cache_key, fingerprint, record)

    def planned_tasks() -> Iterator[Task]:
        """Tasks for the items still to decode, planned a chunk of utterances at a time;
        items already in the store are skipped, cache hits are finished on the way."""
        utterances = corpus.utterances
        for first in range(0, len(utterances), _PLAN_CHUNK):
            chunk = list(
                iter_plan(
                    loaded,
                    utterances[first : first + _PLAN_CHUNK],
                    condition_keys=condition_keys,
                    audio_digest=lambda utt: audio_digests[utt.id],
                    first_seq=first * len(loaded.conditions),
                )
            )
            done = store.done_among([i.item_id for i in chunk])
            pending = []
            for item in chunk:
                if item.item_id in done:
                    continue
                by_id[item.item_id] = item
                hit = cache.get(item.cache_key, fingerprint) if cache is not None else None
                if hit is not None:
                    finish(_rescored(hit, item, loaded.pack.normalizer), cached=True)
                else:
                    pending.append(item)
            report()
            yield from _tasks(pending, per_utterance=options.workers <= 1)

    def shareable(text: str) -> str:
        """An error text with the pack's folder left out of paths and the home folder as ~."""
        return _shareable_text(text, loaded.base_dir)

    report()
    tasks = planned_tasks()
    with scratch_folder(run_dir) as scratch:  # temporary files stay in the run folder
        _decode_all(
            ctx, loaded, spec, options, tasks, finish, report, ray_session, own_backend, scratch
        )
        store.set_meta("finished_at", _now())
        n_records, errors = _write_items_csv(run_dir / "items.csv", store.records())
        n_failed_all = sum(errors.values())
        _write_examples(run_dir, ctx, corpus, store, per_condition=options.examples_per_condition)
    store.close()
    meta["finished_at"] = _now()
    meta["complete"] = n_records == total
    meta["counts"] = {"items": total, "failed": n_failed_all, "cached": n_cached}
    max_share = loaded.pack.run.max_failed_share
    failed = n_failed_all > max_share * total
    meta["status"] = "failed" if failed else "ok"
    if errors:
        meta["failures"] = {
            "share": round(n_failed_all / total, 6),
            "max_share": max_share,
            "errors": [{"error": e, "count": n} for e, n in errors.most_common(_ERRORS_KEPT)],
        }
    write_text_atomic(run_dir / "run.json", json.dumps(meta, indent=2) + "\n")
    if failed:
        if cache is not None:
            cache.close()
        raise RunFailed(_failure_message(run_dir, total, errors, max_share))
    summary: dict[str, Any] = {}
    try:
        if options.reports:
            from lastmile.report import build_summary, write_reports

            summary = build_summary(run_dir)
            write_reports(run_dir, summary=summary, figure_store=cache)
    finally:
        if cache is not None:
            cache.close()
    return RunResult(
        run_dir=run_dir,
        summary=summary,
        n_items=total,
        n_failed=meta["counts"]["failed"],
        n_cached=n_cached,
        wall_s=time.perf_counter() - t_start,
        backend_s=backend_s,
    )


# names in a run folder that lastmile writes (or its store and reports write): none of them
# may be a symbolic link, checked before the run changes anything
_RUN_FILES = (
    "run.json",
    "items.csv",
    "store.sqlite",
    "store.sqlite-wal",
    "store.sqlite-shm",
    "store.sqlite-journal",
    "summary.json",
    "summary.md",
    "report.html",
    "summary.json.tmp",
    "summary.md.tmp",
    "report.html.tmp",
    "examples",
)


def _refuse_links(run_dir: Path) -> None:
    """ConfigError naming the first of the run folder's file names that is a symbolic link."""
    for name in _RUN_FILES:
        refuse_symlink(run_dir / name)
    index = run_dir / "examples" / "index.json"
    if (run_dir / "examples").is_dir():
        refuse_symlink(index)


def _shareable_text(text: str, base_dir: Path) -> str:
    """``text`` with paths under ``base_dir`` made relative to it and the home folder
    written ``~``: error texts go into items.csv, which people share."""
    for prefix in {str(base_dir), str(base_dir.resolve())}:
        text = text.replace(prefix + os.sep, "")
    home = os.path.expanduser("~")
    if home not in ("", "/", "~"):
        text = text.replace(home + os.sep, "~" + os.sep)
    return text


def _shareable_value(value: Any, base_dir: Path) -> Any:
    """:func:`_shareable_text` through the strings of JSON-like ``value``."""
    if isinstance(value, str):
        return _shareable_text(value, base_dir)
    if isinstance(value, dict):
        return {k: _shareable_value(v, base_dir) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shareable_value(v, base_dir) for v in value]
    return value


def _audio_digest(path: Path) -> str:
    """The audio file's sha256; a file that cannot be read gets a marker instead (its items
    fail when they are rendered, naming the file)."""
    try:
        return file_sha256(path)
    except OSError as exc:
        return f"unreadable:{exc.strerror or type(exc).__name__}"


def _check_same_run(
    run_dir: Path, store: RunStore, identity: dict[str, Any], *, fingerprint: str, total: int
) -> None:
    """Refuse to resume ``run_dir`` with another plan, naming what changed."""
    previous = store.get_meta("identity")
    if previous is not None:
        changes = identity_changes(previous, identity)
    else:  # a run folder from before identities were recorded
        plan = store.get_meta("plan") or {}
        changes = []
        if plan.get("fingerprint", fingerprint) != fingerprint:
            changes.append("backend changed")
        if plan.get("items", total) != total:
            changes.append(f"items changed: {plan.get('items')} → {total}")
    if changes:
        store.close()
        raise ConfigError(
            f"{run_dir}: cannot resume: this run folder holds a run of another plan ("
            + "; ".join(changes)
            + "). A run folder holds one run: resume with the same pack, corpus, --asr, "
            "--limit and --conditions, or start a new run with another --out"
        )


def _release(backend: Any) -> None:
    """Let a backend that holds resources (a server program, a model) go when this process
    will not decode: its ``close()``, where it has one."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()


def _rescored(hit: dict[str, Any], item: PlannedItem, normalizer: str) -> dict[str, Any]:
    """A cached record for ``item``, its counts scored again against the current reference
    text and normalizer (the cache keeps what is expensive: the render and the transcript)."""
    record = {**hit, "item_id": item.item_id, "condition_id": item.condition.id}
    if record.get("hypothesis_raw") is not None:
        record.update(score_fields(item.utterance.text, record["hypothesis_raw"], normalizer))
    return record


def _prewarm_reports() -> None:
    """Import what the reports need (matplotlib: about 0.35 s) in a background thread."""

    def work() -> None:
        try:
            import matplotlib.backends.backend_agg
            import matplotlib.figure  # noqa: F401

            import lastmile.report  # noqa: F401
        except Exception:  # the reports will say it when they run
            pass

    threading.Thread(target=work, name="lastmile-prewarm", daemon=True).start()


def _decode_all(
    ctx: WorkerContext,
    loaded: LoadedPack,
    spec: Any,
    options: RunOptions,
    tasks: Iterator[Task],
    finish: Callable[..., None],
    report: Callable[[], None],
    ray_session: Any,
    own_backend: bool,
    scratch: Path,
) -> None:
    """Decode every task: on threads (remote backends), Ray actors, inline or a pool."""
    if getattr(ctx.backend, "io_bound", False):  # remote: threads, not processes
        _run_in_flight(ctx, tasks, finish, report, prewarm_reports=options.reports)
    elif ray_session is not None:
        if own_backend:
            _release(ctx.backend)  # the actors decode; ours only gave the fingerprint
        if options.reports:
            _prewarm_reports()
        ray_session.run(
            loaded=loaded,
            spec=spec,
            renderer=ctx.renderer,
            normalizer=loaded.pack.normalizer,
            retries=options.retries,
            item_timeout_s=options.item_timeout_s,
            ship_audio=options.ship_audio,
            tasks=tasks,
            finish=finish,
            report=report,
        )
        ray_session.close()  # no actor outlives the decoding
    elif options.workers <= 1:
        _run_inline(ctx, tasks, finish, report, prewarm_reports=options.reports)
    else:
        if own_backend:
            _release(ctx.backend)  # the workers decode; ours only gave the fingerprint
        _run_pool(loaded, spec, options, tasks, finish, report, scratch)


def _run_inline(
    ctx: WorkerContext,
    tasks: Iterator[Task],
    finish: Callable[..., None],
    report: Callable[[], None],
    *,
    prewarm_reports: bool,
) -> None:
    """Decode in this process, rendering the next utterance in a helper thread while the
    backend decodes this one (decoders release the GIL), with large buffers kept in the heap
    (``lastmile.tuning``). Planning, the run store and the cache stay on this thread."""
    task = next(tasks, None)
    if task is None:
        return  # nothing to decode
    if prewarm_reports:
        _prewarm_reports()
    with decoding_heap(), ThreadPoolExecutor(1, thread_name_prefix="lastmile-render") as ahead:
        rendering = ahead.submit(render_task, ctx, task)
        while task is not None:
            upcoming = next(tasks, None)
            rendered = rendering.result()
            if upcoming is not None:
                rendering = ahead.submit(render_task, ctx, upcoming)
            for rec in decode_task(ctx, task, rendered):
                finish(rec, cached=False)
            report()
            task = upcoming


def _run_in_flight(
    ctx: WorkerContext,
    tasks: Iterator[Task],
    finish: Callable[..., None],
    report: Callable[[], None],
    *,
    prewarm_reports: bool,
) -> None:
    """For I/O-bound backends (``io_bound = True``: remote services): up to the backend's
    ``concurrency`` items in flight from this one process, each decoded on its own thread as
    a batch of one, so a slow answer holds up no other item. This thread renders the next
    items while requests wait and commits each result as it arrives; at most twice the
    concurrency is rendered ahead (memory stays flat)."""
    task = next(tasks, None)
    if task is None:
        return
    if prewarm_reports:
        _prewarm_reports()
    width = max(1, int(getattr(ctx.backend, "concurrency", 1)))
    in_flight: set[Future[list[dict[str, Any]]]] = set()

    def settle(block: bool) -> None:
        if not in_flight:
            return
        done, _ = wait(in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in done:
            in_flight.discard(fut)
            for rec in fut.result():  # a FatalBackendError stops the run here
                finish(rec, cached=False)
        if done:
            report()

    with ThreadPoolExecutor(width, thread_name_prefix="lastmile-request") as requests:
        try:
            while task is not None:
                rendered = render_task(ctx, task)
                for rec in rendered.failed:
                    finish(rec, cached=False)
                for one in rendered.ready:
                    while len(in_flight) >= 2 * width:
                        settle(block=True)
                    single = RenderedTask(rendered.duration_s, rendered.notes, (one,), ())
                    in_flight.add(requests.submit(decode_task, ctx, task, single))
                settle(block=False)
                task = next(tasks, None)
            while in_flight:
                settle(block=True)
        finally:
            for fut in in_flight:
                fut.cancel()


def _run_pool(
    loaded: LoadedPack,
    spec: Any,
    options: RunOptions,
    tasks: Iterator[Task],
    finish: Callable[..., None],
    report: Callable[[], None],
    scratch: Path | None = None,
) -> None:
    """Stream tasks to a process pool, at most 2 per worker in flight (flat memory).

    A worker process that dies (a crash in native backend code, the OOM killer) breaks the
    pool: it is started again, and the tasks that were in flight run again one at a time,
    so the one that kills its worker is found; it is recorded as failed after
    ``options.retries`` further deaths, and the run goes on.

    Workers that die on every task before finishing any (a calling script without an
    ``if __name__ == "__main__":`` guard, a backend that cannot start) stop the run with a
    BackendError after three tasks, rather than recording every item as failed; those three
    are not recorded, so a resumed run tries them again.
    """
    first = next(tasks, None)  # plans (and finishes cache hits) until there is work
    if first is None:
        return  # nothing to decode: no worker is started
    tasks = itertools.chain([first], tasks)
    mp = pool_context(spec)
    if options.reports:
        _prewarm_reports()

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=options.workers,
            mp_context=mp,
            initializer=init_worker,
            initargs=(
                str(loaded.path),
                spec,
                loaded.pack.normalizer,
                options.retries,
                options.item_timeout_s,
                None if scratch is None else str(scratch),
            ),
        )

    crashes = CrashLedger(
        retries=options.retries,
        finish=finish,
        worker="worker process",
        workers="worker processes",
        fix="if you call run_pack from a script, put the call under "
        '`if __name__ == "__main__":`; otherwise run with --workers 1 to see the backend\'s '
        "own error",
    )
    in_flight: dict[Future[list[dict[str, Any]]], Task] = {}
    pool = new_pool()
    try:
        while True:
            limit = 1 if crashes.isolate else 2 * options.workers
            while len(in_flight) < limit:
                task = crashes.isolate.popleft() if crashes.isolate else next(tasks, None)
                if task is None:
                    break
                in_flight[pool.submit(process_task_in_worker, task)] = task
            if not in_flight:
                break
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                task = in_flight.pop(fut)
                try:
                    records = fut.result()
                except BrokenProcessPool:
                    broken = True
                    crashes.lost(task, alone=not in_flight and len(finished) == 1)
                    continue
                crashes.finished()
                for rec in records:
                    finish(rec, cached=False)
            crashes.record()
            if broken:
                crashes.isolate.extend(in_flight.values())
                in_flight.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool()
            report()
        crashes.record(at_end=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_session(
    loaded: LoadedPack,
    spec: Any,
    options: RunOptions,
    ctx: WorkerContext,
    cleanup: contextlib.ExitStack,
) -> Any:
    """A connected, checked :class:`~lastmile.run.ray_executor.RaySession` when the run
    uses Ray (``options.executor``, else the pack's ``run.executor``), closed by
    ``cleanup``; ``None`` for the local executor and for an I/O-bound backend (its requests
    run on threads in this process)."""
    executor = options.executor or loaded.pack.run.executor
    if executor not in ("local", "ray"):
        raise ConfigError(f"--executor: expected local or ray, got {executor!r}")
    if executor != "ray" or getattr(ctx.backend, "io_bound", False):
        return None
    from lastmile.run.ray_executor import RaySession

    address = options.ray_address or loaded.pack.run.ray_address
    session = cleanup.enter_context(RaySession(address=address, workers=options.workers))
    session.connect()
    session.check_nodes(spec)
    return session


def only_conditions(loaded: LoadedPack, ids: Sequence[str] | None) -> LoadedPack:
    """``loaded`` with only the conditions ``ids`` (and clean, always); ``None`` keeps all.
    An unknown id is a :class:`ConfigError` naming the pack's ids."""
    if ids is None:
        return loaded
    known = [c.id for c in loaded.conditions]
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ConfigError(
            f"{loaded.path}: --conditions: no condition {', '.join(repr(i) for i in unknown)}; "
            f"the pack's conditions are: {', '.join(known)}"
        )
    wanted = {CLEAN_ID, *ids}
    return dataclasses.replace(
        loaded, conditions=tuple(c for c in loaded.conditions if c.id in wanted)
    )


def _thin_groups(corpus: Any, min_speakers: int) -> dict[str, int]:
    speakers: dict[str, set[str]] = {}
    for utt in corpus.utterances:
        speakers.setdefault(utt.group, set()).add(utt.speaker)
    return {g: len(s) for g, s in sorted(speakers.items()) if len(s) < min_speakers}


def _warn_thin_groups(loaded: LoadedPack, corpus: Any, limit: int) -> None:
    """Say when ``--limit`` leaves a group with fewer speakers than ``min_speakers`` (its
    conditions can only be insufficient-data), and the smallest limit that would not."""
    from lastmile.run.plan import select

    minimum = loaded.pack.fairness.min_speakers
    thin = _thin_groups(corpus, minimum)
    if not thin:
        return
    full = load_pack_corpus(loaded)
    already = _thin_groups(full, minimum)
    if set(thin) <= set(already):
        return  # the whole corpus is this thin: the analysis says so
    enough = next(
        (
            n
            for n in range(limit + 1, len(full) + 1)
            if set(_thin_groups(select(full, per_speaker=None, limit=n), minimum)) <= set(already)
        ),
        len(full),
    )
    by_count: dict[int, list[str]] = {}
    for group, n in thin.items():
        by_count.setdefault(n, []).append(group)
    parts = []
    for n, groups in sorted(by_count.items()):
        named = groups[:3] + ([f"{len(groups) - 3} more"] if len(groups) > 3 else [])
        who = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        each = " each" if len(groups) > 1 else ""
        parts.append(f"{who} with {n} speaker{'' if n == 1 else 's'}{each}")
    shown = "; ".join(parts)
    _log.warning(
        "--limit %d leaves %s, fewer than min_speakers %d: those groups' "
        "verdicts can only be insufficient-data; --limit %d or more keeps %d per group",
        limit, shown, minimum, enough, minimum,
    )  # fmt: skip


def _failure_message(run_dir: Path, total: int, errors: Counter[str], max_share: float) -> str:
    """``48 of 48 items failed (...)``, then each distinct error with its count."""
    n_failed = sum(errors.values())
    lines = [
        f"{n_failed} of {total} items failed ({n_failed / total:.0%}), more than the pack's "
        f"run.max_failed_share ({max_share:.0%}); the run is not a result:"
    ]
    for text, n in errors.most_common(_ERRORS_SHOWN):
        short = text if len(text) <= 300 else text[:297] + "..."
        lines.append(f"  {n} × {short}" + (" (the first of them)" if n > 1 else ""))
    if len(errors) > _ERRORS_SHOWN:
        rest = sum(n for _, n in errors.most_common()[_ERRORS_SHOWN:])
        lines.append(f"  and {len(errors) - _ERRORS_SHOWN} other errors ({rest} items)")
    lines.append(
        f"Every item and its error is in {run_dir / 'items.csv'}; fix the cause and run the "
        "pack again (or raise run.max_failed_share in the pack to accept more failures)."
    )
    return "\n".join(lines)


def _csv_value(value: Any) -> Any:
    """A cell of items.csv: numbers stay numbers (a negative SNR too); text that a
    spreadsheet would run as a formula (``=HYPERLINK(...)`` as a speaker) gets a leading
    ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, str):
        return csv_cell(value)
    return value


def _write_items_csv(path: Path, records: Iterable[dict[str, Any]]) -> tuple[int, Counter[str]]:
    """Write items.csv from ``records`` (streamed); returns the number of items and the
    failed items' errors counted by their shape (the text with its numbers left out: one
    error that names a request, a file or a status differently for each item is one kind),
    each kind under the text of its first item."""
    n = 0
    errors: Counter[str] = Counter()
    first: dict[str, str] = {}
    with open_atomic(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=ITEM_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: _csv_value(rec.get(k)) for k in ITEM_COLUMNS})
            n += 1
            if rec.get("error"):
                text = str(rec["error"])
                errors[first.setdefault(_NUMBERS.sub("#", text), text)] += 1
    return n, errors


def _write_examples(
    run_dir: Path,
    ctx: WorkerContext,
    corpus: Corpus,
    store: RunStore,
    *,
    per_condition: int,
) -> None:
    """Render a few items per condition again (deterministic) as FLAC to listen to:
    the first utterance of the first ``per_condition`` groups, the same across conditions."""
    from lastmile.audio import write_audio

    if per_condition <= 0:
        return
    chosen: dict[str, Utterance] = {}
    for utt in corpus.utterances:
        if utt.group not in chosen and len(chosen) < per_condition:
            chosen[utt.group] = utt
    utterances = list(chosen.values())
    index = []
    for utt in utterances:
        try:
            speech, _ = ctx.renderer.load_speech(Path(utt.audio))
        except Exception:
            continue
        for cond in ctx.loaded.conditions:
            rec = store.get(make_item_id(utt.id, cond.id))
            if rec is None or rec.get("error"):
                continue
            try:
                rendered = ctx.renderer.render(speech, cond, utterance_id=utt.id)
            except Exception:
                continue
            folder = ensure_dir(run_dir, "examples", cond.id)
            path = folder / (safe_component(utt.id, max_len=95) + ".flac")
            write_with(
                path,
                partial(write_audio, samples=rendered.audio, sample_rate=rendered.sample_rate),
            )
            rel = path.relative_to(run_dir)
            index.append(
                {
                    "condition_id": cond.id,
                    "utterance_id": utt.id,
                    "group": utt.group,
                    "speaker": utt.speaker,
                    "path": rel.as_posix(),
                    "reference": utt.text,
                    "hypothesis": rec.get("hypothesis_raw", ""),
                }
            )
    folder = ensure_dir(run_dir, "examples")
    write_text_atomic(folder / "index.json", json.dumps(index, indent=2) + "\n")
