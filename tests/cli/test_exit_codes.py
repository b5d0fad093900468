"""Exit codes mean what the README says, under every storage fault: 0 clean, 1 flagged, 2 bad
input, 3 runtime failure (one line naming what failed and where), 130 interrupted.

The runs use a tiny pack over the shipped demo corpus and a `command:` backend (a small Python
script that prints a fixed text), so the faults, not the recognizer, are what is tested.
Read-only files and folders are made so for root too: the child process gives up the
capabilities that let root write anyway. A full disk is a file size limit (EFBIG) in the child.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from tests.helpers import demo_rows, demo_subset_pack

from lastmile.cli import cli
from lastmile.run.store import default_cache_path, inspect_cache

ASR_TEXT = "she is allergic to penicillin"


# -- helpers -----------------------------------------------------------------------------------


def _leaf_commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _leaf_commands(cmd, prefix=f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


LEAF_COMMANDS = sorted(name for name, _ in _leaf_commands(cli))


def _required_args(cmd: click.Command, scratch: Path) -> list[str]:
    """Values that parse for every required parameter of ``cmd`` (its callback is replaced)."""
    out: list[str] = []
    for param in cmd.params:
        if not param.required:
            continue
        if isinstance(param.type, click.Path):
            value = str(scratch)
            if not param.type.dir_okay:  # an existing file
                value = str(scratch / "file.wav")
                Path(value).write_bytes(b"")
        elif isinstance(param.type, click.Choice):
            value = str(param.type.choices[0])
        elif isinstance(param.type, click.types.IntParamType | click.types.FloatParamType):
            value = "1"
        else:
            value = "x"
        if isinstance(param, click.Argument):
            out.append(value)
        else:
            out += [param.opts[0], value]
    return out


def _invoke(args: list[str], **kwargs: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, **kwargs)


def _lastmile(
    args: list[str],
    *,
    preexec_fn: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """``lastmile ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "lastmile.cli", *[str(a) for a in args]],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
        env={**os.environ, **(env or {})},
    )


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


_BATCH = """
import json, sys
from click.testing import CliRunner
from lastmile.cli import cli
out = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(cli, args)
    out.append([r.exit_code, r.stdout, r.stderr])
sys.stdout.write(json.dumps(out))
"""


def _outcome(result: Result) -> Outcome:
    return Outcome(result.exit_code, result.stdout, result.stderr)


def _read_only_cli(*commands: list[Any]) -> list[Outcome]:
    """Each of ``commands`` (``lastmile`` arguments) run by click's runner where read-only
    files and folders stay read-only: in this process, or, as root, in one child process
    that cannot override file modes."""
    arg_lists = [[str(a) for a in args] for args in commands]
    if os.geteuid() != 0:
        return [_outcome(_invoke(args)) for args in arg_lists]
    proc = subprocess.run(
        [sys.executable, "-c", _BATCH, json.dumps(arg_lists)],
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=_no_write_override,
    )
    assert proc.returncode == 0, proc.stderr
    return [Outcome(*row) for row in json.loads(proc.stdout)]


def _no_write_override() -> None:
    """In a child process: give up the capabilities that let root write into read-only
    files and folders (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), so read-only
    means read-only for root too. Nothing to do for other users."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _file_size_limit(limit_bytes: int) -> Callable[[], None]:
    """In a child process: files cannot grow past ``limit_bytes`` (writes fail with EFBIG,
    SIGXFSZ is ignored), a disk that fills up."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def _one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, text
    assert "Traceback" not in text, text
    return lines[0]


def _item_ids(run_dir: Path) -> list[str]:
    with (run_dir / "items.csv").open(newline="", encoding="utf-8") as fh:
        return [row["item_id"] for row in csv.DictReader(fh)]


def _store_count(store: Path) -> int:
    try:
        with sqlite3.connect(store) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.fixture
def asr_script(tmp_path: Path) -> Path:
    script = tmp_path / "fixed_asr.py"
    script.write_text(
        "import os, time\n"
        "time.sleep(float(os.environ.get('FIXED_ASR_SLEEP_S', '0')))\n"
        f"print({ASR_TEXT!r})\n"
    )
    return script


