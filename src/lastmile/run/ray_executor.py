"""Run a pack's items on a Ray cluster (``--executor ray``): one actor per worker, each
holding one backend, loaded once; the driver keeps planning, the run store and the
transcript cache (SQLite stays local) and commits every result as it arrives.

Before any item is sent, a probe task on every node checks that the node runs the driver's
lastmile version and can import the backend; then every actor builds its backend. Anything
wrong there is one :class:`~lastmile.errors.BackendError` (exit 3), and no item is recorded.

Items stream to the actors in chunks, at most two chunks in flight per actor (``ray.wait``),
so the driver's memory stays flat however large the pack. An actor that dies is replaced;
the items it held run again one at a time on their actor, so the item that kills actors is
found and recorded as failed after ``retries`` further deaths, as the local pool does.

Audio is read from a shared filesystem by default (the paths the driver sees). With
``ship_audio`` the driver sends the pack, its noise and profile data (already loaded and
checked on the driver) and each utterance's bytes through the object store.

Ray is an optional extra (``pip install "lastmile[ray]"``), imported only here.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lastmile.errors import BackendError, ConfigError
from lastmile.run.crashes import CrashLedger
from lastmile.run.worker import Task

__all__ = [
    "RAY_INSTALL_HINT",
    "RaySession",
    "actor_resources",
    "import_ray",
]

_log = logging.getLogger(__name__)

RAY_INSTALL_HINT = 'pip install "lastmile[ray]"'
_CHUNK = 4  # tasks per actor call
_IN_FLIGHT_PER_ACTOR = 2  # chunks queued on one actor (the next is there when one ends)
_READY_TIMEOUT_S = 300.0  # actors waiting for room on the cluster (an autoscaler adds nodes)
_CONNECT_TIMEOUT_S = 5.0
_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # a local Ray's object store: chunks, not the pack


def import_ray() -> Any:
    """The ``ray`` module; a :class:`BackendError` naming the install when it is missing."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise BackendError(
            f"--executor ray needs Ray, which is not installed here ({exc}); install it with "
            f"{RAY_INSTALL_HINT} (the workers need it too), or run with --executor local"
        ) from None


def actor_resources(spec: Any) -> dict[str, float]:
    """What one actor asks the cluster for: one CPU, and one GPU for a backend whose spec
    asks for a CUDA device (``device=cuda``, ``device=cuda:1``) or sets ``num_gpus``."""
    from lastmile.asr import parse_backend_spec

    try:
        params = dict(parse_backend_spec(spec).params)
    except Exception:  # a bad spec is reported where the backend is built
        params = {}
    device = str(params.get("device", "")).lower()
    gpus = 1.0 if device.startswith("cuda") or device == "gpu" else 0.0
    return {"num_cpus": 1.0, "num_gpus": gpus}


