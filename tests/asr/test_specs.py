"""Backend specs are checked when the backend is built: `lastmile validate --asr` fails exactly
where `lastmile run` would, before any item runs; every backend takes cache_salt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lastmile.asr import build_backend
from lastmile.asr.registry import SaltedBackend
from lastmile.cli import cli
from lastmile.errors import ConfigError

from helpers import demo_rows, demo_subset_pack

BAD_SPECS = [
    # (spec, what the error must say)
    ("faster-whisper?temperature=0.2", "unknown parameter 'temperature' (fixed by lastmile"),
    ("faster-whisper:small.en", "small.en is not a CTranslate2 Whisper model folder"),
    ("faster-whisper?beam_size=abc", "beam_size: expected an integer >= 1"),
    ("faster-whisper?beam_size=0", "beam_size: expected an integer >= 1"),
    ("faster-whisper?beam_size=2.5", "got 2.5"),
    ("faster-whisper?cpu_threads=-1", "cpu_threads: expected an integer >= 0"),
    ("faster-whisper?compute_type=int4", "compute_type: expected one of"),
    ("faster-whisper?device=tpu", "device: expected one of cpu, cuda, auto"),
    ("faster-whisper?language=fr", "English-only and takes only 'en'"),
    ("faster-whisper?max_tokens_per_s=6", "max_tokens_per_s: expected 0"),
    ("faster-whisper?max_tokens_per_s=abc", "max_tokens_per_s: expected 0"),
    ("faster-whisper?cache_salt=", "cache_salt: expected a non-empty text or number"),
    ("pocketsphinx?beam=1e-40", "pocketsphinx: unknown parameter 'beam'"),
    ("command:/nonexistent/asr {wav}", "program /nonexistent/asr not found"),
    ("whisperx", "unknown backend 'whisperx'"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_bad_specs_fail_when_built(spec: str, message: str):
    with pytest.raises(ConfigError) as caught:
        build_backend(spec)
    assert message in str(caught.value)


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("specs")
    return demo_subset_pack(
        folder / "pack", demo_rows(groups=("us",), per_group=2), fairness={"min_speakers": 2}
    )


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS[:4] + BAD_SPECS[13:14])
def test_validate_and_run_refuse_the_same_specs(pack: Path, tmp_path: Path, spec, message):
    runner = CliRunner()
    checked = runner.invoke(cli, ["validate", str(pack), "--asr", spec])
    assert checked.exit_code == 2, checked.output
    assert message in checked.output and "--asr" in checked.output
    out = tmp_path / "run"
    ran = runner.invoke(cli, ["run", str(pack), "--asr", spec, "--out", str(out), "-q"])
    assert ran.exit_code == 2, ran.output
    assert message in ran.output
    assert not (out / "items.csv").exists()  # refused before any item ran


def test_a_pack_whose_backend_cannot_be_built_fails_validate(tmp_path: Path):
    pack = demo_subset_pack(
        tmp_path / "pack",
        demo_rows(groups=("us",), per_group=2),
        asr={"name": "command", "argument": "cat {wav}", "sample_rate": 0},
    )
    checked = CliRunner().invoke(cli, ["validate", str(pack)])
    assert checked.exit_code == 2
    assert "pack.yaml: asr: command: sample_rate: expected a whole number of Hz" in checked.output


def test_validate_accepts_good_specs(pack: Path):
    for spec in ("faster-whisper?beam_size=2&cache_salt=x", "pocketsphinx", "command:cat {wav}"):
        checked = CliRunner().invoke(cli, ["validate", str(pack), "--asr", spec])
        assert checked.exit_code == 0, (spec, checked.output)


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "faster-whisper"},
        {"name": "pocketsphinx"},
        {"name": "command", "argument": "cat {wav}"},
    ],
)
def test_every_builtin_backend_takes_a_cache_salt(spec: dict):
    plain = build_backend(spec)
    salted = build_backend({**spec, "cache_salt": "retrained-2024-06"})
    assert type(salted) is type(plain)
    assert salted.fingerprint() != plain.fingerprint()
    assert salted.fingerprint() != build_backend({**spec, "cache_salt": 7}).fingerprint()
    assert json.loads(salted.fingerprint())["cache_salt"] == "retrained-2024-06"
    assert (salted.name, salted.sample_rate) == (plain.name, plain.sample_rate)


def test_a_plugin_backend_gets_cache_salt_from_lastmile(monkeypatch: pytest.MonkeyPatch):
    """A plugin that knows nothing of cache_salt never sees it; its fingerprint is wrapped."""
    from lastmile.asr import registry

    class Plugin:
        name = "echo"
        sample_rate = 8000

        def __init__(self, params: dict) -> None:
            self.params = params

        @classmethod
        def from_spec(cls, spec):
            return cls(dict(spec.params))

        def fingerprint(self) -> str:
            return json.dumps({"backend": "echo", **self.params})

        def transcribe(self, batch):
            return ["x" for _ in batch]

    Plugin.__module__ = "acme_asr.echo"
    monkeypatch.setattr(registry, "backend_class", lambda name: Plugin)
    plain = build_backend("echo?speed=2")
    salted = build_backend("echo?speed=2&cache_salt=v2")
    assert isinstance(salted, SaltedBackend) and salted.backend.params == {"speed": 2}
    assert json.loads(salted.fingerprint()) == {
        "backend": json.loads(plain.fingerprint()),
        "cache_salt": "v2",
    }
    assert salted.transcribe([None, None]) == ["x", "x"] and salted.sample_rate == 8000
    with pytest.raises(ConfigError, match="cache_salt: expected a non-empty text"):
        build_backend({"name": "echo", "cache_salt": True})


def test_cache_salt_in_a_spec_string():
    salted = build_backend("faster-whisper?beam_size=2&cache_salt=v2")
    assert json.loads(salted.fingerprint())["cache_salt"] == "v2"
    assert json.loads(salted.fingerprint())["beam_size"] == 2
