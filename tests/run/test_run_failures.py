"""A run that mostly failed is not a result: it exits 3 and names its errors."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from plugin_backends import RAISES, install_plugin

from lastmile.cli import cli
from lastmile.errors import ConfigError, FatalBackendError, RunFailed
from lastmile.run import RunOptions, run_pack
from lastmile.scenario.pack import load_pack

from helpers import demo_rows, demo_subset_pack


def _pack(folder: Path, **fields) -> Path:
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    fields.setdefault("conditions", [{"noise": "pink", "snr_db": 5}])
    return demo_subset_pack(folder, rows, fairness={"min_speakers": 2}, **fields)


class _FailsOnNoise:
    """An in-process backend that raises on noisy audio: half the items fail."""

    name = "fails-on-noise"
    sample_rate = 16000

    def fingerprint(self) -> str:
        return "fails-on-noise/1"

    def transcribe(self, batch):
        if any(np.sqrt(np.mean(a[:640] ** 2)) > 1e-3 for a in batch):
            raise RuntimeError("cannot decode noisy audio")
        return ["take one capsule twice a day"] * len(batch)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "items.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_pack_setting_is_validated_and_defaults_to_a_fifth(tmp_path: Path):
    assert load_pack(_pack(tmp_path / "a")).pack.run.max_failed_share == 0.2
    with pytest.raises(ConfigError, match=r"run\.max_failed_share: .*less than or equal to 1"):
        load_pack(_pack(tmp_path / "b", run={"max_failed_share": 1.5}))
    with pytest.raises(ConfigError, match=r"run\.max_share: unknown key"):
        load_pack(_pack(tmp_path / "c", run={"max_share": 0.5}))


def test_half_failed_fails_the_run_under_the_default_but_keeps_every_item(tmp_path: Path):
    pack = _pack(tmp_path / "p")
    out = tmp_path / "run"
    with pytest.raises(RunFailed) as info:
        run_pack(
            pack,
            RunOptions(out=out, use_cache=False, retries=0, examples_per_condition=0),
            backend=_FailsOnNoise(),
        )
    message = str(info.value)
    assert message.startswith("4 of 8 items failed (50%), more than the pack's ")
    assert "run.max_failed_share (20%)" in message
    assert "\n  4 × RuntimeError: cannot decode noisy audio at test_run_failures.py:" in message
    assert str(out / "items.csv") in message
    # nothing lost: every item is written, the failed ones with their error
    rows = _rows(out)
    assert len(rows) == 8
    assert sum(bool(r["error"]) for r in rows) == 4
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "failed"
    assert meta["counts"]["failed"] == 4
    assert meta["failures"]["share"] == 0.5
    assert meta["failures"]["errors"][0]["count"] == 4
    assert not (out / "summary.json").exists()


def test_a_pack_may_accept_a_larger_share_of_failures(tmp_path: Path):
    pack = _pack(tmp_path / "p", run={"max_failed_share": 0.5})
    result = run_pack(
        pack,
        RunOptions(out=tmp_path / "run", use_cache=False, retries=0, examples_per_condition=0),
        backend=_FailsOnNoise(),
    )
    assert result.n_failed == 4  # 4 of 8 is not more than half: a result
    meta = json.loads((result.run_dir / "run.json").read_text())
    assert meta["status"] == "ok"
    assert (result.run_dir / "summary.json").is_file()


def test_no_failure_allowed_at_zero(tmp_path: Path):
    pack = _pack(tmp_path / "p", run={"max_failed_share": 0})

    class OneFails(_FailsOnNoise):
        calls = 0

        def transcribe(self, batch):
            # the first noisy item of the run fails, every other item decodes
            if len(batch) == 1 and np.sqrt(np.mean(batch[0][:640] ** 2)) > 1e-3:
                OneFails.calls += 1
                if OneFails.calls == 1:
                    raise RuntimeError("one bad item")
            elif len(batch) > 1:
                raise RuntimeError("batch: decode one at a time")
            return ["take one capsule twice a day"]

    with pytest.raises(RunFailed, match=r"^1 of 8 items failed \(12%\)"):
        run_pack(
            pack,
            RunOptions(out=tmp_path / "run", use_cache=False, retries=0),
            backend=OneFails(),
        )


@pytest.mark.timeout(300)
def test_a_plugin_that_raises_on_every_item_exits_3_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    install_plugin(tmp_path / "site", monkeypatch, "raises", RAISES, "Raises")
    pack = _pack(tmp_path / "p")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["run", str(pack), "--asr", "raises", "--out", str(out), "--workers", "1", "--no-cache"],
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.output
    assert "8 of 8 items failed (100%)" in result.output
    assert "8 × RuntimeError: the model file is corrupt at raises_asr.py:" in result.output
    assert len(_rows(out)) == 8
    # the same through two worker processes
    out2 = tmp_path / "run2"
    result = CliRunner().invoke(
        cli,
        ["run", str(pack), "--asr", "raises", "--out", str(out2), "-j", "2", "--no-cache", "-q"],
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.output
    assert "8 of 8 items failed (100%)" in result.output


def test_a_recognizer_that_does_not_exist_never_passes(tmp_path: Path):
    pack = _pack(tmp_path / "p")
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(pack),
            "--asr",
            "command:/nonexistent/asr {wav}",
            "--out",
            str(tmp_path / "run"),
            "--workers",
            "1",
            "--no-cache",
        ],
        catch_exceptions=False,
    )
    # the backend refuses a program that is not there when it is built (a bad --asr: 2);
    # were it found out item by item, the failed share would give 3. Never 0 or 1.
    assert result.exit_code in (2, 3), result.output
    assert "/nonexistent/asr" in result.output
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_command_backend_that_fails_on_every_item_exits_3(tmp_path: Path):
    pack = _pack(tmp_path / "p")
    script = tmp_path / "broken_asr.py"
    script.write_text("import sys\nsys.exit('no licence for this model')\n")
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(pack),
            "--asr",
            f"command:{sys.executable} {script} {{wav}}",
            "--out",
            str(tmp_path / "run"),
            "--workers",
            "1",
            "--no-cache",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.output
    assert "8 of 8 items failed (100%)" in result.output
    assert "no licence for this model" in result.output


class _RefusedKey:
    """An in-process backend whose service refuses the key: every item would fail alike."""

    name = "refused"
    sample_rate = 16000
    calls = 0

    def fingerprint(self) -> str:
        return "refused/1"

    def transcribe(self, batch):
        _RefusedKey.calls += 1
        raise FatalBackendError("refused: the service refused the API key (401)")


def test_a_fatal_backend_error_stops_the_run_at_once(tmp_path: Path):
    pack = _pack(tmp_path / "p")
    with pytest.raises(FatalBackendError, match="refused the API key"):
        run_pack(pack, RunOptions(out=tmp_path / "run", use_cache=False), backend=_RefusedKey())
    assert _RefusedKey.calls == 1  # not retried, not tried on the other items


FATAL = """
from lastmile.errors import FatalBackendError


