"""Clean speech: utterances, manifest loaders and validation."""

from lastmile.corpus.loaders import (
    DEFAULT_COLUMNS,
    CorpusProblems,
    Problem,
    load_manifest,
    read_manifest_rows,
)
from lastmile.corpus.model import Corpus, Utterance
from lastmile.corpus.validate import validate_corpus

__all__ = [
    "DEFAULT_COLUMNS",
    "Corpus",
    "CorpusProblems",
    "Problem",
    "Utterance",
    "load_manifest",
    "read_manifest_rows",
    "validate_corpus",
]
