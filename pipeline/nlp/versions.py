"""Which models a stored annotation was made with: the versions, and where the models live.

Every annotated document stores the NER and theme versions it was annotated with, and a batch
re-annotates the documents whose versions differ from the current ones. The batch's main
process asks for the current versions on every run, including the many scheduled runs that
find nothing new, so they are read from the model directories' metadata files here, without
loading a model or importing spaCy and scikit-learn (together about two seconds of CPU).
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import REPO_ROOT
from pipeline.nlp.ner_lexicon import read_common_words, rules_version

DEFAULT_NER_MODEL = REPO_ROOT / "models" / "ner"
DEFAULT_THEME_MODEL = REPO_ROOT / "models" / "themes"
METADATA_FILE = "metadata.json"
"""The theme model's metadata, with its version, in the theme model directory."""


def ner_version(meta: dict[str, object]) -> str:
    """The NER version stored with each annotated document: ``name-version``, and with the
    rules that run after the model, ``name-version+rules-digest``."""
    version = f"{meta.get('name', 'ner')}-{meta.get('version', '0')}"
    return f"{version}+{meta['rules']}" if meta.get("rules") else version


def model_versions(
    ner_model: Path = DEFAULT_NER_MODEL, theme_model: Path = DEFAULT_THEME_MODEL
) -> tuple[str, str]:
    """The versions :class:`pipeline.nlp.annotate.Annotator` reports, from metadata alone."""
    meta = json.loads((Path(ner_model) / "meta.json").read_text(encoding="utf-8"))
    # load_ner adds the rules, so the version includes them
    meta["rules"] = rules_version(read_common_words(Path(ner_model)))
    themes = json.loads((Path(theme_model) / METADATA_FILE).read_text(encoding="utf-8"))
    return ner_version(meta), str(themes["version"])
