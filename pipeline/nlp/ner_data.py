"""Swedish NER training data: corpus readers, a reproducible split, DocBin export and training.

Two corpora feed the model (see ``../shared/data/README.md``):

* Webbnyheter 2012: ``token<whitespace>tag`` lines, ``0`` = outside, IO tags without B-/I-.
  Because IO cannot separate two adjacent names of the same type, adjacent tokens with the
  same label are read as one entity, which is the only reading the format allows.
* UNER Talbanken: CoNLL-U-like blocks with ``# newdoc id``, ``# sent_id`` and ``# text`` lines,
  the token in column 2 and an IOB2 tag in column 3.

The split is a pure function of the data (a SHA-256 bucket of a stable key), so every run, on any
machine, holds out the same test sentences and the test part is never trained on or tuned on.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.tokens import Doc, DocBin, Span

from pipeline.nlp.ner import (
    DEFAULT_NER_MODEL,
    SCORED_LABELS,
    SHARED_DIR,
    EvaluationTextError,
    evaluate,
    load_ner,
    read_jsonl,
    with_texts,
)
from pipeline.nlp.ner_lexicon import COMMON_WORDS_FILE, build_common_words

# Defaults for `pipeline train-ner`, resolved from the package so the command works from any
# directory: the config beside this module, the shared data beside the repository, models/ner.
DEFAULT_CONFIG = Path(__file__).resolve().with_name("ner.cfg")
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "ner"
DEFAULT_PRESS_DIR = SHARED_DIR / "data" / "press"
DEFAULT_DOMAIN_SET = Path(__file__).resolve().parents[2] / "corpus" / "labels" / "ner-domain.jsonl"
DEFAULT_OUTPUT = DEFAULT_NER_MODEL

WEBBNYHETER_FILE = "webbnyheter2012-train.tsv"
TALBANKEN_FILES = ("uner-talbanken-train.iob2", "uner-talbanken-dev.iob2")
SPLITS = ("train", "dev", "test")
# spaCy prefixes the language, so the package reads "sv_pipeline_ner".
MODEL_NAME = "pipeline_ner"
MODEL_LICENSE = "CC BY-SA 4.0"

# Both corpora already use the target label names; the mapping is explicit so that a corpus
# revision with new tags (TME, OBJ, ...) fails loudly instead of silently training on them.
WEBBNYHETER_OUTSIDE = "0"
WEBBNYHETER_LABELS = {"PER": "PER", "ORG": "ORG", "LOC": "LOC", "MISC": "MISC"}
TALBANKEN_LABELS = {"PER": "PER", "ORG": "ORG", "LOC": "LOC"}

# Soft hyphens are invisible line-break hints left over from web layout; they split otherwise
# identical words ("­världen" vs "världen"), so they are removed from tokens.
SOFT_HYPHEN = "\u00ad"
NO_SPACE_BEFORE = frozenset({".", ",", ":", ";", "!", "?", ")", "]", "}", "...", "…", "%"})
NO_SPACE_AFTER = frozenset({"(", "[", "{", "“"})
TOGGLING_QUOTES = frozenset({'"', "”"})


class CorpusFormatError(ValueError):
    """A corpus line does not follow the format the reader expects."""


@dataclass(frozen=True)
class Sentence:
    """One annotated sentence with the tokens, spacing and entity spans (token offsets)."""

    id: str
    split_key: str
    tokens: tuple[str, ...]
    spaces: tuple[bool, ...]
    spans: tuple[tuple[int, int, str], ...]

    @property
    def text(self) -> str:
        """The sentence as running text, rebuilt from tokens and spacing."""
        return join_tokens(self.tokens, self.spaces)


def join_tokens(tokens: Sequence[str], spaces: Sequence[bool]) -> str:
    """Running text from tokens and their trailing-space flags (what ``Doc.text`` gives)."""
    return "".join(t + (" " if s else "") for t, s in zip(tokens, spaces, strict=True))


def io_spans(tags: Sequence[str | None]) -> list[tuple[int, int, str]]:
    """Token spans from IO labels (``None`` = outside): adjacent equal labels form one span."""
    spans: list[tuple[int, int, str]] = []
    for i, label in enumerate(tags):
        if label is None:
            continue
        if spans and spans[-1][1] == i and spans[-1][2] == label:
            spans[-1] = (spans[-1][0], i + 1, label)
        else:
            spans.append((i, i + 1, label))
    return spans


def iob2_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Token spans from IOB2 tags; ``B-`` always starts a span, a stray ``I-`` starts one too."""
    spans: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        if tag == "O":
            continue
        prefix, _, label = tag.partition("-")
        if prefix not in {"B", "I"} or not label:
            raise CorpusFormatError(f"not an IOB2 tag: {tag!r}")
        continues = prefix == "I" and spans and spans[-1][1] == i and spans[-1][2] == label
        if continues:
            spans[-1] = (spans[-1][0], i + 1, label)
        else:
            spans.append((i, i + 1, label))
    return spans


