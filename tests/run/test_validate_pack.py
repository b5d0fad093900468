"""validate_pack: a pack and everything it refers to, every problem at once, as a report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lastmile.errors import ConfigError
from lastmile.run import PackReport, validate_pack
from lastmile.testing import speech_like, write_corpus, write_pack

SR = 16000


def _corpus(folder: Path, *, stereo: bool = False) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(3):
        samples = speech_like(rng, duration_s=1.5, sample_rate=SR)
        if stereo and i == 0:
            samples = np.stack([samples, samples], axis=1)
        rows.append(
            {
                "id": f"u{i}",
                "audio": f"a/u{i}.wav",
                "text": "take one capsule",
                "speaker": f"s{i}",
                "accent": "us" if i < 2 else "ca",
                "samples": samples,
            }
        )
    write_corpus(folder, rows)


def test_a_good_pack_reports_its_counts(tmp_path: Path):
    _corpus(tmp_path, stereo=True)
    pack = write_pack(
        tmp_path / "p.yaml",
        corpus={"manifest": "manifest.csv"},
        asr="pocketsphinx",
        conditions=[{"noise": "pink", "snr_db": [5, 10]}],
    )
    report = validate_pack(pack)
    assert isinstance(report, PackReport)
    assert report.ok and report.problems == () and report.corpus_read
    assert (report.n_conditions, report.n_utterances, report.n_speakers) == (3, 3, 3)
    assert sorted(report.groups) == ["ca", "us"]
    assert report.pack == pack
    # a stereo file is fixed on load: a warning naming the file, not a problem; groups of
    # 2 and 1 speakers cannot give verdicts (min_speakers 3): a warning, not a problem
    audio, groups = report.warnings
    assert "u0.wav" in audio and "downmixed" in audio
    assert groups == (
        f"{pack}: 2 of 2 groups have fewer speakers than fairness.min_speakers (3): 'ca' has "
        "1, 'us' has 2; every condition's verdict will be insufficient-data until they have "
        "more: add speakers, merge groups, or lower fairness.min_speakers knowingly "
        "(intervals need 3 speakers per group)"
    )


def test_a_corpus_of_one_group_is_warned_about(tmp_path: Path):
    _corpus(tmp_path)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",ca", ",us"))
    pack = write_pack(tmp_path / "p.yaml", corpus={"manifest": "manifest.csv"}, asr="pocketsphinx")
    report = validate_pack(pack)
    assert report.ok and report.groups == ("us",)
    (warning,) = report.warnings
    assert "group_by 'accent' puts every speaker in one group ('us')" in warning


def test_every_problem_is_collected_not_raised(tmp_path: Path):
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
    report = validate_pack(pack)
    assert not report.ok
    text = "\n".join(report.problems)
    assert "u1.wav" in text and "corrupt" in text
    assert "a/u2.wav" in text and "not found" in text
    short = [p for p in report.problems if "short.wav" in p]
    assert short and short[0].startswith(f"{pack}: condition ")
    device = [p for p in report.problems if "no-such-device" in p]
    assert device and "(#2)" in device[0]
    assert any(p.startswith(f"{pack}: asr: ") and "no-such-asr" in p for p in report.problems)
    # the corpus could not be read: no counts
    assert not report.corpus_read and report.n_utterances == 0 and report.groups == ()


def test_asr_overrides_the_packs_backend(tmp_path: Path):
    _corpus(tmp_path)
    pack = write_pack(tmp_path / "p.yaml", corpus={"manifest": "manifest.csv"})
    report = validate_pack(pack, asr="nope")
    assert report.corpus_read and not report.ok
    (problem,) = report.problems
    assert problem.startswith("--asr: ") and "unknown backend 'nope'" in problem


def test_a_pack_that_fails_its_schema_raises(tmp_path: Path):
    _corpus(tmp_path)
    bad = write_pack(tmp_path / "b.yaml", corpus={"manifest": "manifest.csv"}, colour="red")
    with pytest.raises(ConfigError, match="b.yaml: colour: unknown key"):
        validate_pack(bad)
