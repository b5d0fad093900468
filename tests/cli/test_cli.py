from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import soundfile as sf
from click.testing import CliRunner

from lastmile.cli import cli
from lastmile.testing import speech_like, write_corpus, write_pack

SR = 16000


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((f"{prefix}{name}", cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix=f"{prefix}{name} ")
    return out


def test_every_command_is_documented_with_an_example():
    runner = CliRunner()
    for name, cmd in _commands(cli):
        result = runner.invoke(cli, [*name.split(), "--help"], catch_exceptions=False)
        assert result.exit_code == 0, name
        if not isinstance(cmd, click.Group):
            assert "Example" in result.output, f"`lastmile {name} --help` has no example"
            assert f"lastmile {name}" in result.output, name


def test_core_commands_exist():
    names = {n for n, _ in _commands(cli)}
    assert {
        "demo",
        "run",
        "validate",
        "schema",
        "render",
        "report",
        "asr list",
        "cache info",
        "cache clear",
    } <= names


def test_schema_prints_json():
    result = CliRunner().invoke(cli, ["schema"], catch_exceptions=False)
    schema = json.loads(result.output)
    assert schema["title"] == "lastmile scenario pack"


def test_asr_list_shows_builtins():
    result = CliRunner().invoke(cli, ["asr", "list"], catch_exceptions=False)
    assert "faster-whisper" in result.output and "pocketsphinx" in result.output


def _corpus(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = [
        {
            "id": f"u{i}",
            "audio": f"a/u{i}.wav",
            "text": "take one capsule",
            "speaker": f"s{i}",
            "accent": "us",
            "samples": speech_like(rng, duration_s=1.5, sample_rate=SR),
        }
        for i in range(3)
    ]
    write_corpus(tmp_path, rows)


def test_validate_lists_every_problem_and_exits_2(tmp_path: Path):
    _corpus(tmp_path)
    (tmp_path / "a/u1.wav").write_bytes(b"garbage")
    (tmp_path / "a/u2.wav").unlink()
    sf.write(str(tmp_path / "short.wav"), np.ones(100, dtype=np.float32) * 0.1, SR)
    pack = write_pack(
        tmp_path / "p.yaml",
        corpus={"manifest": "manifest.csv"},
        asr="no-such-asr",
        conditions=[{"noise": {"file": "short.wav"}, "snr_db": 5}, {"device": "no-such-device"}],
    )
    result = CliRunner().invoke(cli, ["validate", str(pack)], catch_exceptions=False)
    assert result.exit_code == 2
    out = result.output
    assert "a/u2.wav" in out and "not found" in out
    assert "short.wav" in out
    assert "no-such-device" in out
    assert "no-such-asr" in out


def test_validate_ok_and_bad_key(tmp_path: Path):
    _corpus(tmp_path)
    pack = write_pack(
        tmp_path / "p.yaml",
        corpus={"manifest": "manifest.csv"},
        conditions=[{"noise": "pink", "snr_db": 5}],
    )
    result = CliRunner().invoke(cli, ["validate", str(pack)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "3 utterances" in result.output
    bad = write_pack(tmp_path / "b.yaml", corpus={"manifest": "manifest.csv"}, colour="red")
    result = CliRunner().invoke(cli, ["validate", str(bad)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "b.yaml: colour: unknown key" in result.output


def test_render_writes_mix_stems_and_item_json(tmp_path: Path):
    _corpus(tmp_path)
    pack = write_pack(
        tmp_path / "p.yaml",
        corpus={"manifest": "manifest.csv"},
        seed=9,
        conditions=[
            {
                "noise": {"type": "hum", "fundamental_hz": 60},
                "snr_db": 5,
                "device": "narrowband-handset",
                "channel": {"codec": "g711-alaw"},
            }
        ],
    )
    out = tmp_path / "item"
    args = [
        "render",
        str(pack),
        "-c",
        "hum60_snr5_narrowband-handset_g711a",
        "-u",
        "u1",
        "--out",
        str(out),
        "--stems",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name in ("mix.wav", "speech.wav", "noise.wav", "item.json"):
        assert (out / name).is_file(), name
    item = json.loads((out / "item.json").read_text())
    assert abs(item["achieved_snr_db"] - 5) < 0.05
    assert item["params"]["noise"] and item["params"]["channel"]
    first = (out / "mix.wav").read_bytes()
    CliRunner().invoke(cli, args, catch_exceptions=False)
    assert (out / "mix.wav").read_bytes() == first
    bad = CliRunner().invoke(
        cli,
        ["render", str(pack), "-c", "nope", "-u", "u1", "--out", str(out)],
        catch_exceptions=False,
    )
    assert bad.exit_code == 2 and "no condition 'nope'" in bad.output
    bad = CliRunner().invoke(
        cli,
        ["render", str(pack), "-c", "clean", "-u", "zz", "--out", str(out)],
        catch_exceptions=False,
    )
    assert bad.exit_code == 2 and "no utterance 'zz'; e.g. u0, u1, u2" in bad.output


def test_unknown_backend_is_bad_input(tmp_path: Path):
    _corpus(tmp_path)
    pack = write_pack(tmp_path / "p.yaml", corpus={"manifest": "manifest.csv"})
    result = CliRunner().invoke(
        cli,
        ["run", str(pack), "--asr", "nope", "--out", str(tmp_path / "r"), "-q"],
        catch_exceptions=False,
    )
    assert result.exit_code == 2
    assert "unknown backend 'nope'" in result.output