def _address_reachable(address: str) -> None:
    """A BackendError at once when ``host:port`` (or ``ray://host:port``) refuses a TCP
    connection, instead of Ray's own minute of retries."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(
            f"--ray-address {address!r}: expected HOST:PORT (the head node's GCS port, e.g. "
            "10.0.0.5:6379), ray://HOST:PORT for Ray Client, or auto"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), _CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise BackendError(
            f"--ray-address {address}: cannot reach a Ray head there ({exc.strerror or exc}); "
            "start the cluster (ray start --head, ray up, KubeRay) or fix the address"
        ) from None


def _node_probe(modules: list[str]) -> dict[str, Any]:
    """What one node has: lastmile's version and whether each module imports. Shipped by
    value (:func:`_probe_function`), so that a node without lastmile can still answer."""
    import importlib as _il
    import importlib.metadata as _md
    import platform as _pf
    import socket as _so

    out: dict[str, Any] = {"host": _so.gethostname(), "python": _pf.python_version()}
    try:
        out["lastmile"] = _md.version("lastmile")
    except _md.PackageNotFoundError:
        out["lastmile"] = None
    missing = {}
    for name in modules:
        try:
            _il.import_module(name)
        except Exception as exc:  # an ImportError, or a module that fails as it loads
            missing[name] = f"{type(exc).__name__}: {exc}"
    out["missing"] = missing
    return out


def _probe_function() -> Callable[[list[str]], dict[str, Any]]:
    """:func:`_node_probe` rebuilt outside this module, so Ray ships its code by value
    (a function found by module and name is shipped by reference: a node without lastmile
    could not load it)."""
    import types

    return types.FunctionType(
        _node_probe.__code__, {"__builtins__": __builtins__}, "lastmile_node_probe"
    )


def _backend_modules(spec: Any) -> list[str]:
    """The modules a worker imports for the backend: its class's module and its
    ``preload_modules`` (the backend's extra)."""
    from lastmile.asr import backend_class, parse_backend_spec

    try:
        cls = backend_class(parse_backend_spec(spec).name)
    except Exception:
        return []
    return [cls.__module__, *getattr(cls, "preload_modules", ())]


class _Actor:
    """One worker on the cluster: builds its backend once, then decodes chunks of tasks.
    Made a Ray actor class by :meth:`RaySession.run`."""

    def __init__(
        self,
        loaded: Any,
        spec: Any,
        normalizer: str,
        retries: int,
        item_timeout_s: float | None,
        shipped: Any,
    ) -> None:
        from lastmile.asr import build_backend
        from lastmile.run.worker import WorkerContext
        from lastmile.tuning import configure_worker

        configure_worker()
        self.ctx = WorkerContext(
            loaded,
            build_backend(spec),
            normalizer=normalizer,
            retries=retries,
            item_timeout_s=item_timeout_s,
            backend_spec=spec,
        )
        if shipped is not None:  # noise, device and front-end data loaded on the driver
            generators, devices, frontends = shipped
            self.ctx.renderer._generators.update(generators)
            self.ctx.renderer._devices.update(devices)
            self.ctx.renderer._frontends.update(frontends)

    def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname()}

    def process(self, chunk: list[tuple[Task, bytes | None]]) -> list[dict[str, Any]]:
        from lastmile.run.worker import process_task

        records: list[dict[str, Any]] = []
        if all(audio is None for _, audio in chunk):
            for task, _ in chunk:
                records.extend(process_task(self.ctx, task))
            return records
        # shipped bytes: each utterance in a file of this call's own folder, gone after it
        with tempfile.TemporaryDirectory(prefix="lastmile-actor-") as scratch:
            for task, audio in chunk:
                local = Path(scratch) / ("utterance" + Path(task.audio).suffix)
                local.write_bytes(audio or b"")
                shipped = Task(task.utterance_id, str(local), task.text, task.items)
                for rec in process_task(self.ctx, shipped):
                    if rec.get("error"):
                        rec["error"] = str(rec["error"]).replace(str(local), task.audio)
                    records.append(rec)
        return records


@dataclass
class _Slot:
    """One actor and the chunks it holds."""

    handle: Any
    in_flight: dict[Any, list[Task]] = field(default_factory=dict)
    isolating: bool = False


