"""Any recognizer as a command: ``command:./my_asr --wav {wav}`` prints the transcript."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from lastmile.asr.base import BackendSpec
from lastmile.errors import BackendError, ConfigError

__all__ = ["CommandBackend"]


class CommandBackend:
    """Runs a command per utterance; ``{wav}`` is replaced by a temporary 16-bit WAV path.

    The transcript is the command's standard output. Parameters go in the YAML form:
    ``asr: {name: command, argument: "./my_asr --wav {wav}", sample_rate: 8000, timeout_s: 60}``.
    """

    name = "command"

    def __init__(self, command: str, *, sample_rate: int = 16000, timeout_s: float = 120.0):
        if not command or "{wav}" not in command:
            raise ConfigError(
                f"command: the command must contain '{{wav}}' where the audio path goes, "
                f"got {command!r}; e.g. command:./my_asr --wav {{wav}}"
            )
        self.command = command
        self.sample_rate = int(sample_rate)
        self.timeout_s = float(timeout_s)

    @classmethod
    def check(cls) -> str | None:
        return None

    @classmethod
    def describe(cls) -> str:
        return "any program: command:./my_asr --wav {wav}"

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> CommandBackend:
        allowed = {"sample_rate", "timeout_s"}
        unknown = set(spec.params) - allowed
        if unknown:
            raise ConfigError(
                f"command: unknown parameter(s) {sorted(unknown)}; allowed: {allowed}"
            )
        return cls(spec.argument or "", **spec.params)

    def fingerprint(self) -> str:
        first = shlex.split(self.command)[0]
        digest = ""
        if Path(first).is_file():
            digest = hashlib.sha256(Path(first).read_bytes()).hexdigest()[:16]
        return json.dumps(
            {
                "backend": self.name,
                "command": self.command,
                "program": digest,
                "sample_rate": self.sample_rate,
            },
            sort_keys=True,
        )

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        out = []
        with tempfile.TemporaryDirectory(prefix="lastmile-cmd-") as tmp:
            for index, audio in enumerate(batch):
                wav = Path(tmp) / f"item{index}.wav"
                sf.write(str(wav), np.clip(audio, -1, 1), self.sample_rate, subtype="PCM_16")
                argv = [part.replace("{wav}", str(wav)) for part in shlex.split(self.command)]
                try:
                    done = subprocess.run(
                        argv, capture_output=True, text=True, timeout=self.timeout_s, check=False
                    )
                except FileNotFoundError as exc:
                    raise BackendError(f"command: program not found: {argv[0]}") from exc
                except subprocess.TimeoutExpired as exc:
                    raise BackendError(
                        f"command: timed out after {self.timeout_s:g} s: {self.command}"
                    ) from exc
                if done.returncode != 0:
                    raise BackendError(
                        f"command: exit status {done.returncode}: {done.stderr.strip()[:300]}"
                    )
                out.append(done.stdout.strip())
        return out
