"""What the statistical NER gets wrong in this field, fixed by the gazetteer and a few rules.

The model is trained on news sentences. On the users' texts it misses the sector's own names
("Malmö mot Diskriminering", "Hyresbostäder i Norrköping", "Botkyrka kommun") and, in pages
that keep some markup, lets entities start with a heading mark or run across a line break.
Two components run after the ``ner`` component of the loaded pipeline:

1. ``gazetteer_ruler``, a spaCy ``EntityRuler`` with every name of ``corpus/gazetteer`` (and
   its genitive). It overwrites the model where they overlap: a listed name is an exact,
   curated match, while the model's span around it is a guess. Measured on the development
   sets (README, "Named-entity recognition"), placing it after the model with overwriting was
   as good as or better than before the model and than only filling gaps.
2. ``entity_edges``: an entity never starts or ends with a token without letters or digits
   ("# Regeringen", "[Migrationsverkets"), never runs over a line break, and a person's name
   does not include the title in front of it ("Socialminister Jakob Forssmed"); an
   organisation's name includes the legal form after it ("Heimstaden AB (publ)"). A single word
   at the start of a sentence or line that is a common word ("Kommunen", "Projektet",
   "Måndag") is not a name: the news-trained model often takes any capitalised word for one.
   Common words are those the press corpus writes in lower case at least four times as often
   as capitalised inside a sentence (shipped with the model as ``common_words.txt``).

The word lists the rules use live in :mod:`pipeline.nlp.ner_lexicon`.

The rules change what a document's entities are, so their digest is part of the NER version
stored with each annotated document (:func:`pipeline.nlp.ner_lexicon.rules_version`):
editing the gazetteer makes the next batch re-annotate, just as a retrained model does.
"""

from __future__ import annotations

from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.util import filter_spans

from pipeline.nlp.ner_lexicon import (
    LEGAL_FORMS,
    SENTENCE_BOUNDARY,
    TITLES,
    gazetteer_patterns,
    read_common_words,
    rules_version,
)


def add_rules(nlp: Language, model_dir: Path, *, edges: bool = True) -> Language:
    """Add the gazetteer ruler and (unless ``edges`` is false, to measure the ruler alone)
    the edge rules after the pipeline's ``ner``."""
    ruler = nlp.add_pipe(
        "entity_ruler",
        name="gazetteer_ruler",
        after="ner",
        config={"overwrite_ents": True, "validate": False},
    )
    # The ruler turns phrase patterns into Docs with the pipes before it, here tok2vec and ner:
    # wasted work (a third of the load time) for patterns matched on the words alone.
    with nlp.select_pipes(enable=["gazetteer_ruler"]):
        ruler.add_patterns(list(gazetteer_patterns()))
    common_words = read_common_words(model_dir)
    if edges:
        nlp.add_pipe("entity_edges", after="gazetteer_ruler").common_words = common_words
    nlp.meta["rules"] = rules_version(common_words)
    return nlp


def _is_title(token: Token) -> bool:
    return token.lower_.endswith(TITLES)


def _has_word(token: Token) -> bool:
    return any(character.isalnum() for character in token.text)


def _crosses_line(token: Token) -> bool:
    return "\n" in token.text or "\n" in token.whitespace_


def _positional_capital(token: Token) -> bool:
    """Whether the token starts a sentence or a line, where every word is capitalised."""
    if token.i == 0:
        return True
    previous = token.doc[token.i - 1]
    return previous.text in SENTENCE_BOUNDARY or _crosses_line(previous)


def _after_legal_form(doc: Doc, end: int) -> int:
    """Where an organisation's name ends when a legal form (and "(publ)") follows it."""
    if end < len(doc) and doc[end].text in LEGAL_FORMS and doc[end - 1].whitespace_ == " ":
        end += 1
        publ = doc[end : end + 3]
        if len(publ) == 3 and [t.text for t in publ] == ["(", "publ", ")"]:
            end += 3
    return end


def trimmed(span: Span) -> Span | None:
    """The span without markup at its edges, cut at a line break, without a leading title."""
    doc, start, end = span.doc, span.start, span.end
    for i in range(start, end):
        if _crosses_line(doc[i]):
            end = i if doc[i].is_space else i + 1
            break
    while start < end and not _has_word(doc[start]):
        start += 1
    while end > start and not _has_word(doc[end - 1]):
        end -= 1
    if span.label_ == "PER":
        while end - start > 1 and (_is_title(doc[start]) or doc[start].is_lower):
            start += 1
    if span.label_ == "ORG" and start < end:
        end = _after_legal_form(doc, end)
    if start == end:
        return None
    return Span(doc, start, end, label=span.label_, kb_id=span.kb_id_, span_id=span.id_)


class EntityEdges:
    """The ``entity_edges`` component: :func:`trimmed` on every entity, and single common
    words in sentence-initial position dropped unless the gazetteer named them."""

    def __init__(self) -> None:
        self.common_words: frozenset[str] = frozenset()

    def __call__(self, doc: Doc) -> Doc:
        spans = []
        for span in map(trimmed, doc.ents):
            if span is None or self._common_word(span):
                continue
            spans.append(self._with_name(span))
        doc.ents = filter_spans(spans)
        return doc

    def _with_name(self, span: Span) -> Span:
        """An organisation found as only the common noun before its name ("Bostadsbolaget" of
        "Bostadsbolaget Söderhem") takes the capitalised words that follow."""
        doc, end = span.doc, span.end
        if span.label_ != "ORG" or len(span) != 1 or span[0].lower_ not in self.common_words:
            return span
        while (
            end < len(doc)
            and doc[end - 1].whitespace_ == " "
            and doc[end].is_title
            and doc[end].lower_ not in self.common_words
        ):
            end += 1
        if end == span.end:
            return span
        return Span(doc, span.start, end, label="ORG")

    def _common_word(self, span: Span) -> bool:
        return (
            len(span) == 1
            and not span.ent_id_  # the gazetteer ruler's names carry their entity key
            and span[0].lower_ in self.common_words
            and _positional_capital(span[0])
        )


@Language.factory("entity_edges")
def make_entity_edges(nlp: Language, name: str) -> EntityEdges:
    return EntityEdges()
