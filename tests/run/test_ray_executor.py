"""The Ray executor (``--executor ray``) with a real local Ray and a real two-node cluster on
loopback: the same items as the local pool, shipped audio, dead actors, a killed driver,
and the errors given before any item is sent."""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from lastmile.run import RunOptions, run_pack
from lastmile.scenario.pack import load_pack

from helpers import demo_rows, demo_subset_pack

pytest_plugins = ["pytester"]

# A backend whose transcript is the digest of the audio it was given: two runs with equal
# transcripts rendered the same bytes. With kill=DIGEST its process exits on that audio (a
# crash in native code); with sleep_s it is a slow decoder.
AUDIOHASH = """
import hashlib
import os
import time

import numpy as np


class AudioHash:
    name = "audiohash"
    sample_rate = 16000

    def __init__(self, kill="", sleep_s=0.0, device="cpu"):
        self.kill = kill
        self.sleep_s = float(sleep_s)

    @classmethod
    def from_spec(cls, spec):
        return cls(**dict(spec.params))

    def fingerprint(self):
        return "audiohash/1"

    def transcribe(self, batch):
        out = []
        for audio in batch:
            digest = hashlib.sha256(np.ascontiguousarray(audio, "<f4").tobytes()).hexdigest()
            if self.kill and digest.startswith(self.kill):
                os._exit(1)
            time.sleep(self.sleep_s)
            out.append("h" + digest[:24])
        return out
"""


def _write_plugin(site: Path) -> None:
    info = site / "audiohash_asr-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (site / "audiohash_asr.py").write_text(AUDIOHASH)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: audiohash-asr\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lastmile.asr]\naudiohash = audiohash_asr:AudioHash\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The plugin installed for this process and for every process it starts (Ray's)."""
    folder = tmp_path_factory.mktemp("site")
    _write_plugin(folder)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), old) if p)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def local_ray(site: Path) -> Iterator[None]:
    """One local Ray (2 CPUs) shared by this module's in-process runs."""
    temp = tempfile.mkdtemp(prefix="lmray-")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=128 * 1024 * 1024,
        _temp_dir=temp,
    )
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def _pack(folder: Path, **fields) -> Path:
    """Two groups of two speakers; pink, hum and a looped noise recording (a file the actors
    read, or are sent with --ship-audio)."""
    import numpy as np

    from lastmile.audio import write_audio
    from lastmile.testing import modulated_noise

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    write_audio(
        folder / "noise.wav",
        modulated_noise(rng, duration_s=2.0, sample_rate=16000) * 0.1,
        sample_rate=16000,
    )
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    fields.setdefault(
        "conditions",
        [
            {"noise": "pink", "snr_db": 5},
            {"noise": {"type": "hum"}, "snr_db": 10},
            {"noise": {"file": "noise.wav"}, "snr_db": 0},
        ],
    )
    return demo_subset_pack(folder, rows, fairness={"min_speakers": 2}, **fields)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "items.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row.pop("decode_s")  # a timing
    return sorted(rows, key=lambda r: r["item_id"])


_COMMON = {"asr": "audiohash", "use_cache": False, "reports": False}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, site: Path) -> tuple[Path, list[dict]]:
    """The pack and its items from the local pool of two worker processes."""
    folder = tmp_path_factory.mktemp("reference")
    pack = _pack(folder / "p")
    run_pack(pack, RunOptions(out=folder / "local", workers=2, **_COMMON))
    rows = _rows(folder / "local")
    assert len(rows) == 16 and not any(r["error"] for r in rows)
    assert len({r["hypothesis_raw"] for r in rows}) == 16  # every rendering differs
    return pack, rows


@pytest.mark.timeout(240)
def test_the_same_items_as_the_local_pool_byte_for_byte(
    tmp_path: Path, local_ray: None, reference: tuple[Path, list[dict]]
):
    pack, local = reference
    result = run_pack(pack, RunOptions(out=tmp_path / "ray", workers=2, executor="ray", **_COMMON))
    assert result.n_items == 16 and result.n_failed == 0
    assert _rows(tmp_path / "ray") == local
    shipped = RunOptions(
        out=tmp_path / "ship", workers=2, executor="ray", ship_audio=True, **_COMMON
    )
    run_pack(pack, shipped)
    assert _rows(tmp_path / "ship") == local
    # the driver's transcript cache: a second run is all cache hits, nothing sent to Ray
    cached = {**_COMMON, "use_cache": True, "cache_path": tmp_path / "cache.sqlite"}
    first = run_pack(pack, RunOptions(out=tmp_path / "c1", workers=2, executor="ray", **cached))
    again = run_pack(pack, RunOptions(out=tmp_path / "c2", workers=2, executor="ray", **cached))
    assert (first.n_cached, again.n_cached) == (0, 16)
    hits = _rows(tmp_path / "c2")
    assert all(r.pop("cached") == "true" for r in hits)
    assert hits == [{k: v for k, v in r.items() if k != "cached"} for r in local]


