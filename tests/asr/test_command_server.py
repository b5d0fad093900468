"""The command backend in server mode: one program per worker answering JSON lines. A real
program (a Python script written here) whose behaviour per request is chosen by the length of
the audio it is sent, so every fault of the protocol can be provoked on purpose."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lastmile.asr import build_backend, parse_backend_spec
from lastmile.asr.command_server import CommandServerBackend
from lastmile.cli import cli
from lastmile.errors import BackendError, ConfigError, FatalBackendError

from helpers import demo_rows, demo_subset_pack

RATE = 16000

# The answer depends on the number of samples in the WAV it is sent:
#   1600 normal: "n=1600 pid=PID"; 1601 exit 3; 1602 a non-JSON line; 1603 a JSON list;
#   1604 another id; 1605 a text that is a number; 1606 an error answer; 1607 hangs with a
#   child 'sleep' carrying the token; 1608 no id; 1609 a MB of standard error, then normal.
SERVER = r"""
import json, os, subprocess, sys
import soundfile as sf
token = sys.argv[1] if len(sys.argv) > 1 else "x"
print("loading the model", file=sys.stderr, flush=True)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    info = sf.info(req["wav"])
    n = info.frames
    out = {"id": req["id"], "text": f"n={n} pid={os.getpid()} {info.subtype}"}
    if n == 1601:
        print("crashing on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
    elif n == 1602:
        print("decoding...", flush=True)
        continue
    elif n == 1603:
        out = [1, 2]
    elif n == 1604:
        out["id"] = "999"
    elif n == 1605:
        out["text"] = 42
    elif n == 1606:
        out = {"id": req["id"], "error": "cannot read this file"}
    elif n == 1607:
        subprocess.Popen(["sleep", f"300.{token}"])
        subprocess.Popen(["sleep", f"300.{token}"]).wait()
    elif n == 1608:
        del out["id"]
    elif n == 1609:
        sys.stderr.write("x" * (1 << 20))
        sys.stderr.flush()
    print(json.dumps(out), flush=True)
"""


def _audio(n: int, level: float = 0.0) -> np.ndarray:
    """``n`` samples (the test program reacts to the length) of a constant ``level``."""
    return np.full(n, level, dtype=np.float32)


def _token() -> str:
    return str(uuid.uuid4().int % 10**9)


def _processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if token.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait_until_none(token: str, within_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while (left := _processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    return script


def _backend(script: Path, token: str = "x", **params) -> CommandServerBackend:
    backend = build_backend(
        {"name": "command", "argument": f"{sys.executable} {script} {token}", "mode": "server"}
        | params
    )
    assert isinstance(backend, CommandServerBackend)
    return backend


def _pid(text: str) -> int:
    return int(text.split("pid=")[1].split()[0])


def test_the_program_starts_once_and_answers_every_item(server_script: Path):
    backend = _backend(server_script)
    try:
        texts = backend.transcribe([_audio(1600), _audio(1600), _audio(1609), _audio(1600)])
        assert [t.split()[0] for t in texts] == ["n=1600", "n=1600", "n=1609", "n=1600"]
        assert len({_pid(t) for t in texts}) == 1  # one program for all (1 MB of stderr too)
        assert backend.restarts == 0
    finally:
        backend.close()


def test_both_spec_forms_build_the_same_backend(server_script: Path):
    argument = f"{sys.executable} {server_script}"
    assert parse_backend_spec(f"command-server:{argument}?x=1") == parse_backend_spec(
        {"name": "command", "argument": f"{argument}?x=1", "mode": "server"}
    )
    a = build_backend(f"command-server:{argument}")
    b = build_backend({"name": "command-server", "argument": argument})
    per_item = build_backend(f"command:{argument} {{wav}}")
    try:
        assert a.fingerprint() == b.fingerprint()
        fp = json.loads(a.fingerprint())
        assert fp["mode"] == "server" and str(server_script.resolve()) in fp["files"]
        assert "mode" not in json.loads(per_item.fingerprint())
    finally:
        a.close()
        b.close()


def test_the_fingerprint_follows_the_script_and_the_sample_format(server_script: Path):
    backend = _backend(server_script)
    before = backend.fingerprint()
    backend.close()
    server_script.write_text(SERVER + "\n# edited\n")
    edited = _backend(server_script)
    floats = _backend(server_script, sample_format="float32")
    try:
        assert edited.fingerprint() != before
        assert floats.fingerprint() != edited.fingerprint()
        assert floats.transcribe([_audio(1600)])[0].endswith("FLOAT")
        assert edited.transcribe([_audio(1600)])[0].endswith("PCM_16")
    finally:
        edited.close()
        floats.close()


@pytest.mark.parametrize(
    ("length", "message", "restarted"),
    [
        (1602, "a line that is not JSON: 'decoding...'", True),
        (1603, r"not a JSON object: '\[1, 2\]'", True),
        (1604, "carries id '999', expected", True),
        (1608, 'has no "id"', True),
        (1605, '"text" must be a string, got 42', False),
        (1606, "could not decode it: cannot read this file", False),
        (1601, "exited with status 3; its last standard error: .*crashing on purpose", True),
    ],
)
def test_a_protocol_fault_fails_that_item_only(server_script, length, message, restarted):
    backend = _backend(server_script)
    try:
        first = _pid(backend.transcribe([_audio(1600)])[0])
        with pytest.raises(BackendError, match=r"command-server: request \d+: .*" + message):
            backend.transcribe([_audio(length)])
        after = backend.transcribe([_audio(1600)])[0]
        assert (_pid(after) != first) is restarted
        assert backend.restarts == int(restarted)
    finally:
        backend.close()


def test_a_hung_program_is_killed_with_its_children_on_timeout(server_script: Path):
    token = _token()
    backend = _backend(server_script, token, timeout_s=1)
    try:
        t0 = time.monotonic()
        with pytest.raises(BackendError, match="no answer within 1 s"):
            backend.transcribe([_audio(1607)])
        assert time.monotonic() - t0 < 10
        assert _wait_until_none(token) == []  # the program's children died with it
        assert backend.transcribe([_audio(1600)])[0].startswith("n=1600")
    finally:
        backend.close()


def test_restarts_are_bounded_then_the_run_stops(server_script: Path):
    backend = _backend(server_script, max_restarts=2)
    try:
        for k in range(3):  # three items in a row that each kill the program: each restarts it
            with pytest.raises(BackendError, match="exited with status 3"):
                backend.transcribe([_audio(1601, level=0.01 * k)])
        with pytest.raises(FatalBackendError, match="failed on 3 different items in a row"):
            backend.transcribe([_audio(1600)])
    finally:
        backend.close()


def test_retries_of_one_crashing_item_do_not_stop_the_run(server_script: Path):
    # The engine retries a failed item, and an utterance that crashes the program often
    # does so again: those attempts are one failure, so the item is recorded as failed and
    # the next one is decoded (it used to stop the run after max_restarts retries).
    backend = _backend(server_script, max_restarts=1)
    try:
        for _ in range(5):
            with pytest.raises(BackendError, match="exited with status 3"):
                backend.transcribe([_audio(1601)])
        assert backend.transcribe([_audio(1600)])[0].startswith("n=1600")
        assert backend.restarts == 5
    finally:
        backend.close()


def test_an_answer_resets_the_count_of_failures(server_script: Path):
    backend = _backend(server_script, max_restarts=1)
    try:
        for _ in range(4):
            with pytest.raises(BackendError, match="exited with status 3"):
                backend.transcribe([_audio(1601)])
            assert backend.transcribe([_audio(1600)])[0].startswith("n=1600")
        assert backend.restarts == 4
    finally:
        backend.close()


def test_cancel_kills_the_decode_in_flight(server_script: Path):
    import threading

    token = _token()
    backend = _backend(server_script, token, timeout_s=600)
    errors: list[BaseException] = []

    def decode() -> None:
        try:
            backend.transcribe([_audio(1607)])
        except BackendError as exc:
            errors.append(exc)

    worker = threading.Thread(target=decode)
    worker.start()
    deadline = time.monotonic() + 30
    while len(_processes_with(token)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    backend.cancel()  # what the run engine does when --item-timeout gives up on a decode
    worker.join(timeout=10)
    try:
        assert not worker.is_alive() and errors, "cancel() did not end the decode"
        assert _wait_until_none(token) == []
    finally:
        backend.close()


EXITS = "import sys\nprint('no model at /models/x', file=sys.stderr)\nsys.exit(2)\n"
SILENT = "import time\ntime.sleep(60)\n"
CHATTY = "print('hello, I am a recognizer')\n"


@pytest.mark.parametrize(
    ("code", "params", "message"),
    [
        (EXITS, {}, "exited with status 2; its last standard error: no model at /models/x"),
        (SILENT, {"start_timeout_s": 1}, r"no ready line within 1 s"),
        (CHATTY, {}, r"expected \{\"ready\": true\} as the first line.*'hello, I am a"),
    ],
)
def test_a_program_that_does_not_start_fails_when_built(tmp_path, code, params, message):
    script = tmp_path / "bad.py"
    script.write_text(code)
    with pytest.raises(ConfigError, match=message):
        _backend(script, **params)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "command", "argument": "cat {wav}", "mode": "server"}, "remove '{wav}'"),
        ({"name": "command", "argument": "cat", "mode": "daemon"}, "mode: expected 'per-item'"),
        ({"name": "command-server", "argument": "cat", "timeout_s": 0}, "timeout_s"),
        ({"name": "command-server", "argument": "cat", "sample_format": "mp3"}, "pcm16 or"),
        ({"name": "command-server", "argument": "cat", "retries": 2}, "unknown parameter"),
        ({"name": "command-server", "argument": "no-such-asr-server"}, "not found on PATH"),
        ({"name": "command-server"}, "expected the program to start"),
    ],
)
def test_a_bad_server_spec_fails_when_built(spec, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        build_backend(spec)


def test_validate_fails_where_run_would(tmp_path: Path):
    script = tmp_path / "bad.py"
    script.write_text(EXITS)
    pack = demo_subset_pack(
        tmp_path / "pack",
        demo_rows(groups=("us",), per_group=2),
        fairness={"min_speakers": 2},
    )
    spec = f"command-server:{sys.executable} {script}"
    run = ["run", str(pack), "--asr", spec, "--out", str(tmp_path / "run")]
    for args in (["validate", str(pack), "--asr", spec], run):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert "no model at /models/x" in result.output


PARENT = """
import sys
import numpy as np
from lastmile.asr import build_backend
backend = build_backend(sys.argv[1])
print("started", flush=True)
backend.transcribe([np.zeros(1607, dtype=np.float32)])
"""


def test_a_killed_lastmile_leaves_no_server_behind(server_script: Path):
    token = _token()
    spec = f"command-server:{sys.executable} {server_script} {token}"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, spec], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 30
        while len(_processes_with(token)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        # the parent (the token is in its spec), the program and its two sleeping children
        assert len(_processes_with(token)) == 4
        os.kill(parent.pid, signal.SIGKILL)  # no handler, no atexit: the watchdog's case
        parent.wait(timeout=10)
        assert _wait_until_none(token) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.timeout(180)
def test_a_real_run_through_a_server_records_one_program_per_worker(
    tmp_path: Path, server_script: Path
):
    rows = demo_rows(groups=("us",), per_group=2)
    pack = demo_subset_pack(
        tmp_path / "pack",
        rows,
        asr={"name": "command", "argument": f"{sys.executable} {server_script}", "mode": "server"},
        fairness={"min_speakers": 2},
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(pack), "--out", str(out), "-j", "1", "-q"])
    assert result.exit_code in (0, 1), result.output
    with (out / "items.csv").open() as fh:
        items = list(csv.DictReader(fh))
    assert items and all(r["hypothesis_raw"].startswith("n=") for r in items)
    assert len({_pid(r["hypothesis_raw"]) for r in items}) == 1
    run_json = json.loads((out / "run.json").read_text())
    assert json.loads(run_json["backend"]["fingerprint"])["mode"] == "server"


@pytest.mark.timeout(240)
def test_two_workers_each_run_one_program_and_none_outlives_the_run(
    tmp_path: Path, server_script: Path
):
    token = _token()
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    pack = demo_subset_pack(
        tmp_path / "pack",
        rows,
        asr=f"command-server:{sys.executable} {server_script} {token}",
        fairness={"min_speakers": 2},
    )
    out = tmp_path / "run"
    run = subprocess.Popen(
        [sys.executable, "-m", "lastmile.cli", "run", str(pack), "--out", str(out), "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    most = 0  # programs alive at once: the run's own backend is closed once workers decode
    deadline = time.monotonic() + 220
    while run.poll() is None and time.monotonic() < deadline:
        most = max(most, len(_processes_with(token)))
        time.sleep(0.05)
    _, stderr = run.communicate(timeout=30)
    assert run.returncode in (0, 1), stderr
    with (out / "items.csv").open() as fh:
        items = list(csv.DictReader(fh))
    assert len(items) == len(rows) and all(r["error"] == "" for r in items)
    assert len({_pid(r["hypothesis_raw"]) for r in items}) in (1, 2)  # one per worker
    assert most in (1, 2), most
    assert _wait_until_none(token) == []


def test_a_chatty_program_cannot_fill_the_disk(server_script: Path, monkeypatch):
    from lastmile.asr import command_server

    monkeypatch.setattr(command_server, "_LOG_LIMIT_BYTES", 1_500_000)
    backend = _backend(server_script)
    try:
        log = Path(backend._tmp) / "stderr.log"
        sizes = []
        for _ in range(4):  # 1 MiB of standard error each
            assert backend.transcribe([_audio(1609)])[0].startswith("n=1609")
            sizes.append(log.stat().st_size)
        assert max(sizes) < 2_200_000, sizes
        # the log still holds what the program says last
        with pytest.raises(BackendError, match="crashing on purpose"):
            backend.transcribe([_audio(1601)])
    finally:
        backend.close()


def test_a_closed_backend_starts_again_when_used(server_script: Path):
    backend = _backend(server_script)
    first = _pid(backend.transcribe([_audio(1600)])[0])
    backend.close()
    try:
        assert _pid(backend.transcribe([_audio(1600)])[0]) != first
    finally:
        backend.close()


HANGS = r"""
import json, subprocess, sys
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    subprocess.Popen(["sleep", f"300.{sys.argv[1]}"]).wait()
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["--item-timeout", "timeout_s"])
def test_a_hung_server_in_a_real_run_stops_it_and_leaves_nothing(tmp_path: Path, how: str):
    """The engine's --item-timeout (cancel(), then a new backend) and the backend's own
    timeout_s (kill, restart, and after max_restarts failures in a row, stop the run)."""
    token = _token()
    script = tmp_path / "hangs.py"
    script.write_text(HANGS)
    asr = {"name": "command-server", "argument": f"{sys.executable} {script} {token}"}
    if how == "timeout_s":
        asr |= {"timeout_s": 1, "max_restarts": 1}
    pack = demo_subset_pack(
        tmp_path / "pack",
        demo_rows(groups=("us",), per_group=2),
        asr=asr,
        fairness={"min_speakers": 2},
    )
    run = ["run", str(pack), "--out", str(tmp_path / "run"), "-j", "1", "-q", "--no-cache"]
    if how == "--item-timeout":
        run += ["--item-timeout", "1"]
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "lastmile.cli", *run],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    expected = (
        "longer than 1 s per item" if how == "--item-timeout" else "2 different items in a row"
    )
    assert expected in done.stderr, done.stderr
    assert time.monotonic() - t0 < 90  # not the 300 s its children sleep
    assert _wait_until_none(token) == []


def test_a_relative_program_is_taken_from_the_packs_folder(tmp_path: Path, monkeypatch):
    folder = tmp_path / "pack"
    pack = demo_subset_pack(
        folder,
        demo_rows(groups=("us",), per_group=2),
        asr="command-server:./bin/server.py",
        fairness={"min_speakers": 2},
    )
    program = folder / "bin" / "server.py"
    program.parent.mkdir()
    program.write_text(f"#!{sys.executable}\n" + SERVER)
    program.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["validate", str(pack)])
    assert result.exit_code == 0, result.output