class RaySession:
    """A connection to Ray for one run: connect (or start a local Ray), probe the nodes,
    then :meth:`run` the tasks; :meth:`close` kills the actors and disconnects (and stops a
    Ray that this session started). Use as a context manager."""

    def __init__(self, *, address: str | None, workers: int) -> None:
        self.ray = import_ray()
        self.address = address
        self.workers = max(1, int(workers))
        self.owned = False  # this session called ray.init (and shuts it down)
        self.temp_dir: Path | None = None
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.slots: list[_Slot] = []
        self.resources: dict[str, float] = {"num_cpus": 1.0, "num_gpus": 0.0}

    # -- connection ------------------------------------------------------------------
    def connect(self) -> RaySession:
        ray = self.ray
        if self.address:
            _address_reachable(self.address)
        if ray.is_initialized():
            return self  # the caller's Ray (a script or a test that set it up)
        common = {"log_to_driver": False, "configure_logging": False}
        if self.address:
            try:
                ray.init(address=self.address, **common)
            except Exception as exc:
                raise BackendError(
                    f"--ray-address {self.address}: cannot connect to Ray there "
                    f"({type(exc).__name__}: {exc})"
                ) from None
        else:
            self.temp_dir = _ray_temp_dir()
            self.watchdog = _start_watchdog(self.temp_dir)
            try:
                ray.init(
                    num_cpus=self.workers,
                    include_dashboard=False,
                    object_store_memory=_OBJECT_STORE_BYTES,
                    _temp_dir=str(self.temp_dir),
                    **common,
                )
            except Exception as exc:
                self._stop_watchdog()
                shutil.rmtree(self.temp_dir, ignore_errors=True)
                raise BackendError(
                    f"--executor ray: cannot start a local Ray ({type(exc).__name__}: {exc}); "
                    "give --ray-address to use a running cluster"
                ) from None
        self.owned = True
        return self

    def check_nodes(self, spec: Any) -> list[dict[str, Any]]:
        """Run the probe on every alive node; a BackendError naming the nodes whose lastmile
        version differs from this one's or that cannot import the backend, or when the
        backend wants a GPU and the cluster has none."""
        from importlib.metadata import version

        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        if actor_resources(spec)["num_gpus"] and ray.cluster_resources().get("GPU", 0) < 1:
            raise BackendError(
                f"--executor ray: the backend asks for a GPU ({spec!r}), but the cluster has "
                "none; add GPU nodes or run the backend with device=cpu"
            )
        mine = version("lastmile")
        modules = ["lastmile", *_backend_modules(spec)]
        probe = ray.remote(num_cpus=0, max_retries=0)(_probe_function())
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [
            probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(modules)
            for n in nodes
        ]
        try:
            answers = ray.get(refs, timeout=_READY_TIMEOUT_S)
        except Exception as exc:
            raise BackendError(
                f"--executor ray: the node probe failed ({type(exc).__name__}: {exc})"
            ) from None
        problems = []
        for node, answer in zip(nodes, answers, strict=True):
            where = f"node {node.get('NodeManagerAddress', '?')} ({answer['host']})"
            missing = dict(answer["missing"])
            if answer["lastmile"] is None or "lastmile" in missing:
                why = missing.get("lastmile", "no lastmile distribution")
                problems.append(f"{where}: lastmile is not installed ({why})")
                continue
            if answer["lastmile"] != mine:
                problems.append(f"{where}: lastmile {answer['lastmile']}, the driver has {mine}")
            for name, err in missing.items():
                problems.append(f"{where}: cannot import {name} ({err})")
        if problems:
            raise BackendError(
                "--executor ray: the cluster's workers cannot run this pack; nothing was "
                "sent:\n  "
                + "\n  ".join(problems)
                + f"\nInstall lastmile {mine} and the backend's extra on every node "
                '(e.g. pip install "lastmile[ray]==' + mine + "\" plus the backend's extra)"
            )
        return answers

    def close(self) -> None:
        ray = self.ray
        for slot in self.slots:
            with contextlib.suppress(Exception):
                ray.kill(slot.handle, no_restart=True)
        self.slots.clear()
        if self.owned:
            with contextlib.suppress(Exception):
                ray.shutdown()
            self.owned = False
        self._stop_watchdog()  # whatever of the local Ray is left, then its folder
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None

    def _stop_watchdog(self) -> None:
        if self.watchdog is None:
            return
        self.watchdog.terminate()
        try:
            self.watchdog.wait(timeout=_WATCHDOG_GRACE_S)
        except subprocess.TimeoutExpired:
            self.watchdog.kill()
            self.watchdog.wait()
        self.watchdog = None

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------
    def run(
        self,
        *,
        loaded: Any,
        spec: Any,
        renderer: Any,
        normalizer: str,
        retries: int,
        item_timeout_s: float | None,
        ship_audio: bool,
        tasks: Iterator[Task],
        finish: Callable[..., None],
        report: Callable[[], None],
    ) -> None:
        """Decode ``tasks`` on ``self.workers`` actors; every record goes to ``finish``."""
        ray = self.ray
        first = next(tasks, None)  # plans (and finishes cache hits) until there is work
        if first is None:
            return
        pending: Iterator[Task] = _prepend(first, tasks)
        resources = self.resources = actor_resources(spec)
        shipped = None
        if ship_audio:
            try:
                shipped = ray.put(
                    (dict(renderer._generators), dict(renderer._devices), dict(renderer._frontends))
                )
            except Exception as exc:
                raise ConfigError(
                    f"--ship-audio: the pack's noise, device or front-end data cannot be sent "
                    f"to the workers ({type(exc).__name__}: {exc}); put the pack on a "
                    "filesystem the workers share and drop --ship-audio"
                ) from None
        actor_class = ray.remote(max_restarts=0, max_task_retries=0)(_Actor)
        loaded_ref = ray.put(loaded)

        def new_actor() -> Any:
            return actor_class.options(**resources).remote(
                loaded_ref, spec, normalizer, retries, item_timeout_s, shipped
            )

        self.slots = [_Slot(new_actor()) for _ in range(self.workers)]
        self._wait_ready([s.handle for s in self.slots])

        def payload(task: Task) -> tuple[Task, bytes | None]:
            if not ship_audio:
                return task, None
            try:
                return task, Path(task.audio).read_bytes()
            except OSError:
                return task, b""  # the actor reports the unreadable file on each item

        crashes = CrashLedger(
            retries=retries,
            finish=finish,
            worker="Ray actor",
            workers="Ray actors",
            fix="run with --executor local --workers 1 to see the backend's own error",
        )
        isolate = crashes.isolate
        exhausted = False

        def fill(slot: _Slot) -> None:
            nonlocal exhausted
            while not slot.isolating and len(slot.in_flight) < _IN_FLIGHT_PER_ACTOR:
                if isolate:
                    if slot.in_flight:
                        return  # an isolated task runs alone on its actor
                    chunk = [isolate.popleft()]
                    slot.isolating = True
                else:
                    if exhausted:
                        return
                    chunk = []
                    while len(chunk) < _CHUNK:
                        task = next(pending, None)
                        if task is None:
                            exhausted = True
                            break
                        chunk.append(task)
                    if not chunk:
                        return
                ref = slot.handle.process.remote([payload(t) for t in chunk])
                slot.in_flight[ref] = chunk

        while True:
            for slot in self.slots:
                fill(slot)
            refs = [ref for slot in self.slots for ref in slot.in_flight]
            if not refs:
                break
            ready, _ = ray.wait(refs, num_returns=1)
            ref = ready[0]
            slot = next(s for s in self.slots if ref in s.in_flight)
            try:
                records = ray.get(ref)
            except ray.exceptions.RayActorError:
                lost = list(slot.in_flight.values())
                alone = len(lost) == 1 and len(lost[0]) == 1
                for chunk in lost:
                    for task in chunk:
                        crashes.lost(task, alone=alone)
                with contextlib.suppress(Exception):
                    ray.kill(slot.handle, no_restart=True)
                slot.in_flight.clear()
                slot.isolating = False
                slot.handle = new_actor()
                continue
            except ray.exceptions.RayTaskError as exc:  # a FatalBackendError: stop the run
                cause = getattr(exc, "cause", None)
                if isinstance(cause, Exception):
                    raise cause from None
                raise BackendError(f"a Ray actor failed: {_actor_error_text(exc)}") from None
            del slot.in_flight[ref]
            slot.isolating = False
            crashes.finished()
            for rec in records:
                finish(rec, cached=False)
            crashes.record()
            report()
        crashes.record(at_end=True)

    def _wait_ready(self, handles: list[Any]) -> None:
        """Every actor has built its backend: a BackendError with the first actor's own
        error otherwise, or when the cluster has no room for them in time."""
        ray = self.ray
        refs = [h.ready.remote() for h in handles]
        t0 = time.monotonic()
        try:
            ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=_READY_TIMEOUT_S)
            if waiting:
                raise BackendError(
                    f"--executor ray: {len(waiting)} of {len(refs)} actors found no room on "
                    f"the cluster in {time.monotonic() - t0:.0f} s (each asks for "
                    f"{self.resources}; the cluster has {ray.available_resources()} free); "
                    "use fewer --workers or add nodes"
                )
            ray.get(ready)
        except ray.exceptions.RayActorError as exc:
            raise BackendError(
                "--executor ray: an actor could not build the backend; nothing was sent: "
                + _actor_error_text(exc)
            ) from None