class Fatal:
    name = "fatal"
    sample_rate = 16000

    @classmethod
    def from_spec(cls, spec):
        return cls()

    def fingerprint(self):
        return "fatal/1"

    def transcribe(self, batch):
        raise FatalBackendError("fatal: the service refused the API key (401)")
"""


@pytest.mark.timeout(300)
def test_a_fatal_backend_error_in_a_worker_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    install_plugin(tmp_path / "site", monkeypatch, "fatal", FATAL, "Fatal")
    pack = _pack(tmp_path / "p")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["run", str(pack), "--asr", "fatal", "--out", str(out), "-j", "2", "--no-cache", "-q"],
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.output
    assert "refused the API key" in result.output


def test_retries_sets_how_often_a_failed_item_is_decoded_again(tmp_path: Path):
    # A real program that fails on every call and counts its calls. Each utterance's items go
    # to the backend as one batch first (the batch fails at its first item), then item by
    # item, each decoded 1 + --retries times before it is recorded as failed.
    pack = _pack(tmp_path / "p", run={"max_failed_share": 1.0})
    counts = {}
    for retries in (0, 3):
        calls = tmp_path / f"calls{retries}.txt"
        script = tmp_path / f"counting_asr{retries}.py"
        script.write_text(
            f"import sys\nwith open({str(calls)!r}, 'a') as fh:\n    fh.write('x')\n"
            "sys.exit('cannot decode')\n"
        )
        out = tmp_path / f"run{retries}"
        args = ["run", str(pack), "--asr", f"command:{sys.executable} {script} {{wav}}"]
        args += ["--out", str(out), "-j", "1", "--no-cache", "--retries", str(retries)]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        rows = _rows(out)
        assert len(rows) == 8 and all(row["error"] for row in rows)
        counts[retries] = len(calls.read_text())
    assert counts[0] == 8 + 4  # each item once, and each of the 4 utterances' batch once
    assert counts[3] - counts[0] == 8 * 3


def test_errors_that_differ_only_in_their_numbers_are_counted_as_one_kind(tmp_path: Path):
    # each item's error names its own request (here the clip's size in bytes): one kind of
    # failure, listed once with its count, not 8 "distinct" errors
    pack = _pack(tmp_path / "p")
    script = tmp_path / "numbered_asr.py"
    script.write_text(
        "import os, sys\nsys.exit(f'request {os.path.getsize(sys.argv[1])}: no licence')\n"
    )
    args = ["run", str(pack), "--asr", f"command:{sys.executable} {script} {{wav}}"]
    args += ["--out", str(tmp_path / "run"), "-j", "1", "--no-cache", "--retries", "0"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 3, result.output
    sizes = {row["error"] for row in _rows(tmp_path / "run")}
    assert len(sizes) > 1  # the items' own errors differ
    assert "  8 × " in result.output and ": no licence (the first of them)" in result.output
    assert "other errors" not in result.output
    failures = json.loads((tmp_path / "run" / "run.json").read_text())["failures"]["errors"]
    assert len(failures) == 1 and failures[0]["count"] == 8


def test_an_item_is_tried_once_plus_its_retries():
    # The worker's rule: a batch that fails is tried item by item; a batch of one item was that
    # item's first try already. Either way a failing item is tried alone at most 1 + retries
    # times after its batch (a batch of several cannot say whose failure it was).
    from types import SimpleNamespace

    from lastmile.run.worker import _decode

    calls: list[int] = []

    def transcribe(batch):
        calls.append(len(batch))
        raise RuntimeError("cannot decode")

    for retries in (0, 2):
        ctx = SimpleNamespace(backend=object(), transcribe=transcribe, retries=retries)
        calls.clear()
        hyps, errors = _decode(ctx, [np.zeros(160)])
        assert hyps == [None] and errors[0].startswith("RuntimeError: cannot decode")
        assert calls == [1] * (1 + retries)  # the batch of one, then its retries
        calls.clear()
        hyps, errors = _decode(ctx, [np.zeros(160), np.ones(160)])
        assert hyps == [None, None] and all(errors)
        assert calls == [2] + [1] * (2 * (1 + retries))  # the batch, then each alone
