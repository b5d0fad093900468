"""A run folder holds one run: --resume refuses another plan and names what changed."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner
from plugin_backends import SLOW, install_plugin

from lastmile.cli import cli
from lastmile.errors import ConfigError
from lastmile.run import RunOptions, run_pack

from helpers import demo_rows, demo_subset_pack


class _Echo:
    """An in-process backend that hears the same sentence in everything."""

    name = "echo"
    sample_rate = 16000

    def __init__(self, version: str = "1") -> None:
        self.version = version

    def fingerprint(self) -> str:
        return f"echo/{self.version}"

    def transcribe(self, batch):
        return ["take one capsule twice a day"] * len(batch)


class _Interrupt(Exception):
    pass


def _stop_after(n: int):
    def on_progress(p) -> None:
        if p.done >= n:
            raise _Interrupt

    return on_progress


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, list[dict[str, str]], Path]:
    """A pack (2 groups × 2 speakers, clean + pink at 10 dB) and a run of it stopped after
    3 of its 8 items."""
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    pack = demo_subset_pack(
        tmp_path / "p",
        rows,
        seed=3,
        fairness={"min_speakers": 2},
        conditions=[{"noise": "pink", "snr_db": 10}],
    )
    out = tmp_path / "run"
    with pytest.raises(_Interrupt):
        run_pack(
            pack,
            RunOptions(out=out, use_cache=False, examples_per_condition=0),
            backend=_Echo(),
            on_progress=_stop_after(3),
        )
    return pack, rows, out


def _edit_pack(pack: Path, **changes) -> None:
    data = yaml.safe_load(pack.read_text())
    data.update(changes)
    pack.write_text(yaml.safe_dump(data, sort_keys=False))


def _resume(pack: Path, out: Path, backend=None, **options):
    return run_pack(
        pack,
        RunOptions(resume=out, use_cache=False, examples_per_condition=0, **options),
        backend=backend or _Echo(),
    )


def _rewrite_manifest(pack: Path, rows: list[dict[str, str]]) -> None:
    with (pack.parent / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_same_pack_resumes_and_counts_every_item_once(setup):
    pack, _, out = setup
    stored = json.loads((out / "run.json").read_text())
    assert stored["complete"] is False
    assert len(stored["identity"]["sha256"]) == 64
    result = _resume(pack, out)
    assert result.n_items == 8
    with (out / "items.csv").open(newline="") as fh:
        ids = [r["item_id"] for r in csv.DictReader(fh)]
    assert len(ids) == len(set(ids)) == 8
    meta = json.loads((out / "run.json").read_text())
    assert meta["complete"] is True
    assert meta["identity"] == stored["identity"]


def test_an_edited_snr_is_refused_naming_the_conditions(setup):
    pack, _, out = setup
    before = (out / "store.sqlite").read_bytes()
    _edit_pack(pack, conditions=[{"noise": "pink", "snr_db": 5}])
    with pytest.raises(ConfigError) as info:
        _resume(pack, out)
    assert "conditions changed: pink_snr10 → pink_snr5" in str(info.value)
    assert str(out) in str(info.value)
    # nothing was changed in the folder: the original pack still resumes
    assert (out / "store.sqlite").read_bytes() == before
    _edit_pack(pack, conditions=[{"noise": "pink", "snr_db": 10}])
    assert _resume(pack, out).n_items == 8


def test_a_same_id_with_another_spec_is_refused(setup):
    pack, _, out = setup
    _edit_pack(pack, conditions=[{"noise": "pink", "snr_db": 10, "reverb": {"rt60_s": 0.4}}])
    with pytest.raises(ConfigError, match="conditions changed: pink_snr10 → pink_snr10_rt0p4"):
        _resume(pack, out)
    _edit_pack(pack, conditions=[{"id": "pink_snr10", "noise": "brown", "snr_db": 10}])
    with pytest.raises(
        ConfigError,
        match=r'condition pink_snr10 changed \(same id, another spec: noise.type "pink" → "brown"',
    ):
        _resume(pack, out)
    _edit_pack(pack, conditions=[{"id": "pink_snr10", "noise": "pink", "snr_db": 5}])
    with pytest.raises(ConfigError, match=r"another spec: snr_db 10(\.0)? → 5"):
        _resume(pack, out)


def test_a_transcript_fix_is_refused_naming_the_utterance(setup):
    pack, rows, out = setup
    fixed = [dict(r) for r in rows]
    fixed[1]["text"] = fixed[1]["text"].rstrip(".") + " please."
    _rewrite_manifest(pack, fixed)
    with pytest.raises(ConfigError, match=f"transcript of {rows[1]['id']} changed"):
        _resume(pack, out)


def test_changed_audio_speaker_and_group_are_named(setup, tmp_path: Path):
    pack, rows, out = setup
    changed = [dict(r) for r in rows]
    copy = tmp_path / "other.flac"
    shutil.copy(rows[2]["audio"], copy)  # another utterance's recording
    changed[0]["audio"] = str(copy)
    changed[1]["speaker"] = "someone-else"
    changed[3]["accent"] = "scottish"
    _rewrite_manifest(pack, changed)
    with pytest.raises(ConfigError) as info:
        _resume(pack, out)
    message = str(info.value)
    assert f"audio of {rows[0]['id']} changed" in message
    assert f"speaker of {rows[1]['id']} changed" in message
    assert f"group of {rows[3]['id']} changed" in message
    # the same recording copied elsewhere is the same audio: only the path differs
    same = [dict(r) for r in rows]
    copy2 = tmp_path / "same.flac"
    shutil.copy(rows[0]["audio"], copy2)
    same[0]["audio"] = str(copy2)
    _rewrite_manifest(pack, same)
    assert _resume(pack, out).n_items == 8


def test_seed_normalizer_backend_and_selection_are_named(setup):
    pack, _, out = setup
    _edit_pack(pack, seed=4)
    with pytest.raises(ConfigError, match="seed changed: 3 → 4"):
        _resume(pack, out)
    _edit_pack(pack, seed=3, normalizer="whisper")
    with pytest.raises(ConfigError, match="normalizer changed: default → whisper"):
        _resume(pack, out)
    _edit_pack(pack, normalizer="default")
    with pytest.raises(ConfigError, match="backend changed: echo/1 → echo/2"):
        _resume(pack, out, backend=_Echo("2"))
    # a long fingerprint is cut short
    with pytest.raises(ConfigError, match=r"backend changed: echo/1 → echo/1/x{50}\.\.\.\)"):
        _resume(pack, out, backend=_Echo("1/" + "x" * 80))
    changed = r"utterances changed: 2 no longer selected .*--limit None → 2"
    with pytest.raises(ConfigError, match=changed):
        _resume(pack, out, limit=2)


@pytest.mark.timeout(300)
def test_the_cli_refuses_an_edited_pack_with_exit_2(tmp_path: Path, monkeypatch):
    install_plugin(tmp_path / "site", monkeypatch, "slow", SLOW.replace("SLOW_S", "0.0"), "Slow")
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    pack = demo_subset_pack(
        tmp_path / "p",
        rows,
        fairness={"min_speakers": 2},
        conditions=[{"noise": "pink", "snr_db": 10}],
    )
    out = tmp_path / "run"
    args = ["--asr", "slow", "--workers", "1", "--no-cache", "-q"]
    first = CliRunner().invoke(
        cli, ["run", str(pack), "--out", str(out), *args], catch_exceptions=False
    )
    assert first.exit_code in (0, 1), first.output
    _edit_pack(pack, conditions=[{"noise": "pink", "snr_db": 5}])
    again = CliRunner().invoke(
        cli, ["run", str(pack), "--resume", str(out), *args], catch_exceptions=False
    )
    assert again.exit_code == 2, again.output
    assert "conditions changed: pink_snr10 → pink_snr5" in again.output
    with (out / "items.csv").open(newline="") as fh:
        assert {r["condition_id"] for r in csv.DictReader(fh)} == {"clean", "pink_snr10"}


def test_a_long_change_is_shown_where_it_differs():
    from lastmile.run.identity import identity_changes

    base = {"version": 1, "backend": '{"command": "' + "/opt/asr/bin/decoder " * 5 + '", "v": 1}'}
    now = {**base, "backend": base["backend"].replace('"v": 1', '"v": 2')}
    (change,) = identity_changes(base, now)
    assert change == 'backend changed: ...ecoder ", "v": 1} → ...ecoder ", "v": 2}'


def test_an_edited_noise_file_is_named(tmp_path: Path):
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    folder = tmp_path / "p"
    folder.mkdir()
    noise = folder / "ward.wav"
    sf.write(noise, np.random.default_rng(0).normal(0, 0.1, 32000), 16000)
    pack = demo_subset_pack(
        folder,
        rows,
        fairness={"min_speakers": 2},
        conditions=[{"noise": {"file": "ward.wav"}, "snr_db": 10}],
    )
    out = tmp_path / "run"
    with pytest.raises(_Interrupt):
        run_pack(
            pack,
            RunOptions(out=out, use_cache=False, examples_per_condition=0),
            backend=_Echo(),
            on_progress=_stop_after(2),
        )
    sf.write(noise, np.random.default_rng(1).normal(0, 0.1, 32000), 16000)  # re-recorded
    with pytest.raises(ConfigError, match=r"what condition file-ward_snr10 uses changed"):
        _resume(pack, out)
