"""Clean speech: utterances, loaders (manifests, Kaldi, NeMo, Common Voice, folder) and
validation."""

from lastmile.corpus.formats import (
    FORMATS,
    detect_format,
    load_commonvoice,
    load_corpus,
    load_folder,
    load_kaldi,
    load_nemo,
)
from lastmile.corpus.loaders import (
    DEFAULT_COLUMNS,
    MAX_FIELD_CHARS,
    QUOTING,
    AudioRef,
    CorpusProblems,
    Problem,
    load_manifest,
    read_manifest_rows,
)
from lastmile.corpus.model import Corpus, Utterance
from lastmile.corpus.validate import audio_problems, check_corpus, validate_corpus

__all__ = [
    "DEFAULT_COLUMNS",
    "FORMATS",
    "MAX_FIELD_CHARS",
    "QUOTING",
    "AudioRef",
    "Corpus",
    "CorpusProblems",
    "Problem",
    "Utterance",
    "audio_problems",
    "check_corpus",
    "detect_format",
    "load_commonvoice",
    "load_corpus",
    "load_folder",
    "load_kaldi",
    "load_manifest",
    "load_nemo",
    "read_manifest_rows",
    "validate_corpus",
]