def guess_spaces(tokens: Sequence[str]) -> list[bool]:
    """Whether each token is followed by a space, for corpora that lost the original text.

    Swedish typography: no space before closing punctuation, none after an opening bracket,
    and the straight or right double quote opens and closes alternately (”så här”).
    """
    quote_opens: list[bool | None] = []
    inside = False
    for token in tokens:
        if token in TOGGLING_QUOTES:
            quote_opens.append(not inside)
            inside = not inside
        else:
            quote_opens.append(None)

    def glued_right(i: int) -> bool:
        return tokens[i] in NO_SPACE_AFTER or quote_opens[i] is True

    def glued_left(i: int) -> bool:
        return tokens[i] in NO_SPACE_BEFORE or quote_opens[i] is False

    last = len(tokens) - 1
    return [i < last and not (glued_right(i) or glued_left(i + 1)) for i in range(len(tokens))]


def spaces_from_text(text: str, tokens: Sequence[str]) -> list[bool] | None:
    """Spacing recovered by aligning tokens to the original sentence, or None if they differ."""
    spaces: list[bool] = []
    position = 0
    for token in tokens:
        start = text.find(token, position)
        if start < 0 or text[position:start].strip():
            return None
        position = start + len(token)
        spaces.append(text[position : position + 1].isspace())
    if spaces:
        spaces[-1] = False
    return spaces


def _blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """Blank-line separated blocks of (line number, line) pairs."""
    block: list[tuple[int, str]] = []
    with path.open(encoding="utf-8") as lines:
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip("\r\n")
            if line.strip():
                block.append((number, line))
            elif block:
                yield block
                block = []
    if block:
        yield block


def _webbnyheter_label(tag: str, where: str) -> str | None:
    if tag == WEBBNYHETER_OUTSIDE:
        return None
    if tag not in WEBBNYHETER_LABELS:
        raise CorpusFormatError(f"{where}: unknown tag {tag!r}")
    return WEBBNYHETER_LABELS[tag]


def read_webbnyheter(path: Path) -> Iterator[Sentence]:
    """Sentences of Webbnyheter 2012.

    Columns are separated by a tab or by spaces (both occur). One line in the released file
    carries a token without a tag; it is read as outside any entity rather than dropped, so
    the sentence keeps its words.
    """
    for index, block in enumerate(_blocks(path), start=1):
        tokens: list[str] = []
        labels: list[str | None] = []
        for number, line in block:
            fields = line.rsplit(maxsplit=1)
            tag = fields[1] if len(fields) == 2 else WEBBNYHETER_OUTSIDE
            token = fields[0].replace(SOFT_HYPHEN, "")
            if token:
                tokens.append(token)
                labels.append(_webbnyheter_label(tag, f"{path.name}:{number}"))
        spaces = guess_spaces(tokens)
        text = join_tokens(tokens, spaces)
        yield Sentence(
            id=f"webbnyheter-{index:05d}",
            split_key=f"webbnyheter:{text}",
            tokens=tuple(tokens),
            spaces=tuple(spaces),
            spans=tuple(io_spans(labels)),
        )


