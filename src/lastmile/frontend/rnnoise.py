"""RNNoise (Xiph's recurrent denoiser) from the ``pyrnnoise`` package's shared library.

RNNoise works at 48 kHz on 480-sample (10 ms) frames of 16-bit-scaled floats. The audio is
resampled to 48 kHz with soxr, the last frame padded with silence, two more frames of silence
appended to flush the denoiser's two-frame delay, the output shifted back by that delay,
resampled to the input rate and cut to the input's exact length.

Only the library file shipped inside ``pyrnnoise`` is used, through ctypes: importing the
``pyrnnoise`` package itself loads its file-reading stack (audiolab, PyAV), which lastmile
does not need.
"""

from __future__ import annotations

import ctypes
import importlib.util
import platform
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from lastmile.audio import resample, validate_audio
from lastmile.errors import ConfigError
from lastmile.frontend.specs import RnnoiseSpec

__all__ = ["DELAY_SAMPLES", "FRAME_SAMPLES", "RNNOISE_RATE", "Rnnoise"]

RNNOISE_RATE = 48000
FRAME_SAMPLES = 480
DELAY_SAMPLES = 960
"""RNNoise's output lags its input by two frames (20 ms at 48 kHz): measured by
cross-correlating clean speech in and out (tests/frontend check it stays so)."""
_INSTALL = "pip install 'lastmile[frontends]' (or: pip install pyrnnoise)"
_LOCK = threading.Lock()


@cache
def _library() -> ctypes.CDLL:
    spec = importlib.util.find_spec("pyrnnoise")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"frontend rnnoise needs the pyrnnoise package; {_INSTALL}")
    name = {"Darwin": "librnnoise.dylib", "Windows": "rnnoise.dll"}.get(
        platform.system(), "librnnoise.so"
    )
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / name
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise ConfigError(
            f"frontend rnnoise: cannot load {name} from the pyrnnoise package ({exc}); "
            f"reinstall it: {_INSTALL}"
        ) from exc
    lib.rnnoise_create.argtypes = [ctypes.c_void_p]
    lib.rnnoise_create.restype = ctypes.c_void_p
    lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    lib.rnnoise_destroy.restype = None
    lib.rnnoise_process_frame.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_float),
        ctypes.POINTER(ctypes.c_float),
    ]
    lib.rnnoise_process_frame.restype = ctypes.c_float
    lib.rnnoise_get_frame_size.restype = ctypes.c_int
    frame = int(lib.rnnoise_get_frame_size())
    if frame != FRAME_SAMPLES:
        raise ConfigError(
            f"frontend rnnoise: the library's frame is {frame} samples, expected "
            f"{FRAME_SAMPLES}; this pyrnnoise build is not supported"
        )
    return lib


def denoise_48k(x: np.ndarray) -> np.ndarray:
    """RNNoise over float audio at 48 kHz in [-1, 1] (shape ``(n,)``); same shape, aligned.

    A fresh denoiser state per call, so the output depends on this input only.
    """
    lib = _library()
    n = x.size
    frames = -(-(n + DELAY_SAMPLES) // FRAME_SAMPLES)  # the tail padded, the delay flushed
    buf = np.zeros(frames * FRAME_SAMPLES, dtype=np.float32)
    buf[:n] = np.clip(x, -1.0, 1.0) * 32768.0
    out = np.empty_like(buf)
    with _LOCK:
        state = lib.rnnoise_create(None)
    if not state:
        raise ConfigError("frontend rnnoise: the library could not create a denoiser state")
    try:
        for k in range(frames):
            seg_in = np.ascontiguousarray(buf[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES])
            seg_out = np.empty(FRAME_SAMPLES, dtype=np.float32)
            lib.rnnoise_process_frame(
                state,
                seg_out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                seg_in.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            )
            out[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES] = seg_out
    finally:
        lib.rnnoise_destroy(state)
    return (out[DELAY_SAMPLES : DELAY_SAMPLES + n] / 32768.0).astype(np.float32)


class Rnnoise:
    """RNNoise at any input rate: resampled to 48 kHz and back (soxr), same length out."""

    name = "rnnoise"

    def __init__(self, spec: RnnoiseSpec):
        self.spec = spec
        _library()  # a missing extra fails when the pack is checked

    def describe(self) -> dict[str, Any]:
        return {"type": "rnnoise", "rate_hz": RNNOISE_RATE, "frame_samples": FRAME_SAMPLES}

    def apply(self, audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """``audio`` (shape ``(n,)``, float32, any rate) denoised; same shape and rate."""
        audio = validate_audio(audio, source="rnnoise")
        up = resample(audio, orig_sample_rate=sample_rate, sample_rate=RNNOISE_RATE)
        den = denoise_48k(up)
        back = resample(den, orig_sample_rate=RNNOISE_RATE, sample_rate=sample_rate)
        out = np.zeros(audio.size, dtype=np.float32)
        m = min(out.size, back.size)
        out[:m] = back[:m]
        return out
