"""Portable packs: a real pack exported and imported, and hostile archives refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lastmile.errors import ConfigError
from lastmile.resources import shipped_dir
from lastmile.scenario.pack import load_pack
from lastmile.sitepack import ARCHIVE_MANIFEST, ImportLimits, export_pack, import_pack
from lastmile.testing import speech_like, write_corpus, write_pack

SR = 16000


def make_site(root: Path, *, asr: str = "faster-whisper") -> Path:
    """A site folder: a corpus outside the pack's folder, a noise file, a local noise profile
    and a shipped device profile; returns the pack path."""
    rng = np.random.default_rng(7)
    rows = [
        {
            "utt": f"{spk}-{i}",
            "audio": f"wav/{spk}/{i}.flac",
            "text": "hello there",
            "spk": spk,
            "region": group,
            "samples": speech_like(rng, duration_s=1.0, sample_rate=SR),
            "mic": "lav",
        }
        for spk, group in (("a1", "north"), ("b1", "south"))
        for i in range(2)
    ]
    write_corpus(root / "data", rows, name="list.csv")
    site = root / "site"
    (site / "noise").mkdir(parents=True)
    sf.write(str(site / "noise" / "ward.flac"), 0.05 * rng.standard_normal(2 * SR), SR)
    (site / "noise_profiles").mkdir()
    shutil.copy(shipped_dir("noise_profiles") / "icu-monitors.yaml", site / "noise_profiles")
    return write_pack(
        site / "ward.yaml",
        corpus={
            "manifest": "../data/list.csv",
            "columns": {"id": "utt", "speaker": "spk"},
        },
        group_by="region",
        asr=asr,
        conditions=[
            {"id": "ward", "noise": {"file": "noise/ward.flac"}, "snr_db": [10, 0]},
            {"noise": {"profile": "icu-monitors"}, "snr_db": 5, "device": "headset"},
        ],
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def archive(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "ward.lmpack"
    export_pack(site, out=out)
    return out


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


# --------------------------------------------------------------------------- round trips


def test_export_holds_the_pack_profiles_noise_and_a_checksummed_manifest(archive: Path):
    members = _members(archive)
    assert next(iter(members)) == ARCHIVE_MANIFEST
    assert set(members) == {
        ARCHIVE_MANIFEST,
        "ward.yaml",
        "noise/ward.flac",
        "noise_profiles/icu-monitors.yaml",
        "noise_profiles/headset.yaml",  # the shipped device profile, pinned
        "corpus/manifest.csv",
    }
    manifest = json.loads(members[ARCHIVE_MANIFEST])
    for entry in manifest["members"]:
        data = members[entry["path"]]
        assert len(data) == entry["size"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert manifest["audio_included"] is False and manifest["audio_files"] == 4
    rows = members["corpus/manifest.csv"].decode().splitlines()
    assert rows[0] == "id,audio,text,speaker,region,audio_sha256,mic"
    assert rows[1].split(",")[:5] == ["a1-0", "wav/a1/0.flac", "hello there", "a1", "north"]


def test_audio_checksums_in_the_manifest_are_those_of_the_files(site: Path, archive: Path):
    rows = _members(archive)["corpus/manifest.csv"].decode().splitlines()[1:]
    data = site.parent.parent / "data"
    for row in rows:
        uid, rel, _text, _spk, _group, sha, _mic = row.split(",")
        assert hashlib.sha256((data / rel).read_bytes()).hexdigest() == sha, uid


def test_round_trip_keeps_every_condition_and_the_corpus(site: Path, archive: Path, tmp_path):
    result = import_pack(archive, into=tmp_path / "in", audio_from=site.parent.parent / "data")
    assert result.audio_copied == 4 and result.missing_audio == ()
    original, imported = load_pack(site), load_pack(result.pack_path)
    assert [c.id for c in imported.conditions] == [c.id for c in original.conditions]
    for a, b in zip(original.conditions, imported.conditions, strict=True):
        if a.noise is not None and a.noise.type == "file":
            assert b.noise.file == "noise/ward.flac"  # type: ignore[union-attr]
            continue
        assert a.spec() == b.spec()
    from lastmile.corpus import load_corpus

    before = load_corpus(
        original.manifest_path, columns=original.pack.corpus.columns, group_by="region"
    )
    after = load_corpus(imported.manifest_path, group_by="region")
    assert [(u.id, u.text, u.speaker, u.group) for u in before.utterances] == [
        (u.id, u.text, u.speaker, u.group) for u in after.utterances
    ]
    for u, v in zip(before.utterances, after.utterances, strict=True):
        assert u.audio.read_bytes() == v.audio.read_bytes()
    assert dict(after.utterances[0].attributes)["mic"] == "lav"


def test_the_imported_pack_renders_like_the_original(site: Path, archive: Path, tmp_path):
    """The noise file and the profiles travelled: the same item renders to the same audio."""
    from lastmile.render.engine import Renderer

    result = import_pack(archive, into=tmp_path / "in", audio_from=site.parent.parent / "data")
    speech = speech_like(np.random.default_rng(3), duration_s=1.0, sample_rate=SR)
    a, b = load_pack(site), load_pack(result.pack_path)
    ra, rb = Renderer(a, sample_rate=SR), Renderer(b, sample_rate=SR)
    for ca, cb in zip(a.conditions, b.conditions, strict=True):
        xa = ra.render(speech, ca, utterance_id="u").audio
        xb = rb.render(speech, cb, utterance_id="u").audio
        np.testing.assert_array_equal(xa, xb)


def test_with_audio_the_archive_is_self_contained(site: Path, tmp_path: Path):
    out = tmp_path / "full.lmpack"
    result = export_pack(site, out=out, with_audio=True)
    assert result.audio_included and result.members == 5 + 4
    imported = import_pack(out, into=tmp_path / "in")
    assert imported.missing_audio == () and imported.audio_copied == 0
    assert len(list((tmp_path / "in" / "corpus").rglob("*.flac"))) == 4


def test_export_is_byte_identical_for_the_same_pack(site: Path, archive: Path, tmp_path):
    again = tmp_path / "again.lmpack"
    export_pack(site, out=again)
    assert again.read_bytes() == archive.read_bytes()


def test_export_refuses_to_overwrite_without_force(site: Path, archive: Path):
    before = archive.read_bytes()
    with pytest.raises(ConfigError, match="already exists.*--force"):
        export_pack(site, out=archive)
    assert archive.read_bytes() == before


def test_without_audio_the_missing_files_are_named(archive: Path, tmp_path: Path):
    result = import_pack(archive, into=tmp_path / "in")
    assert len(result.missing_audio) == 4 and result.audio_files == 4
    assert all(m.endswith(".flac") for m in result.missing_audio)
    assert result.pack_path.is_file()


def test_audio_that_differs_from_the_exported_audio_is_refused(site, archive, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(site.parent.parent / "data", other)
    victim = sorted(other.rglob("*.flac"))[0]
    sf.write(str(victim), np.zeros(SR, dtype=np.float32) + 0.01, SR)
    with pytest.raises(ConfigError, match="checksum mismatch"):
        import_pack(archive, into=tmp_path / "in", audio_from=other)
    assert not (tmp_path / "in").exists()


def test_imported_files_are_not_executable_and_nothing_runs(tmp_path: Path):
    site = make_site(tmp_path, asr="command:./recognize.sh --wav {wav}")
    (site.parent / "recognize.sh").write_text("#!/bin/sh\ntouch ran\n")
    result = export_pack(site, out=tmp_path / "x.lmpack")
    assert any("recognize.sh" in w and "not in the archive" in w for w in result.warnings)
    assert "recognize.sh" not in _members(tmp_path / "x.lmpack")
    imported = import_pack(tmp_path / "x.lmpack", into=tmp_path / "in")
    assert any("nothing was run" in w for w in imported.warnings)
    for path in (tmp_path / "in").rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o111 == 0, path
    assert not list(tmp_path.rglob("ran"))


def test_import_refuses_a_folder_that_is_not_empty(archive: Path, tmp_path: Path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not an empty folder"):
        import_pack(archive, into=tmp_path / "in")
    assert [p.name for p in (tmp_path / "in").iterdir()] == ["mine.txt"]


# --------------------------------------------------------------------------- hostile archives


def _rebuild(
    source: Path,
    out: Path,
    *,
    replace: dict[str, bytes] | None = None,
    extra: list[tuple[tarfile.TarInfo, bytes | None]] = (),  # type: ignore[assignment]
    edit: Callable[[dict], None] | None = None,
    recompute: bool = True,
) -> Path:
    """A copy of ``source`` with members replaced (checksums recomputed unless told not to),
    hostile members added after the genuine ones, and the manifest edited."""
    members = _members(source)
    manifest = json.loads(members.pop(ARCHIVE_MANIFEST))
    for name, data in (replace or {}).items():
        members[name] = data
        if recompute:
            for entry in manifest["members"]:
                if entry["path"] == name:
                    entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    if edit is not None:
        edit(manifest)
    with gzip.open(out, "wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        head = json.dumps(manifest).encode()
        info = tarfile.TarInfo(ARCHIVE_MANIFEST)
        info.size = len(head)
        tar.addfile(info, io.BytesIO(head))
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def _file(name: str, data: bytes = b"pwned\n") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, *, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info, None


def _huge(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.size = 1 << 40  # declared only: no data follows
    return info, None


def _listed(name: str, data: bytes = b"pwned\n") -> Callable[[dict], None]:
    def edit(manifest: dict) -> None:
        manifest["members"].append(
            {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )

    return edit


HOSTILE = {
    "dot-dot": ([_file("../evil")], None, r"'\.\.' part"),
    "dot-dot-deep": ([_file("noise/../../evil")], None, r"'\.\.' part"),
    "absolute": ([_file("/tmp/lastmile-evil")], None, "absolute path"),
    "symlink": ([_link("noise/link.flac", "../../../../etc/passwd")], None, "symbolic link"),
    "symlink-listed": (
        [_link("noise/link.flac", "/etc/passwd")],
        _listed("noise/link.flac"),
        "symbolic link",
    ),
    "hardlink": ([_link("noise/hard.flac", "ward.yaml", hard=True)], None, "hard link"),
    "device": ([_device("noise/null")], _listed("noise/null"), "device file"),
    "huge-declared": ([_huge("noise/big.flac")], None, "declares 1099511627776 bytes"),
    "not-listed": ([_file("noise/extra.flac")], None, "not listed in lastmile-pack.json"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_and_nothing_is_written(case, archive, tmp_path: Path):
    extra, edit, message = HOSTILE[case]
    bad = _rebuild(archive, tmp_path / "bad.lmpack", extra=extra, edit=edit)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ConfigError, match=message):
        import_pack(bad, into=tmp_path / "in")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # "in" removed, no "evil"
    assert not Path("/tmp/lastmile-evil").exists()


def test_a_huge_size_in_the_manifest_is_refused_before_reading(archive, tmp_path):
    def edit(manifest: dict) -> None:
        manifest["members"][0]["size"] = 1 << 40

    bad = _rebuild(archive, tmp_path / "bad.lmpack", edit=edit)
    with pytest.raises(ConfigError, match="above the per-member limit"):
        import_pack(bad, into=tmp_path / "in")


def test_the_total_size_is_bounded(archive: Path, tmp_path: Path):
    total = sum(e["size"] for e in json.loads(_members(archive)[ARCHIVE_MANIFEST])["members"])
    with pytest.raises(ConfigError, match="add up to .* above the limit"):
        import_pack(archive, into=tmp_path / "in", limits=ImportLimits(max_total_bytes=total - 1))
    assert not (tmp_path / "in").exists()
    assert import_pack(
        archive, into=tmp_path / "ok", limits=ImportLimits(max_total_bytes=total)
    ).pack_path.is_file()


def test_a_checksum_mismatch_is_refused(archive: Path, tmp_path: Path):
    original = _members(archive)["ward.yaml"]
    tampered = original.replace(b"snr_db", b"snr_dB")
    assert len(tampered) == len(original)
    bad = _rebuild(
        archive, tmp_path / "bad.lmpack", replace={"ward.yaml": tampered}, recompute=False
    )
    with pytest.raises(ConfigError, match="ward.yaml.*checksum mismatch"):
        import_pack(bad, into=tmp_path / "in")
    assert not (tmp_path / "in").exists()


def test_a_listed_member_missing_from_the_archive_is_refused(archive: Path, tmp_path: Path):
    bad = _rebuild(archive, tmp_path / "bad.lmpack", edit=_listed("noise/gone.flac"))
    with pytest.raises(ConfigError, match="missing .*noise/gone.flac"):
        import_pack(bad, into=tmp_path / "in")


def test_a_corpus_manifest_reaching_outside_is_refused(archive: Path, tmp_path: Path):
    text = _members(archive)["corpus/manifest.csv"].decode()
    lines = text.splitlines()
    first = lines[1].split(",")
    first[1] = "../../../etc/passwd"
    lines[1] = ",".join(first)
    bad = _rebuild(
        archive, tmp_path / "bad.lmpack", replace={"corpus/manifest.csv": "\n".join(lines).encode()}
    )
    with pytest.raises(ConfigError, match=r"row 1: audio: .*'\.\.' part"):
        import_pack(bad, into=tmp_path / "in")
    assert not (tmp_path / "in").exists()


def test_an_archive_without_our_manifest_first_is_refused(site: Path, tmp_path: Path):
    plain = tmp_path / "plain.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        tar.add(site, arcname="site")
    with pytest.raises(ConfigError, match="first member must be lastmile-pack.json"):
        import_pack(plain, into=tmp_path / "in")
    (tmp_path / "junk.lmpack").write_bytes(b"not an archive at all")
    with pytest.raises(ConfigError, match="not a lastmile pack archive"):
        import_pack(tmp_path / "junk.lmpack", into=tmp_path / "in")
    assert not (tmp_path / "in").exists()