def _talbanken_sentence(block: list[tuple[int, str]], path: Path, document: str) -> Sentence:
    comments = {}
    tokens: list[str] = []
    tags: list[str] = []
    for number, line in block:
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            comments[key.strip()] = value.strip()
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise CorpusFormatError(f"{path.name}:{number}: expected index, token and tag")
        tokens.append(fields[1])
        tags.append(fields[2])
    try:
        spans = iob2_spans(tags)
    except CorpusFormatError as error:
        raise CorpusFormatError(f"{path.name}:{block[0][0]}: {error}") from error
    for _, _, label in spans:
        if label not in TALBANKEN_LABELS:
            raise CorpusFormatError(f"{path.name}:{block[0][0]}: unknown label {label!r}")
    spaces = spaces_from_text(comments.get("text", ""), tokens) or guess_spaces(tokens)
    return Sentence(
        id=f"talbanken-{comments.get('sent_id', block[0][0])}",
        split_key=f"talbanken:{document}",
        tokens=tuple(tokens),
        spaces=tuple(spaces),
        spans=tuple((start, end, TALBANKEN_LABELS[label]) for start, end, label in spans),
    )


def read_talbanken(path: Path) -> Iterator[Sentence]:
    """Sentences of UNER Talbanken, keyed for the split by their document (``# newdoc id``).

    Splitting whole documents keeps sentences of one text, which repeat the same names,
    on the same side of the split.
    """
    document = path.stem
    for block in _blocks(path):
        for _, line in block:
            if line.startswith("# newdoc id"):
                document = line.partition("=")[2].strip()
        yield _talbanken_sentence(block, path, document)


def split_of(key: str) -> str:
    """Assign a key to train (80 %), dev (10 %) or test (10 %) by a stable hash."""
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 100
    if bucket < 80:
        return "train"
    return "dev" if bucket < 90 else "test"