def _pack(folder: Path, script: Path, *, per_group: int = 1, snrs: list[int] | None = None) -> Path:
    rows = demo_rows(groups=("us", "gb-rp"), per_group=per_group)
    return demo_subset_pack(
        folder,
        rows,
        conditions=[{"noise": "pink", "snr_db": snrs or [10]}],
        asr={
            "name": "command",
            "argument": f"{sys.executable} -I {script} {{wav}}",
            "sample_rate": 8000,
        },
    )


@pytest.fixture
def pack(tmp_path: Path, asr_script: Path) -> Path:
    """2 utterances × (clean + pink 10 dB) = 4 items."""
    return _pack(tmp_path / "pack", asr_script)


@pytest.fixture
def cache_file() -> Path:
    path = default_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    return path


# -- every command: unexpected errors, Ctrl-C, --debug -------------------------------------------


def test_every_command_is_covered():
    assert {"run", "demo", "validate", "report", "render", "schema", "cache info"} <= set(
        LEAF_COMMANDS
    )
    assert any(n.startswith("capture ") for n in LEAF_COMMANDS)
    assert any(n.startswith("profiles ") for n in LEAF_COMMANDS)
    assert "asr list" in LEAF_COMMANDS


@pytest.mark.parametrize("name", LEAF_COMMANDS)
@pytest.mark.parametrize(
    "fault, code, expected",
    [
        (ValueError("boom at step 3\nsecond line"), 3, "unexpected ValueError: boom at step 3"),
        (
            OSError(errno.ENOSPC, "No space left on device", "/data/out/items.csv"),
            3,
            "/data/out/items.csv: No space left on device",
        ),
        (
            PermissionError(errno.EROFS, "Read-only file system", "/data/out"),
            3,
            "/data/out: Read-only file system",
        ),
        (sqlite3.OperationalError("database or disk is full"), 3, "database or disk is full"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
    ids=["unexpected", "no-space", "read-only", "sqlite", "ctrl-c"],
)
def test_every_command_maps_failures_to_exit_codes(
    name: str,
    fault: BaseException,
    code: int,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    cmd = dict(_leaf_commands(cli))[name]

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise fault

    monkeypatch.setattr(cmd, "callback", fail)
    result = _invoke([*name.split(), *_required_args(cmd, tmp_path)])
    assert result.exit_code == code, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    if code == 130:  # no run was started (the real one: test_ctrl_c_exits_130_...)
        assert "--resume" not in result.output
    if code == 3:
        line = _one_error_line(result.output)
        assert expected in line
        if isinstance(fault, ValueError):
            # where: the file and line of the failure, and how to see more
            assert "test_exit_codes.py:" in line and "--debug" in line
            assert "second line" in line  # one line: the message's lines are joined


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(how: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    cmd = dict(_leaf_commands(cli))["schema"]

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(cmd, "callback", fail)
    if how == "flag":
        result = _invoke(["--debug", "schema"])
    else:
        result = _invoke(["schema"], env={"LASTMILE_DEBUG": "1"})
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.output
    assert "ValueError: boom" in result.output
    assert "Error: unexpected ValueError: boom" in result.output


def test_lastmile_errors_keep_their_codes(pack: Path, tmp_path: Path):
    # bad input: 2, with the message and no traceback
    result = _invoke(["run", tmp_path / "missing.yaml", "--out", tmp_path / "r", "-q"])
    assert result.exit_code == 2, result.output
    assert "missing.yaml" in result.output and "Traceback" not in result.output
    # usage error: 2
    result = _invoke(["run", pack, "--workers", "many"])
    assert result.exit_code == 2


@pytest.mark.parametrize("command", ["run", "render"])
def test_out_that_is_a_file_is_bad_input(command: str, pack: Path, tmp_path: Path):
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    args = ["-c", "clean", "-u", "x"] if command == "render" else []
    result = _invoke([command, pack, *args, "--out", taken])
    assert result.exit_code == 2, result.output
    assert f"--out {taken}: is a file, not a folder" in _one_error_line(result.output)
    assert taken.read_text() == "mine"


@pytest.mark.timeout(120)
def test_unparsable_backend_parameter_is_bad_input(pack: Path, tmp_path: Path):
    result = _invoke(
        ["run", pack, "--asr", "faster-whisper?beam_size=abc", "--out", tmp_path / "r", "-q"]
    )
    assert result.exit_code == 2, result.output
    assert "beam_size" in result.output and "Traceback" not in result.output


# -- rich markup in what the user typed ------------------------------------------------------


@pytest.mark.timeout(120)
def test_rich_markup_in_out_path_and_group_names_is_printed_as_is(tmp_path: Path, asr_script: Path):
    rows = demo_rows(groups=("us", "gb-rp"), per_group=1)
    rows[0]["accent"] = "[bold]us[/bold]"
    rows[1]["accent"] = "[/red]gb"
    pack = demo_subset_pack(
        tmp_path / "p",
        rows,
        conditions=[{"noise": "pink", "snr_db": 10}],
        asr={"name": "command", "argument": f"{sys.executable} -I {asr_script} {{wav}}"},
    )
    out = tmp_path / "runs" / "[/bold]x[red] :smile:"
    result = _invoke(["run", pack, "--out", out, "-j", "1"])
    assert result.exit_code == 0, result.output
    flat = result.output.replace("\n", "")
    assert str(out) in flat
    assert "[bold]us[/bold]" in flat and "[/red]gb" in flat
    assert (out / "summary.json").is_file()
    # the report command prints the same folder as is
    result = _invoke(["report", out, "--no-html"])
    assert result.exit_code == 0, result.output
    assert str(out / "summary.json") in result.output.replace("\n", "")


def test_rich_markup_in_a_profiles_folder_is_printed_as_is(tmp_path: Path):
    from lastmile.resources import shipped_dir

    folder = tmp_path / "[bold]site"
    folder.mkdir()
    source = sorted(shipped_dir("noise_profiles").glob("*.yaml"))[0]
    (folder / "[red]mine.yaml").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    result = _invoke(["profiles", "list", "--profiles-dir", folder])
    assert result.exit_code == 0, result.output
    assert "[red]mine" in result.output and "[bold]site" in result.output


# -- the transcript cache --------------------------------------------------------------------


def _damage_cache(path: Path, how: str, *, entries: int = 40) -> None:
    """Write a cache with ``entries`` rows, then damage it ``how``."""
    if how == "corrupt":
        path.write_bytes(os.urandom(5000))
        return
    conn = sqlite3.connect(path)
    if how == "another-program":
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('not lastmile')")
    elif how == "foreign-schema":
        conn.execute("CREATE TABLE transcripts (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO transcripts (text) VALUES ('not lastmile')")
    else:
        conn.execute(
            "CREATE TABLE transcripts (key TEXT NOT NULL, backend TEXT NOT NULL, "
            "record TEXT NOT NULL, created REAL, PRIMARY KEY (key, backend))"
        )
        conn.executemany(
            "INSERT INTO transcripts VALUES (?, 'b', ?, 0)",
            [(f"k{i}", "x" * 500) for i in range(entries)],
        )
    conn.commit()
    conn.close()
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "read-only":
        path.chmod(0o444)


CACHE_FAULTS = ["corrupt", "truncated", "foreign-schema", "another-program", "read-only"]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", CACHE_FAULTS)
def test_run_moves_a_damaged_cache_aside_once_and_goes_on(
    how: str, pack: Path, tmp_path: Path, cache_file: Path
):
    _damage_cache(cache_file, how)
    damaged = cache_file.read_bytes()
    out = tmp_path / "run"
    args = ["run", pack, "--out", out, "-j", "1", "-q"]
    (proc,) = _read_only_cli(args) if how == "read-only" else [_outcome(_invoke(args))]
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "transcript cache" in line]
    assert len(warnings) == 1, proc.stderr
    assert str(cache_file) in warnings[0] and "moved it aside" in warnings[0]
    aside = sorted(cache_file.parent.glob(cache_file.name + ".broken-*"))
    assert [p.read_bytes() for p in aside if not p.name.endswith(("-wal", "-shm"))] == [damaged]
    assert len(_item_ids(out)) == 4
    # the fresh cache took the run's transcripts
    info = inspect_cache(cache_file)
    assert info["state"] == "ok" and info["entries"] == 4


@pytest.mark.timeout(180)
def test_demo_moves_a_damaged_cache_aside_once_and_goes_on(
    asr_script: Path, tmp_path: Path, cache_file: Path
):
    _damage_cache(cache_file, "corrupt")
    out = tmp_path / "demo"
    asr = f"command:{sys.executable} -I {asr_script} {{wav}}"
    result = _invoke(["demo", "--asr", asr, "--limit", "1", "--out", out, "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "transcript cache" in line]
    assert len(warnings) == 1 and "moved it aside" in warnings[0], result.stderr
    n_items = len(_item_ids(out))
    assert n_items >= 2 and inspect_cache(cache_file)["entries"] == n_items


@pytest.mark.parametrize("how", CACHE_FAULTS)
def test_cache_info_and_clear_work_on_a_damaged_cache(how: str, cache_file: Path):
    _damage_cache(cache_file, how)
    before = cache_file.read_bytes()
    if how == "read-only":  # info reads, then clear (the file is read-only for both)
        info, cleared = _read_only_cli(["cache", "info"], ["cache", "clear"])
    else:
        info = _outcome(_invoke(["cache", "info"]))
        assert cache_file.read_bytes() == before  # info only reads
        cleared = _outcome(_invoke(["cache", "clear"]))
    assert info.returncode == 0, info.stderr
    if how != "read-only":  # a read-only cache reads fine: it is found out on writing
        assert "state=damaged" in info.stdout
        assert "lastmile cache clear" in info.stderr
    assert cleared.returncode == 0, cleared.stderr
    assert "damaged cache file(s) set aside" in cleared.stdout
    assert not list(cache_file.parent.glob(cache_file.name + ".broken-*"))
    after = inspect_cache(cache_file)
    assert after["state"] == "ok" and after["entries"] == 0 and after["set_aside"] == []


@pytest.mark.timeout(180)
def test_a_cache_folder_that_cannot_be_written_means_no_cache(
    pack: Path, tmp_path: Path, cache_file: Path
):
    cache_file.parent.chmod(0o555)
    try:
        proc, clear = _read_only_cli(
            ["run", pack, "--out", tmp_path / "run", "-j", "1", "-q"], ["cache", "clear"]
        )
    finally:
        cache_file.parent.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "transcript cache" in line]
    assert len(warnings) == 1 and "goes on without a cache" in warnings[0], proc.stderr
    assert len(_item_ids(tmp_path / "run")) == 4
    assert not cache_file.exists()
    # clearing a cache that cannot be written is a runtime failure naming it
    assert clear.returncode == 3, clear.stderr
    assert str(cache_file) in _one_error_line(clear.stderr)


# -- the run store and the output folder -------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["corrupt", "truncated", "foreign-schema"])
def test_resume_of_a_damaged_store_is_bad_input_naming_it(how: str, pack: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert _invoke(["run", pack, "--out", out, "-q", "-j", "1", "--no-cache"]).exit_code == 0
    store = out / "store.sqlite"
    if how == "corrupt":
        store.write_bytes(os.urandom(8192))
    elif how == "truncated":
        with sqlite3.connect(store) as conn:  # enough rows for more than a few pages
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [(f"pad{i}", '"' + "x" * 400 + '"') for i in range(200)],
            )
        data = store.read_bytes()
        store.write_bytes(data[: len(data) // 2])
    else:
        store.unlink()
        with sqlite3.connect(store) as conn:
            conn.execute("CREATE TABLE items (id INTEGER, body TEXT)")
    result = _invoke(["run", pack, "--resume", out, "-q", "-j", "1", "--no-cache"])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert str(store) in line and "cannot be resumed" in line and "--out" in line


@pytest.mark.timeout(120)
def test_read_only_output_folder_exits_3_naming_it(pack: Path, tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    out = locked / "run"
    locked.chmod(0o555)
    try:
        run, render = _read_only_cli(
            ["run", pack, "--out", out, "-q"],
            ["render", pack, "-c", "clean", "-u", demo_rows(groups=("us",))[0]["id"], "--out", out],
        )
    finally:
        locked.chmod(0o755)
    for proc in (run, render):
        assert proc.returncode == 3, proc.stderr
        line = _one_error_line(proc.stderr)
        assert str(out) in line and "Permission denied" in line, line
    # a finished run whose folder became read-only: report cannot rewrite it
    assert _invoke(["run", pack, "--out", out, "-q", "-j", "1"]).exit_code == 0
    out.chmod(0o555)
    try:
        report, resume = _read_only_cli(["report", out], ["run", pack, "--resume", out, "-q"])
    finally:
        out.chmod(0o755)
    for proc in (report, resume):
        assert proc.returncode == 3, proc.stderr
        assert str(out) in _one_error_line(proc.stderr)


@pytest.mark.timeout(240)
def test_full_disk_exits_3_naming_the_store_and_resume_finishes_every_item_once(
    tmp_path: Path, asr_script: Path
):
    pack = _pack(tmp_path / "pack", asr_script, per_group=2, snrs=[10, 0])  # 12 items
    out = tmp_path / "run"
    full = _lastmile(
        ["run", pack, "--out", out, "-q", "-j", "1", "--no-cache"],
        preexec_fn=_file_size_limit(80 * 1024),
    )
    assert full.returncode == 3, full.stderr
    line = _one_error_line(full.stderr)
    assert str(out / "store.sqlite") in line and "--resume" in line, line
    stored = _store_count(out / "store.sqlite")
    assert 0 < stored < 12, stored
    assert not (out / "summary.json").exists()
    # space is freed: the resumed run decodes the rest, each item once
    resumed = _invoke(["run", pack, "--resume", out, "-q", "-j", "1", "--no-cache"])
    assert resumed.exit_code == 0, resumed.output
    ids = _item_ids(out)
    assert len(ids) == 12 and len(set(ids)) == 12
    assert _store_count(out / "store.sqlite") == 12


@pytest.mark.timeout(180)
def test_full_disk_while_writing_reports_names_the_file_and_report_rebuilds_them(
    pack: Path, tmp_path: Path
):
    out = tmp_path / "run"
    # the store and items.csv fit; report.html (plots and audio inside) does not
    full = _lastmile(
        ["run", pack, "--out", out, "-q", "-j", "1", "--no-cache"],
        preexec_fn=_file_size_limit(200 * 1024),
    )
    assert full.returncode == 3, full.stderr
    line = _one_error_line(full.stderr)
    assert str(out / "report.html") in line and "File too large" in line, line
    assert len(_item_ids(out)) == 4
    rebuilt = _invoke(["report", out])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert (out / "report.html").stat().st_size > 200 * 1024


# -- Ctrl-C ----------------------------------------------------------------------------------


def _sigint_default() -> None:
    """In the child before exec: Ctrl-C's default action, so that Python installs its handler
    even where these tests run with SIGINT ignored (a background job of a non-interactive
    shell inherits it so, and a process keeps an inherited SIG_IGN)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.timeout(240)
def test_ctrl_c_exits_130_and_the_run_resumes(tmp_path: Path, asr_script: Path):
    pack = _pack(tmp_path / "pack", asr_script, per_group=2, snrs=[10, 0])  # 12 items
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lastmile.cli",
            "run",
            str(pack),
            "--out",
            str(out),
            "-q",
            "-j",
            "1",
            "--no-cache",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FIXED_ASR_SLEEP_S": "0.4"},
        preexec_fn=_sigint_default,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _store_count(out / "store.sqlite") >= 2:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and f"--resume {out}" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    stored = _store_count(out / "store.sqlite")
    assert 2 <= stored < 12, (stored, stderr)
    resumed = _invoke(["run", pack, "--resume", out, "-q", "-j", "1", "--no-cache"])
    assert resumed.exit_code == 0, resumed.output
    ids = _item_ids(out)
    assert len(ids) == 12 and len(set(ids)) == 12


def test_read_only_really_is_read_only_in_the_child(tmp_path: Path):
    # the premise of the read-only tests: the child cannot write a 0444 file, even as root
    target = tmp_path / "ro.txt"
    target.write_text("x")
    target.chmod(0o444)
    proc = subprocess.run(
        [sys.executable, "-c", f"open({str(target)!r}, 'a').write('y')"],
        preexec_fn=_no_write_override,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Permission denied" in proc.stderr
    assert target.read_text() == "x"
