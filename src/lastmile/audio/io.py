"""Reading, writing, validating and resampling audio.

Audio travels as ``numpy.ndarray`` float32, mono, shape ``(n,)`` with an explicit keyword
``sample_rate`` beside it. :func:`validate_audio` guards every boundary.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from lastmile.errors import AudioError

__all__ = [
    "LoadedAudio",
    "audio_sha256",
    "read_audio",
    "resample",
    "validate_audio",
    "write_audio",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedAudio:
    """Audio read from a file, with what was done to it on the way in (said loudly)."""

    samples: np.ndarray
    sample_rate: int
    source: str
    notes: tuple[str, ...] = field(default=())


def validate_audio(samples: object, *, source: str) -> np.ndarray:
    """Return ``samples`` as float32 1-D after checking it is finite, non-empty and mono.

    Raises :class:`AudioError` naming ``source`` otherwise.
    """
    if not isinstance(samples, np.ndarray):
        kind = type(samples).__name__
        raise AudioError(f"{source}: expected a numpy array of samples, got {kind}")
    if samples.ndim != 1:
        raise AudioError(
            f"{source}: expected mono audio of shape (n,), got shape {samples.shape}; "
            "downmix to one channel first"
        )
    if samples.size == 0:
        raise AudioError(f"{source}: audio is empty (0 samples)")
    if not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(f"{source}: expected floating-point samples, got dtype {samples.dtype}")
    if not np.all(np.isfinite(samples)):
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(f"{source}: {bad} samples are NaN or infinite")
    return samples.astype(np.float32, copy=False)


def read_audio(
    path: str | Path,
    *,
    sample_rate: int | None = None,
    allow_multichannel: bool = True,
    log_notes: bool = True,
) -> LoadedAudio:
    """Read any file soundfile reads as float32 mono.

    Multichannel audio is averaged to mono and ``sample_rate`` (when given and different) is
    reached with soxr; both are recorded in ``notes`` and logged at WARNING level so the
    caller can say them loudly (``log_notes=False``: the caller says them itself; each log
    record carries the note as ``lastmile_conversion`` so a face can count them by kind).
    Raises :class:`AudioError` naming the file otherwise.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise AudioError(f"{source}: file not found; check the path (relative to the manifest)")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(
            f"{source}: cannot be read as audio ({exc}); use WAV, FLAC or OGG "
            "(anything libsndfile reads)"
        ) from exc
    notes: list[str] = []
    if data.shape[1] > 1:
        if not allow_multichannel:
            raise AudioError(f"{source}: has {data.shape[1]} channels; expected mono")
        notes.append(f"downmixed {data.shape[1]} channels to mono")
        samples = data.mean(axis=1, dtype=np.float64).astype(np.float32)
    else:
        samples = data[:, 0]
    samples = validate_audio(np.ascontiguousarray(samples), source=source)
    rate = int(file_rate)
    if sample_rate is not None and rate != sample_rate:
        notes.append(f"resampled {rate} Hz to {sample_rate} Hz")
        samples = resample(samples, orig_sample_rate=rate, sample_rate=sample_rate)
        rate = sample_rate
    for note in notes if log_notes else ():
        log.warning("%s: %s", source, note, extra={"lastmile_conversion": note})
    return LoadedAudio(samples=samples, sample_rate=rate, source=source, notes=tuple(notes))


def write_audio(path: str | Path, samples: np.ndarray, *, sample_rate: int) -> Path:
    """Write mono float32 audio; the format follows the extension (.wav is 32-bit float)."""
    path = Path(path)
    samples = validate_audio(samples, source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "FLOAT" if path.suffix.lower() == ".wav" else None
    if path.suffix.lower() == ".flac":
        subtype = "PCM_24"
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype=subtype) as fh:
        _omit_peak_chunk(fh)
        fh.write(samples)
    return path


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's sf_command code


def _omit_peak_chunk(fh: sf.SoundFile) -> None:
    """Float WAV files get a PEAK chunk holding the wall-clock time of writing, so two writes
    of the same samples differ in their bytes; ask libsndfile to leave it out. (soundfile has
    no public call for this; without its internals the chunk stays, the samples are the same.)
    """
    snd = getattr(sf, "_snd", None)
    ffi = getattr(sf, "_ffi", None)
    handle = getattr(fh, "_file", None)
    if snd is not None and ffi is not None and handle is not None:
        snd.sf_command(handle, _SFC_SET_ADD_PEAK_CHUNK, ffi.NULL, 0)


def resample(samples: np.ndarray, *, orig_sample_rate: int, sample_rate: int) -> np.ndarray:
    """Resample with soxr (VHQ); identity when the rates agree."""
    if orig_sample_rate == sample_rate:
        return samples.astype(np.float32, copy=False)
    out = soxr.resample(samples, orig_sample_rate, sample_rate, quality="VHQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def audio_sha256(samples: np.ndarray, *, sample_rate: int) -> str:
    """A content hash of audio (samples as float32 little-endian plus the rate)."""
    h = hashlib.sha256()
    h.update(str(int(sample_rate)).encode())
    h.update(np.ascontiguousarray(samples, dtype="<f4").tobytes())
    return h.hexdigest()