def read_corpora(data_dir: Path) -> Iterator[Sentence]:
    """All sentences of both corpora, Webbnyheter first."""
    missing = [n for n in (WEBBNYHETER_FILE, *TALBANKEN_FILES) if not (data_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"NER data missing in {data_dir}: {', '.join(missing)}")
    yield from read_webbnyheter(data_dir / WEBBNYHETER_FILE)
    for name in TALBANKEN_FILES:
        yield from read_talbanken(data_dir / name)


def split_sentences(sentences: Iterable[Sentence]) -> dict[str, list[Sentence]]:
    """Sentences grouped by split."""
    parts: dict[str, list[Sentence]] = {name: [] for name in SPLITS}
    for sentence in sentences:
        parts[split_of(sentence.split_key)].append(sentence)
    return parts


def to_doc(vocab: Any, sentence: Sentence) -> Doc:
    """A spaCy Doc with the corpus tokens, natural spacing and gold entities."""
    doc = Doc(vocab, words=list(sentence.tokens), spaces=list(sentence.spaces))
    doc.ents = [Span(doc, start, end, label=label) for start, end, label in sentence.spans]
    return doc


def evaluation_record(doc: Doc, sentence_id: str) -> dict[str, Any]:
    """The project's evaluation format: text plus PER/ORG/LOC character spans."""
    scored = [ent for ent in doc.ents if ent.label_ in SCORED_LABELS]
    entities = [[ent.start_char, ent.end_char, ent.label_] for ent in scored]
    return {"id": sentence_id, "text": doc.text, "entities": entities}


def build_corpora(data_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write train/dev/test ``.spacy`` files and ``test.jsonl``; return sentences per split."""
    vocab = spacy.blank("sv").vocab
    parts = split_sentences(read_corpora(data_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, sentences in parts.items():
        docs = [to_doc(vocab, sentence) for sentence in sentences]
        DocBin(docs=docs, store_user_data=False).to_disk(out_dir / f"{name}.spacy")
        if name == "test":
            with (out_dir / "test.jsonl").open("w", encoding="utf-8") as out:
                for doc, sentence in zip(docs, sentences, strict=True):
                    record = evaluation_record(doc, sentence.id)
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return {name: len(sentences) for name, sentences in parts.items()}


def _describe(nlp: spacy.Language, version: str) -> None:
    """Meta that travels with the model: what it is, what it was trained on, its licence."""
    nlp.meta.update(
        {
            "name": MODEL_NAME,
            "version": version,
            "description": "Swedish PER/ORG/LOC/MISC recogniser (CNN tok2vec + transition NER)",
            "license": MODEL_LICENSE,
            "sources": [
                {"name": "Webbnyheter 2012 (Språkbanken)", "license": "CC BY 4.0"},
                {"name": "UNER Swedish Talbanken", "license": "CC BY-SA 4.0"},
            ],
        }
    )


def _install(nlp: spacy.Language, output: Path) -> None:
    """Replace the model in ``output``; a hand-written MODEL_CARD.md there is kept."""
    output.mkdir(parents=True, exist_ok=True)
    for entry in output.iterdir():
        if entry.name == "MODEL_CARD.md":
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    nlp.to_disk(output)


def train_ner(
    config: Path,
    data_dir: Path,
    output: Path,
    *,
    overrides: dict[str, Any] | None = None,
    version: str = "1.0.0",
    press_dir: Path = DEFAULT_PRESS_DIR,
    domain_set: Path | None = DEFAULT_DOMAIN_SET,
) -> Path:
    """Train on the train split, early-stop on dev, score the test split, install in ``output``.

    Corpora and checkpoints live in a temporary directory; only the best pipeline (no
    optimizer state), the common-word list built from ``press_dir`` and ``metrics.json`` reach
    ``output``. The metrics hold the test split scored by the bare model and with the rules
    that run after it, and the hand-annotated ``domain_set`` scored with the rules.
    """
    from spacy.cli.train import train

    if not config.is_file():
        raise FileNotFoundError(f"training config not found: {config}")
    with tempfile.TemporaryDirectory(prefix="ner-train-") as tmp:
        work = Path(tmp)
        counts = build_corpora(data_dir, work / "corpus")
        settings = {
            "paths.train": str(work / "corpus" / "train.spacy"),
            "paths.dev": str(work / "corpus" / "dev.spacy"),
            **(overrides or {}),
        }
        started = time.perf_counter()
        train(config, work / "runs", use_gpu=-1, overrides=settings)
        seconds = time.perf_counter() - started
        nlp = spacy.load(work / "runs" / "model-best")
        _describe(nlp, version)
        metrics = {
            "split_sentences": counts,
            "training_seconds": round(seconds, 1),
            "dev_ents_f": nlp.meta.get("performance", {}).get("ents_f"),
            "test": evaluate(nlp, read_jsonl(work / "corpus" / "test.jsonl")),
        }
        _install(nlp, output)
        _add_common_words(output, press_dir)
        with_rules = load_ner(output)
        test = read_jsonl(work / "corpus" / "test.jsonl")
        metrics["test_with_rules"] = evaluate(with_rules, test)
        if domain_set is not None:
            try:
                records = list(with_texts(read_jsonl(domain_set)))
            except EvaluationTextError as error:  # ../shared without the seeds: say so
                metrics["domain_test_with_rules"] = {"skipped": str(error)}
            else:
                metrics["domain_test_with_rules"] = evaluate(with_rules, records)
        text = json.dumps(metrics, ensure_ascii=False, indent=2) + "\n"
        (output / "metrics.json").write_text(text, encoding="utf-8")
    return output


def _add_common_words(output: Path, press_dir: Path) -> None:
    """Ship the common-word list of :mod:`pipeline.nlp.ner_rules` with the model; without the
    press corpus the model goes without it and that rule is off."""
    files = sorted(Path(press_dir).rglob("*.md"))
    if not files:
        return
    words = build_common_words(file.read_text(encoding="utf-8") for file in files)
    (output / COMMON_WORDS_FILE).write_text("\n".join(words) + "\n", encoding="utf-8")