@pytest.mark.timeout(240)
def test_whisper_on_ray_gives_the_local_pools_transcripts(tmp_path: Path, local_ray: None):
    """The real default backend (Whisper tiny.en), one utterance per group, clean and pink."""
    rows = demo_rows(groups=("us", "gb-rp"), per_group=1)
    pink = [{"noise": "pink", "snr_db": 5}]
    pack = demo_subset_pack(tmp_path / "p", rows, conditions=pink, fairness={"min_speakers": 2})
    common = {"workers": 2, "use_cache": False, "reports": False, "asr": "faster-whisper"}
    run_pack(pack, RunOptions(out=tmp_path / "local", **common))
    run_pack(pack, RunOptions(out=tmp_path / "ray", executor="ray", **common))
    local, remote = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert len(remote) == 4 and not any(r["error"] for r in remote)
    clean = [r for r in remote if r["condition_id"] == "clean"]
    assert sum(int(r["hits"]) for r in clean) > sum(int(r["n_ref"]) for r in clean) / 2, clean
    assert remote == local


@pytest.mark.timeout(120)
def test_shipped_audio_reaches_actors_that_cannot_read_the_files(
    tmp_path: Path, local_ray: None, reference: tuple[Path, list[dict]]
):
    """The driver loads the pack, its noise recording and the utterances' bytes; then the
    pack's folder is moved away, so no path the actor is given resolves."""

    from lastmile.corpus import load_corpus
    from lastmile.render.engine import Renderer
    from lastmile.run.plan import item_id
    from lastmile.run.ray_executor import _Actor
    from lastmile.run.worker import Task

    source, local = reference
    folder = tmp_path / "p"
    shutil.copytree(source.parent, folder)
    audio = folder / "audio"
    audio.mkdir()
    with (folder / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["audio"] = str(Path(shutil.copy(row["audio"], audio)))
    with (folder / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    loaded = load_pack(folder / "pack.yaml")
    renderer = Renderer(loaded, sample_rate=16000, render_rate=loaded.pack.render_sample_rate)
    for cond in loaded.conditions:
        renderer.validate_condition(cond)
    shipped = (renderer._generators, renderer._devices, renderer._frontends)
    corpus = load_corpus(loaded.manifest_path, group_by="accent")
    chunk = [
        (
            Task(
                utt.id,
                str(utt.audio),
                utt.text,
                tuple((item_id(utt.id, c.id), c.id) for c in loaded.conditions),
            ),
            Path(utt.audio).read_bytes(),
        )
        for utt in corpus.utterances
    ]
    folder.rename(tmp_path / "moved")
    assert not Path(chunk[0][0].audio).exists() and not (folder / "noise.wav").exists()
    actor = ray.remote(_Actor).remote(loaded, "audiohash", "default", 0, None, shipped)
    try:
        records = ray.get(actor.process.remote(chunk), timeout=90)
    finally:
        ray.kill(actor)
    got = {r["item_id"]: (r.get("hypothesis_raw"), r["error"]) for r in records}
    assert got == {r["item_id"]: (r["hypothesis_raw"], None) for r in local}
    # without the bytes, the same actor setup cannot read the moved utterance
    actor = ray.remote(_Actor).remote(loaded, "audiohash", "default", 0, None, shipped)
    try:
        records = ray.get(actor.process.remote([(chunk[0][0], None)]), timeout=90)
    finally:
        ray.kill(actor)
    assert all("AudioError" in r["error"] for r in records)


@pytest.mark.timeout(180)
def test_an_actor_that_dies_is_replaced_and_the_item_that_kills_it_is_recorded(
    tmp_path: Path, local_ray: None, reference: tuple[Path, list[dict]]
):
    pack, local = reference
    victim = next(r for r in local if r["condition_id"] == "pink_snr5")
    options = RunOptions(
        out=tmp_path / "ray",
        workers=2,
        executor="ray",
        retries=1,
        asr=f"audiohash?kill={victim['hypothesis_raw'][1:]}",
        use_cache=False,
        reports=False,
    )
    result = run_pack(pack, options)
    rows = _rows(tmp_path / "ray")
    assert result.n_failed == 1 and len(rows) == 16
    failed = [r for r in rows if r["error"]]
    assert [r["item_id"] for r in failed] == [victim["item_id"]]
    assert failed[0]["error"] == "the Ray actor died while decoding this item (2 times)"
    ok = {r["item_id"]: r["hypothesis_raw"] for r in rows if not r["error"]}
    assert ok == {r["item_id"]: r["hypothesis_raw"] for r in local if r is not victim}
    # every actor of the run is gone (Ray releases a killed actor's CPU asynchronously)
    deadline = time.monotonic() + 20
    while ray.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU") == 2


@pytest.mark.timeout(60)
def test_a_backend_on_cuda_asks_each_actor_for_a_gpu_and_a_cluster_without_one_is_refused(
    tmp_path: Path, local_ray: None, reference: tuple[Path, list[dict]]
):
    from lastmile.errors import BackendError
    from lastmile.run.ray_executor import actor_resources

    assert actor_resources("faster-whisper?device=cuda") == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert actor_resources("faster-whisper") == {"num_cpus": 1.0, "num_gpus": 0.0}
    pack, _ = reference
    on_cuda = {**_COMMON, "asr": "audiohash?device=cuda"}
    options = RunOptions(out=tmp_path / "run", executor="ray", **on_cuda)
    with pytest.raises(BackendError, match=r"asks for a GPU .* the cluster has none"):
        run_pack(pack, options)
    assert not (tmp_path / "run").exists()  # refused before the run folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(60)
def test_an_unreachable_address_is_one_error_before_anything_is_written(
    tmp_path: Path, reference: tuple[Path, list[dict]]
):
    from click.testing import CliRunner

    from lastmile.cli import cli

    pack, _ = reference
    address = f"127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    res = CliRunner().invoke(
        cli,
        ["run", str(pack), "--asr", "audiohash", "--executor", "ray", "--ray-address", address,
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert res.exit_code == 3, res.output
    assert f"--ray-address {address}: cannot reach a Ray head there" in res.output
    assert time.monotonic() - t0 < 20
    assert not (tmp_path / "run").exists()


def _lastmile(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "lastmile", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.mark.timeout(60)
def test_without_ray_the_error_names_the_install(tmp_path: Path, reference):
    pack, _ = reference
    blocker = tmp_path / "no-ray"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ["PYTHONPATH"]])}
    res = _lastmile(
        "run", str(pack), "--asr", "audiohash", "--executor", "ray", "--out",
        str(tmp_path / "run"), env=env,
    )  # fmt: skip
    assert res.returncode == 3, res.stderr
    assert 'pip install "lastmile[ray]"' in res.stderr
    assert not (tmp_path / "run").exists()


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode().strip()
    except OSError:
        return ""


def _stored(store: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("select count(*) from items").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.timeout(240)
def test_a_killed_driver_leaves_no_ray_process_and_resumes(tmp_path: Path, reference):
    pack, local = reference
    out = tmp_path / "run"
    args = ["run", str(pack), "--executor", "ray", "-j", "2", "--no-cache", "--quiet"]
    killed_temp = Path(tempfile.mkdtemp(prefix="lmk-"))
    driver = subprocess.Popen(
        [sys.executable, "-m", "lastmile", *args, "--asr", "audiohash?sleep_s=0.4",
         "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(killed_temp)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 150
        while _stored(out / "store.sqlite") < 3:
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        started = _descendants(driver.pid)
        assert started  # Ray's processes and the actors
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    # the actors and every process of the Ray lastmile started die with the driver (Ray's
    # agents too: lastmile's watchdog), and the Ray's folder is removed
    deadline = time.monotonic() + 30
    while (_alive(started) or list(killed_temp.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(started), {p: _name(p) for p in _alive(started)}
    assert list(killed_temp.iterdir()) == []
    kept = _stored(out / "store.sqlite")
    assert 3 <= kept < 16
    temp = Path(tempfile.mkdtemp(prefix="lmt-"))  # short: Ray's socket paths live under it
    res = _lastmile(
        *args, "--asr", "audiohash?sleep_s=0.4", "--resume", str(out),
        env={"TMPDIR": str(temp)}, timeout=180,
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    assert _rows(out) == local
    assert list(temp.iterdir()) == []  # the Ray lastmile started is gone, its folder too
    temp.rmdir()
    shutil.rmtree(killed_temp, ignore_errors=True)


def _ray_node(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """``ray start ARGS --block``: the node lives as long as this process (SIGTERM stops it)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start",
         *args, "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def _stop(node: subprocess.Popen) -> None:
    """Stop a node (``ray start --block`` stops its processes on SIGTERM); whatever is left
    of its process group is killed."""
    node.terminate()
    try:
        node.wait(timeout=30)
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)


def _wait_nodes(address: str, n: int, env: dict[str, str]) -> None:
    probe = (
        "import time, ray\n"
        f"ray.init(address={address!r}, log_to_driver=False, configure_logging=False)\n"
        "deadline = time.time() + 60\n"
        f"while sum(x['Alive'] for x in ray.nodes()) != {n}:\n"
        "    assert time.time() < deadline, ray.nodes()\n"
        "    time.sleep(0.5)\n"
    )
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + 60
    while True:  # the head's GCS port answers
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, f"no Ray head at {address}"
            time.sleep(0.5)
    res = subprocess.run(
        [sys.executable, "-c", probe],
        timeout=90,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.fixture(scope="module")
def cluster(site: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a second node on loopback, one CPU each (two actors need both nodes)."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="lmcl-")
    # nodes on 127.0.0.1 (the GCS itself listens on every interface, as Ray does): token
    # authentication with this test's own token, shared by the nodes and the drivers
    env = {
        "PYTHONPATH": os.environ["PYTHONPATH"],
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
    }
    head = _ray_node(
        ["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
         f"--temp-dir={temp}", "--object-store-memory=100000000"],
        env,
    )  # fmt: skip
    nodes = [head]
    try:
        _wait_nodes(address, 1, env)
        nodes.append(_ray_node([f"--address={address}", "--num-cpus=1"], env))
        _wait_nodes(address, 2, env)
        yield address, env
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.timeout(240)
def test_a_two_node_cluster_runs_the_same_items_and_refuses_nodes_that_cannot_run_them(
    tmp_path: Path, cluster: tuple[str, dict[str, str]], reference
):
    address, env = cluster
    pack, local = reference
    args = ["run", str(pack), "--asr", "audiohash", "--no-cache", "--quiet", "-j", "2"]
    res = _lastmile(*args, "--ray-address", address, "--out", str(tmp_path / "run"), env=env)
    assert res.returncode in (0, 1), res.stderr
    assert _rows(tmp_path / "run") == local

    # a third node whose lastmile is another version and which lacks the backend's module
    # (the plugin is not on its path): one error naming both, nothing sent or written
    shadow = tmp_path / "shadow"
    (shadow / "lastmile-0.0.1.dist-info").mkdir(parents=True)
    (shadow / "lastmile-0.0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: lastmile\nVersion: 0.0.1\n"
    )
    odd = _ray_node(
        [f"--address={address}", "--num-cpus=1"],
        {**env, "PYTHONPATH": str(shadow)},
    )
    try:
        _wait_nodes(address, 3, env)
        res = _lastmile(*args, "--ray-address", address, "--out", str(tmp_path / "odd"), env=env)
    finally:
        _stop(odd)
    assert res.returncode == 3, res.stderr
    assert "lastmile 0.0.1, the driver has" in res.stderr
    assert "cannot import audiohash_asr (ModuleNotFoundError" in res.stderr
    assert "nothing was sent" in res.stderr
    assert not (tmp_path / "odd").exists()

    # a node where lastmile cannot be imported at all (the probe is shipped by value)
    _wait_nodes(address, 2, env)  # the odd node is gone
    blocker = tmp_path / "no-lastmile"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['lastmile'] = None\n")
    bare = _ray_node(
        [f"--address={address}", "--num-cpus=1"],
        {**env, "PYTHONPATH": os.pathsep.join([str(blocker), env["PYTHONPATH"]])},
    )
    try:
        _wait_nodes(address, 3, env)
        res = _lastmile(*args, "--ray-address", address, "--out", str(tmp_path / "bare"), env=env)
    finally:
        _stop(bare)
    assert res.returncode == 3, res.stderr
    assert "lastmile is not installed (ModuleNotFoundError" in res.stderr
    assert not (tmp_path / "bare").exists()


@pytest.mark.timeout(60)
def test_the_pytest_plugin_hands_the_executor_and_address_to_the_run(
    pytester: pytest.Pytester, reference: tuple[Path, list[dict]]
):

    pack, _ = reference
    shutil.copytree(pack.parent, pytester.path / "scenario")
    address = f"127.0.0.1:{_free_port()}"
    pytester.makeini(
        f"[pytest]\nlastmile_executor = ray\nlastmile_ray_address = {address}\n"
        "lastmile_out = runs\n"
    )
    result = pytester.runpytest(
        "--lastmile", "--lastmile-asr", "audiohash", "-p", "no:cacheprovider", "scenario"
    )
    result.stdout.fnmatch_lines([f"*--ray-address {address}: cannot reach a Ray head there*"])
    assert result.ret == 1