def _actor_error_text(exc: BaseException) -> str:
    """The first line of the actor's own error in a Ray actor-death message."""
    cause = getattr(exc, "cause", None) or getattr(exc, "error_msg", None)
    text = str(cause if cause is not None else exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line and not line.startswith(("File ", "Traceback")):
            return line
    return lines[-1] if lines else type(exc).__name__


# A local Ray's watchdog. Ray ties its GCS, raylet and workers to the process that started
# it, but its dashboard and runtime-env agents outlive a killed driver by about a minute.
# The watchdog waits for SIGTERM, which the kernel sends when the driver dies (Linux
# PR_SET_PDEATHSIG) and the driver sends when it closes its Ray: it then kills every process
# that holds a file in the Ray's private folder (its logs and sockets) and removes the folder.
_WATCHDOG = """
import os, shutil, signal, sys, time
folder, driver = sys.argv[1], int(sys.argv[2])
def holders():
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in (os.getpid(), driver):
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(folder + os.sep):
                    found.append(int(pid))
                    break
            except OSError:
                pass
    return found
def stop(*_):
    for _ in range(40):
        pids = holders()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
if os.getppid() != driver:
    stop()
while True:
    signal.pause()
"""
_WATCHDOG_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1


def _start_watchdog(folder: Path) -> subprocess.Popen[bytes] | None:
    """The watchdog of a local Ray in ``folder`` (Linux; elsewhere ``None``)."""
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None  # a death signal follows the thread that started the child
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(folder), str(os.getpid())],
        preexec_fn=arm,  # only prctl, between fork and exec
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


_SOCKET_ROOM = 44  # Ray adds ~63 characters of session folders to a socket path (max 107)


def _ray_temp_dir() -> Path:
    """A fresh folder for a local Ray's sessions, logs and sockets: under the temporary
    folder, or ``/tmp`` when that path would make Ray's socket paths too long."""
    folder = Path(tempfile.mkdtemp(prefix="lastmile-ray-"))
    if len(str(folder)) <= _SOCKET_ROOM or not Path("/tmp").is_dir():
        return folder
    folder.rmdir()
    return Path(tempfile.mkdtemp(prefix="lastmile-ray-", dir="/tmp"))


def _prepend(first: Task, rest: Iterator[Task]) -> Iterator[Task]:
    yield first
    yield from rest
