"""Specification of the theme classifier: taxonomy, keyword rules, labels, split, training,
loading, scoring, explaining and the evaluate-themes command."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

from pipeline.nlp.taxonomy import DEFAULT_THEMES, ThemesError, load_themes
from pipeline.nlp.themes import (
    DEFAULT_LABELS,
    DEFAULT_PRESS_DIR,
    DEFAULT_THEME_MODEL,
    LABEL_FILES,
    MODEL_FILE,
    REPO_ROOT,
    TEST_SOURCES,
    TRUSTED_TYPES,
    KeywordRule,
    KeywordThemeModel,
    LabelledDocument,
    ThemeModel,
    ThemeModelMissingError,
    TrainingConfig,
    _with_vocabularies,
    assign_splits,
    bootstrap_macro_f1,
    cross_validation_folds,
    evaluate_themes,
    keyword_scores,
    label_matrix,
    load_labelled,
    markdown_body,
    normalize_text,
    out_of_fold_decisions,
    read_labels,
    train_themes,
    weak_labels,
    word_with_ngram,
)

TAXONOMY = [
    "segregation",
    "diskriminering",
    "integration",
    "nyanlanda",
    "hemloshet",
    "arbete",
    "trygghet",
    "boinflytande",
    "bostadsforsorjning",
    "samverkan",
    "forskning",
]

needs_press = pytest.mark.skipif(
    not DEFAULT_PRESS_DIR.is_dir(), reason=f"press corpus not available at {DEFAULT_PRESS_DIR}"
)
needs_model = pytest.mark.skipif(
    not (DEFAULT_THEME_MODEL / MODEL_FILE).is_file(),
    reason=f"no trained theme model at {DEFAULT_THEME_MODEL}",
)

VALID_THEME = """\
themes:
  - slug: hemloshet
    label: Hemlöshet
    definition: Hemlöshet och utestängning från bostadsmarknaden.
    keywords: [hemlös, bostad först, vräk]
"""


# --- the taxonomy file ----------------------------------------------------------------------


def test_project_taxonomy_loads_with_the_agreed_slugs() -> None:
    themes = load_themes(DEFAULT_THEMES)
    assert [theme.slug for theme in themes] == TAXONOMY
    assert all(theme.label and theme.definition and theme.keywords for theme in themes)


@pytest.mark.parametrize(
    ("yaml_text", "theme", "key"),
    [
        (
            VALID_THEME.replace("    keywords: [hemlös, bostad först, vräk]\n", ""),
            "hemloshet",
            "keywords",
        ),
        (VALID_THEME.replace("bostad först", "bostad (först"), "hemloshet", "keywords"),
        (
            VALID_THEME.replace("keywords: [hemlös, bostad först, vräk]", "keywords: []"),
            "hemloshet",
            "keywords",
        ),
        (VALID_THEME.replace("label: Hemlöshet", "label: ''"), "hemloshet", "label"),
        (
            VALID_THEME.replace("    keywords:", "    keyword: [x]\n    keywords:"),
            "hemloshet",
            "keyword",
        ),
        (VALID_THEME.replace("slug: hemloshet", "slug: Hemlöshet"), "Hemlöshet", "slug"),
        (VALID_THEME + VALID_THEME.split("themes:\n", 1)[1], "hemloshet", "slug"),
    ],
    ids=[
        "missing-key",
        "bad-regex",
        "no-keywords",
        "empty-label",
        "unknown-key",
        "bad-slug",
        "duplicate",
    ],
)
def test_invalid_themes_file_is_refused_naming_file_theme_and_key(
    tmp_path: Path, yaml_text: str, theme: str, key: str
) -> None:
    path = tmp_path / "themes.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ThemesError) as error:
        load_themes(path)
    message = str(error.value)
    assert str(path) in message
    assert f"theme '{theme}'" in message
    assert f"key '{key}'" in message


def test_themes_file_that_is_not_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "themes.yaml"
    path.write_text("themes: [slug: hemloshet\n  label: {", encoding="utf-8")
    with pytest.raises(ThemesError, match=re.escape(str(path))):
        load_themes(path)


# --- keyword rules and weak labels -------------------------------------------------------------

PASSING = (
    "Regeringen presenterar i dag budgetpropositionen för 2025. Satsningarna gäller försvaret, "
    "sjukvården och klimatomställningen. Bland de mindre posterna finns stöd till organisationer "
    "som arbetar mot hemlöshet. Finansministern betonar att inflationen nu har bromsat in."
)
RECURRING = (
    "Stockholms stadsmission öppnar ett nytt härbärge i Hägersten. Hemlösheten har ökat under "
    "vintern och fler hemlösa söker tak över huvudet. – Ingen ska behöva sova ute, säger "
    "verksamhetschefen. Samtidigt utvidgar staden arbetet med Bostad först, där den som är "
    "hemlös får ett eget hyreskontrakt utan krav på att först bli drogfri."
)


def test_weak_labels_ignore_a_single_passing_mention() -> None:
    themes = load_themes(DEFAULT_THEMES)
    assert "hemloshet" not in weak_labels([PASSING], themes)[0]


def test_weak_labels_fire_when_the_keywords_recur() -> None:
    themes = load_themes(DEFAULT_THEMES)
    assert "hemloshet" in weak_labels([RECURRING], themes)[0]


def test_weak_labels_need_more_matches_in_a_long_document() -> None:
    themes = load_themes(DEFAULT_THEMES)
    mentions = "Kommunen arbetar mot hemlöshet. Fler hemlösa får hjälp. Bostad först utvidgas. "
    filler = "Regeringen föreslår nya regler för fiske i Östersjön och Bottniska viken. " * 200
    short, long = mentions + "Det säger socialchefen.", mentions + filler
    assert "hemloshet" in weak_labels([short], themes)[0]
    assert "hemloshet" not in weak_labels([long], themes)[0]


def test_keyword_score_crosses_one_half_exactly_where_the_rule_fires() -> None:
    themes = [t for t in load_themes(DEFAULT_THEMES) if t.slug == "hemloshet"]
    rule = KeywordRule(min_hits=3, per_1000_words=0.0)
    two = "Hemlösa i Malmö. Hemlösheten ökar. Kommunen svarar."
    three = two + " Nya hemlösa varje vecka."
    assert keyword_scores(two, themes, rule)["hemloshet"] < 0.5
    assert keyword_scores(three, themes, rule)["hemloshet"] == pytest.approx(0.5)


def test_keywords_match_at_word_starts_only() -> None:
    themes = load_themes(DEFAULT_THEMES)
    debts = "Avräkningsordningen ändras. Avräkning sker mot räntan. Ny avräkning varje år. " * 3
    access = (
        "Tillgängligheten ökar. Bättre tillgänglighet i kollektivtrafiken. Tillgängliga hus. " * 3
    )
    labels = weak_labels([debts, access], themes)
    assert "hemloshet" not in labels[0]
    assert "trygghet" not in labels[1]


def test_soft_hyphens_do_not_split_keywords() -> None:
    text = "Hem\u00adlösheten ökar. Fler hem\u00adlösa. Bostad\u00a0först hjälper hemlösa."
    assert normalize_text(text) == "Hemlösheten ökar. Fler hemlösa. Bostad först hjälper hemlösa."
    assert "hemloshet" in weak_labels([text], load_themes(DEFAULT_THEMES))[0]


def test_markdown_body_drops_the_title_heading_marks_and_link_targets() -> None:
    markdown = (
        "# Ny lag om bosättning\n\n### Bakgrund\n\nLäs [direktivet](/rattsliga-dokument/dir-12)"
        " här.\n"
    )
    assert markdown_body(markdown) == "Bakgrund\n\nLäs direktivet här."


# --- evaluation ---------------------------------------------------------------------------------


def test_evaluate_computes_per_theme_and_averaged_scores(tmp_path: Path) -> None:
    path = tmp_path / "themes.yaml"
    path.write_text(
        "themes:\n"
        "  - {slug: hemloshet, label: Hemlöshet, definition: Hemlöshet., keywords: [hemlös]}\n"
        "  - {slug: arbete, label: Arbete, definition: Arbete., keywords: [arbetslös]}\n"
        "  - {slug: trygghet, label: Trygghet, definition: Trygghet., keywords: [polis]}\n",
        encoding="utf-8",
    )
    model = KeywordThemeModel(load_themes(path), KeywordRule(min_hits=2, per_1000_words=0.0))
    examples = [
        {"id": "a", "text": "Hemlösa i Göteborg. Hemlösheten ökar.", "themes": ["hemloshet"]},
        {
            "id": "b",
            "text": "Hemlösa och arbetslösa. Hemlöshet följer på att arbetslösa förlorar bostaden.",
            "themes": ["hemloshet"],
        },
        {"id": "c", "text": "Arbetslösheten steg i maj.", "themes": ["arbete"]},
        {"id": "d", "text": "Sol och värme väntas i helgen.", "themes": []},
    ]
    result = evaluate_themes(model, examples)
    assert result["per_theme"]["hemloshet"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 2,
        "predicted": 2,
    }
    assert result["per_theme"]["arbete"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 1,
        "predicted": 1,
    }
    assert result["per_theme"]["trygghet"]["support"] == 0
    assert result["macro_f1"] == 0.5  # trygghet has no gold positive and is not averaged
    assert result["micro"]["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["documents"] == 4


def test_bootstrap_intervals_bracket_the_score_and_pair_the_resamples(tmp_path: Path) -> None:
    path = tmp_path / "themes.yaml"
    path.write_text(SMALL_TAXONOMY, encoding="utf-8")
    themes = load_themes(path)
    strict = KeywordThemeModel(themes, KeywordRule(min_hits=2, per_1000_words=0.0))
    lenient = KeywordThemeModel(themes, KeywordRule(min_hits=1, per_1000_words=0.0))
    rng = random.Random(5)
    examples = [
        {"id": str(n), "text": _body(rng, str(n), plan), "themes": plan}
        for n, plan in enumerate([["hemloshet"], ["arbete"], ["trygghet"], []] * 6)
    ]
    examples[0]["text"] = "Hemlösa syns i centrum."  # one mention: only the lenient rule fires
    point = evaluate_themes(strict, examples)["macro_f1"]
    same = bootstrap_macro_f1(strict, strict, examples, resamples=300)
    assert same["difference"] == [0.0, 0.0]
    assert same["model"][0] <= point <= same["model"][1]
    other = bootstrap_macro_f1(lenient, strict, examples, resamples=300)
    assert other["difference"][1] > 0.0


def test_evaluate_refuses_gold_labels_outside_the_taxonomy() -> None:
    model = KeywordThemeModel(load_themes(DEFAULT_THEMES))
    with pytest.raises(ValueError, match="hemlos"):
        evaluate_themes(model, [{"id": "x", "text": "Text.", "themes": ["hemlos"]}])


# --- the split ---------------------------------------------------------------------------------


def _doc(number: int, source: str, *themes: str) -> LabelledDocument:
    return LabelledDocument(f"{source}/{number:03d}.md", source, f"Text {number}.", themes)


def _split_fixture() -> list[LabelledDocument]:
    """90 press, 10 sample and 40 written documents with one rare and two common themes."""
    rng = random.Random(3)
    documents = []
    for number in range(140):
        source = "press" if number < 90 else "sample" if number < 100 else "written"
        themes = [slug for slug in ("arbete", "trygghet") if rng.random() < 0.35]
        if number % 12 == 0 or (source == "written" and number % 3 == 0):
            themes.append("hemloshet")
        documents.append(_doc(number, source, *themes))
    return documents


def test_test_documents_are_real_and_every_theme_has_enough_test_positives() -> None:
    documents = _split_fixture()
    config = TrainingConfig(min_test_positives=6, min_validation_positives=4)
    splits = assign_splits(documents, ["arbete", "trygghet", "hemloshet"], config)
    test = [d for d in documents if splits[d.id] == "test"]
    validation = [d for d in documents if splits[d.id] == "validation"]
    assert {d.source for d in test} <= TEST_SOURCES
    positives = Counter(slug for d in test for slug in d.themes)
    assert min(positives.values()) >= 6, positives
    assert Counter(slug for d in validation for slug in d.themes)["hemloshet"] >= 4
    real = sum(d.source in TEST_SOURCES for d in documents)
    assert 0.2 * real <= len(test) <= 0.45 * real
    assert any(not d.themes for d in test)


def test_cross_validation_folds_spread_every_theme_evenly_and_repeat() -> None:
    documents = _split_fixture()
    folds = cross_validation_folds(documents, 5, seed=3)
    assert list(folds) == list(cross_validation_folds(documents, 5, seed=3))
    for slug in ("arbete", "trygghet", "hemloshet"):
        per_fold = Counter(int(folds[i]) for i, d in enumerate(documents) if slug in d.themes)
        assert len(per_fold) == 5 and max(per_fold.values()) - min(per_fold.values()) <= 1, slug


def test_the_split_is_the_same_every_time_and_changes_with_the_seed() -> None:
    documents = _split_fixture()
    slugs = ["arbete", "trygghet", "hemloshet"]
    first = assign_splits(documents, slugs, TrainingConfig())
    assert assign_splits(list(reversed(documents)), slugs, TrainingConfig()) == first
    assert assign_splits(documents, slugs, TrainingConfig(seed=7)) != first


def test_a_rare_theme_keeps_two_positives_for_training() -> None:
    documents = [_doc(n, "press", "hemloshet") for n in range(5)]
    documents += [_doc(n, "press") for n in range(5, 40)]
    splits = assign_splits(documents, ["hemloshet"], TrainingConfig(min_test_positives=6))
    assert sum(splits[d.id] == "test" for d in documents if d.themes) == 3


# --- training round trip on a small synthetic labelled corpus -------------------------------------

POOLS = {
    "hemloshet": [
        "Antalet hemlösa i kommunen har ökat kraftigt det senaste året.",
        "Stadsmissionen öppnar ett nytt härbärge för hemlösa kvinnor.",
        "Bostad först ger personer i hemlöshet ett eget hyreskontrakt.",
        "Socialtjänsten vill förebygga vräkningar genom tidig kontakt med hyresvärdarna.",
        "Fler barnfamiljer riskerar vräkning när hyrorna stiger.",
        "Hemlösheten bland unga vuxna är ett växande problem i storstäderna.",
        "Kommunen erbjuder sociala kontrakt till den som står utan bostad.",
        "Natthärbärget var fullbelagt under de kallaste nätterna.",
    ],
    "arbete": [
        "Arbetslösheten bland unga steg till nio procent i mars.",
        "Arbetsförmedlingen ska förbättra matchningen mellan arbetssökande och arbetsgivare.",
        "Fler långtidsarbetslösa ska komma i arbete genom subventionerade anställningar.",
        "Regeringen vill att fler ska gå från försörjningsstöd till egenförsörjning.",
        "Sysselsättningen ökade i industrin under andra kvartalet.",
        "Nystartsjobb och lönebidrag gör det lättare för företag att anställa.",
        "Jobbcoacher hjälper arbetssökande att skriva ansökningar.",
        "Många lediga jobb finns inom vården och byggsektorn.",
    ],
    "trygghet": [
        "Polisen ökar närvaron i centrum efter flera skjutningar.",
        "Kommunen satsar på brottsförebyggande arbete bland unga.",
        "Gängkriminaliteten har flyttat ut till mindre orter.",
        "Fler ordningsvakter ska öka tryggheten på torget.",
        "Brottsofferjouren möter allt fler som utsatts för våld.",
        "Kameraövervakning införs vid stationen efter rån och misshandel.",
        "Otryggheten i trapphusen är störst på kvällarna.",
        "Polisen och socialtjänsten samarbetar för att stoppa nyrekryteringen till gängen.",
    ],
}
NEUTRAL = [
    "Sverige och Finland fördjupar försvarssamarbetet i Östersjöregionen.",
    "Landsbygdsministern deltar vid jordbruksrådet i Bryssel.",
    "Exporten av trävaror ökade med sju procent förra året.",
    "Regeringen utser en ny landshövding i Västerbottens län.",
    "Den nya järnvägen mellan Umeå och Luleå planeras stå klar 2030.",
    "Riksbanken lämnade styrräntan oförändrad vid sitt senaste möte.",
    "Kulturministern inviger den nya utställningen på Nationalmuseum.",
    "Fiskekvoterna för sill i Östersjön sänks nästa år.",
]
SMALL_TAXONOMY = """\
themes:
  - slug: hemloshet
    label: Hemlöshet
    definition: Hemlöshet och utestängning från bostadsmarknaden.
    keywords: [\\w*hemlös, härbärge, bostad först, vräk]
  - slug: arbete
    label: Arbete
    definition: Sysselsättning och arbetsmarknad.
    keywords: [\\w*arbetslös, arbetsförmedling, \\w*jobb, sysselsättning]
  - slug: trygghet
    label: Trygghet
    definition: Trygghet och brottslighet.
    keywords: [polis, \\w*brott, gäng, \\w*våld, \\w*otrygg]
"""
TINY = TrainingConfig(
    word_max_features=3000,
    word_min_df=1,
    char_max_features=4000,
    char_min_df=1,
    max_df=1.0,
    test_fraction=0.3,
    min_test_positives=4,
    validation_fraction=0.3,
    min_validation_positives=3,
    unlabelled_sample=12,
)


def _body(rng: random.Random, marker: str, themes: list[str]) -> str:
    sentences = [s for slug in themes for s in rng.sample(POOLS[slug], 3)]
    sentences += rng.sample(NEUTRAL, 2 if themes else 4)
    rng.shuffle(sentences)
    return f"Ärende {marker}. " + " ".join(sentences)


def _labelled_corpus(root: Path) -> dict[str, Path]:
    """Press Markdown, sample HTML pages and written Markdown, with label files for each."""
    rng = random.Random(11)
    press, labels, repo = root / "press", root / "labels", root / "repo"
    plans = [[], ["hemloshet"], ["arbete"], ["trygghet"], ["arbete", "trygghet"]]
    rows: dict[str, list[dict]] = {"press.jsonl": [], "sample.jsonl": [], "written.jsonl": []}
    for number in range(70):
        themes = plans[number % len(plans)]
        marker = f"kod{number:03d}qz"
        if number < 50:
            relative = f"regeringen/pressmeddelanden/2024/{number % 12 + 1:02d}/dok-{number}.md"
            file, label_file = press / relative, "press.jsonl"
            content = f"# Nyhet {number}\n\n{_body(rng, marker, themes)}\n"
        elif number < 60:
            relative = f"corpus/sample/sites/kommun.example/nyheter/nyhet-{number}.html"
            file, label_file = repo / relative, "sample.jsonl"
            content = (
                f"<html lang='sv'><head><title>Nyhet {number}</title></head><body><main>"
                f"<h1>Nyhet {number}</h1><p>{_body(rng, marker, themes)}</p></main></body></html>"
            )
        else:
            relative = f"written/inlagg-{number}.md"
            file, label_file = labels / relative, "written.jsonl"
            content = f"# Inlägg {number}\n\n{_body(rng, marker, themes)}\n"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(content, encoding="utf-8")
        rows[label_file].append({"path": relative, "themes": themes})
    for number in range(15):  # unlabelled press releases for weak labels and self-training
        file = press / "regeringen" / "pressmeddelanden" / "2025" / f"omarkt-{number}.md"
        file.parent.mkdir(parents=True, exist_ok=True)
        themes = plans[number % len(plans)]
        file.write_text(f"# Omärkt {number}\n\n{_body(rng, 'x', themes)}\n", encoding="utf-8")
    for name, lines in rows.items():
        (labels / name).write_text("".join(json.dumps(r) + "\n" for r in lines), "utf-8")
    taxonomy = root / "themes.yaml"
    taxonomy.write_text(SMALL_TAXONOMY, encoding="utf-8")
    return {"press_dir": press, "labels_dir": labels, "repo_root": repo, "themes_path": taxonomy}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _labelled_corpus(tmp_path_factory.mktemp("labelled"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, corpus) -> tuple[Path, dict]:
    """Train once on the synthetic corpus and share the result."""
    output = tmp_path_factory.mktemp("model") / "themes"
    return output, train_themes(output, config=TINY, **corpus)


def test_labelled_documents_are_read_from_all_three_sources(corpus) -> None:
    documents = load_labelled(["hemloshet", "arbete", "trygghet"], **_paths(corpus))
    assert Counter(d.source for d in documents) == {"press": 50, "sample": 10, "written": 10}
    sample = next(d for d in documents if d.source == "sample")
    assert sample.text.startswith("Ärende kod")  # the extractor's body, without the title
    press = next(d for d in documents if d.source == "press")
    assert not press.text.startswith("Nyhet")


def _paths(corpus: dict[str, Path]) -> dict[str, Path]:
    return {key: corpus[key] for key in ("labels_dir", "press_dir", "repo_root")}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"path": "written/inlagg-60.md", "themes": ["hemlos"]}', "unknown themes"),
        ('{"path": "written/inlagg-60.md", "themes": []}', "labelled twice"),
        ('{"path": "written/saknas.md", "themes": []}', "not found"),
    ],
)
def test_bad_labels_are_refused_naming_the_file_and_the_document(
    corpus, tmp_path: Path, line: str, problem: str
) -> None:
    labels = tmp_path / "labels"
    shutil.copytree(corpus["labels_dir"], labels)
    with (labels / "written.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    paths = _paths(corpus) | {"labels_dir": labels}
    with pytest.raises((ValueError, FileNotFoundError), match=problem):
        load_labelled(["hemloshet", "arbete", "trygghet"], **paths)


def test_an_out_of_fold_score_never_comes_from_a_model_that_saw_the_document(corpus) -> None:
    """Changing one document's labels changes the scores of documents in other folds (their
    models learnt from it) but never its own: its score comes from the model of the others."""
    themes = load_themes(corpus["themes_path"])
    slugs = [theme.slug for theme in themes]
    documents = load_labelled(slugs, **_paths(corpus))
    texts = [normalize_text(d.text) for d in documents]
    y = label_matrix([d.themes for d in documents], slugs)
    folds = cross_validation_folds(documents, 5, seed=1)
    before = out_of_fold_decisions(texts, y, folds, themes, TINY)
    changed = y.copy()
    changed[0] = 1 - changed[0]
    after = out_of_fold_decisions(texts, changed, folds, themes, TINY)
    assert np.array_equal(before[0], after[0])
    assert not np.array_equal(before[folds != folds[0]], after[folds != folds[0]])
    assert np.array_equal(before[folds == folds[0]], after[folds == folds[0]])


def test_training_writes_model_thresholds_metadata_and_metrics(trained) -> None:
    output, metrics = trained
    for name in ("themes.skops", "thresholds.json", "metadata.json", "metrics.json"):
        assert (output / name).is_file(), name
    assert json.loads((output / "metrics.json").read_text(encoding="utf-8")) == metrics
    assert re.fullmatch(r"themes-[0-9a-f]{10}", metrics["version"])
    assert set(metrics["test"]["model"]["per_theme"]) == {"hemloshet", "arbete", "trygghet"}
    assert metrics["test"]["keyword_baseline"]["documents"] == metrics["split"]["test"]["documents"]
    assert set(metrics["augmentation"]["validation"]) == {"none", "weak_labels", "self_training"}
    low, high = metrics["test"]["bootstrap_95"]["model"]
    assert low <= metrics["test"]["model"]["macro_f1"] <= high


def test_the_test_split_holds_real_documents_only_and_is_never_trained_on(trained) -> None:
    output, metrics = trained
    split = metrics["split"]
    assert set(split["test"]["sources"]) <= TEST_SOURCES
    assert sum(split[name]["documents"] for name in ("train", "validation", "test")) == 70
    vocabulary = ThemeModel.load(output).features.transformer_list[0][1].vocabulary_
    markers = {word for word in vocabulary if re.fullmatch(r"kod\d{3}qz", word)}
    assert len(markers) == split["train"]["documents"]  # each training document's marker
    test_numbers = {int(re.search(r"(\d+)\.\w+$", path).group(1)) for path in split["test_ids"]}
    assert not {f"kod{number:03d}qz" for number in test_numbers} & markers


def test_training_twice_gives_the_same_model(trained, corpus, tmp_path: Path) -> None:
    output, metrics = trained
    again = train_themes(tmp_path / "again", config=TINY, **corpus)
    assert again == metrics
    first, second = ThemeModel.load(output), ThemeModel.load(tmp_path / "again")
    assert first.scores(NEW_TEXTS) == second.scores(NEW_TEXTS)


def test_the_version_changes_when_a_label_changes(corpus, tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    shutil.copytree(corpus["labels_dir"], labels)
    path = labels / "written.jsonl"
    rows = read_labels(path)
    rows[0]["themes"] = ["arbete"] if rows[0]["themes"] != ["arbete"] else []
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    documents = load_labelled(["hemloshet", "arbete", "trygghet"], **_paths(corpus))
    changed = load_labelled(
        ["hemloshet", "arbete", "trygghet"], **(_paths(corpus) | {"labels_dir": labels})
    )
    themes = load_themes(corpus["themes_path"])
    assert TINY.digest(themes, documents) != TINY.digest(themes, changed)


NEW_TEXTS = [
    "Ideella organisationer larmar om att hemlösa kvinnor nekas plats på härbärgena. "
    "Hemlösheten har ökat och Bostad först räcker inte till, säger Stadsmissionen.",
    "Arbetsförmedlingen rapporterar att arbetslösheten fortsätter att stiga och att fler "
    "arbetssökande behöver stöd för att få jobb.",
    "Försvarsministern besöker marinbasen i Karlskrona för att följa en övning.",
]


def test_loaded_model_reports_the_trained_version(trained) -> None:
    output, metrics = trained
    assert ThemeModel.load(output).version == metrics["version"]


def test_predict_returns_only_themes_above_threshold_sorted_by_score(trained) -> None:
    model = ThemeModel.load(trained[0])
    all_scores = model.scores(NEW_TEXTS)
    predictions = model.predict(NEW_TEXTS)
    for scores, predicted in zip(all_scores, predictions, strict=True):
        assert set(scores) == {"hemloshet", "arbete", "trygghet"}
        assert all(0.0 <= score <= 1.0 for score in scores.values())
        expected = {slug for slug, score in scores.items() if score >= model.thresholds[slug]}
        assert {slug for slug, _ in predicted} == expected
        assert [score for _, score in predicted] == sorted((s for _, s in predicted), reverse=True)
        assert all(scores[slug] == score for slug, score in predicted)
    assert predictions[0][0][0] == "hemloshet"
    assert predictions[1][0][0] == "arbete"
    assert "hemloshet" not in {slug for slug, _ in predictions[2]}


def test_predict_of_nothing_is_nothing(trained) -> None:
    model = ThemeModel.load(trained[0])
    assert model.predict([]) == []
    assert model.predict_with_terms([]) == []


def test_explain_names_words_of_the_text_that_raised_the_score(trained) -> None:
    model = ThemeModel.load(trained[0])
    terms = model.explain(NEW_TEXTS[0], "hemloshet", k=5)
    assert 0 < len(terms) <= 5
    words = set(re.findall(r"\w+", normalize_text(NEW_TEXTS[0]).lower()))
    assert all(set(term.split()) <= words for term in terms)
    assert any(term.startswith(("hemlös", "härbärge", "bostad")) for term in terms)


@pytest.mark.parametrize(
    ("ngram", "word"),
    [
        (" bost", "bostadsbrist"),  # starts a word
        ("brist ", "bostadsbrist"),  # ends one: the first such word, not "bristerna"
        ("ads", "bostadsbrist"),  # inside one
        (" i ", "i"),  # a whole one-letter word, not the "i" inside "bristerna"
        ("(mal", "(mal"),  # not only word characters: shown as it is
        ("xyz", "xyz"),  # in no word: shown as it is
    ],
)
def test_a_character_ngram_is_shown_as_the_word_of_the_text_that_holds_it(
    ngram: str, word: str
) -> None:
    text = "bristerna i bostadsbrist och bostadsbristen (malmö)"
    assert word_with_ngram(ngram, text) == word


def test_predict_with_terms_agrees_with_predict_and_explain(trained) -> None:
    model = ThemeModel.load(trained[0])
    with_terms = model.predict_with_terms(NEW_TEXTS, k=4)
    assert [[(s, score) for s, score, _ in row] for row in with_terms] == model.predict(NEW_TEXTS)
    for text, row in zip(NEW_TEXTS, with_terms, strict=True):
        for slug, _, terms in row:
            assert list(terms) == model.explain(text, slug, k=4)


def test_explain_refuses_an_unknown_theme(trained) -> None:
    with pytest.raises(KeyError, match="hemlos"):
        ThemeModel.load(trained[0]).explain("Text.", "hemlos")


def test_calibration_is_reported_on_the_test_split(trained) -> None:
    calibration = trained[1]["test"]["calibration"]
    assert calibration["pairs"] == 3 * trained[1]["split"]["test"]["documents"]
    assert 0.0 <= calibration["brier"] <= 0.25
    assert sum(b["pairs"] for b in calibration["bins"]) == calibration["pairs"]


def evaluate_themes_command(path: Path, model: str) -> subprocess.CompletedProcess[str]:
    """``pipeline evaluate-themes`` run as a user runs it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "evaluate-themes", str(path), "--model", model],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )


def test_evaluate_themes_command_scores_a_jsonl_file(trained, tmp_path: Path) -> None:
    examples = [
        {"id": "1", "text": NEW_TEXTS[0], "themes": ["hemloshet"]},
        {"id": "2", "text": NEW_TEXTS[1], "themes": ["arbete"]},
        {"id": "3", "text": NEW_TEXTS[2], "themes": []},
    ]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples), "utf-8")
    done = evaluate_themes_command(path, trained[0])
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed == evaluate_themes(ThemeModel.load(trained[0]), examples)
    assert printed["documents"] == 3
    assert printed["per_theme"]["hemloshet"]["support"] == 1


def test_evaluate_themes_command_names_an_unknown_theme(trained, tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "1", "text": "Text.", "themes": ["hemlos"]}\n', encoding="utf-8")
    done = evaluate_themes_command(path, trained[0])
    assert done.returncode != 0
    assert "hemlos" in done.stderr
    assert "hemloshet" in done.stderr  # the valid slugs, to fix the file with
    assert "Traceback" not in done.stderr


def test_evaluate_themes_command_names_the_line_that_is_not_json(trained, tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "1", "text": "Text.", "themes": []}\n{"id": 2,\n', encoding="utf-8")
    done = evaluate_themes_command(path, trained[0])
    assert done.returncode != 0
    assert f"{path}:2" in done.stderr
    assert "Traceback" not in done.stderr


# --- loading ------------------------------------------------------------------------------------


def test_load_refuses_a_missing_model_and_says_how_to_train_one(tmp_path: Path) -> None:
    with pytest.raises(ThemeModelMissingError, match="pipeline train-themes"):
        ThemeModel.load(tmp_path / "no-model-here")


def test_load_refuses_a_model_directory_with_a_file_missing(trained, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(trained[0], copy)
    (copy / "thresholds.json").unlink()
    with pytest.raises(ThemeModelMissingError, match=r"thresholds\.json"):
        ThemeModel.load(copy)


def test_load_explains_a_model_saved_in_the_older_layout(trained, tmp_path: Path) -> None:
    """Before vocabularies were stored as arrays they were inside the features."""
    copy = tmp_path / "model"
    shutil.copytree(trained[0], copy)
    stored = sio.load(copy / MODEL_FILE, trusted=TRUSTED_TYPES)
    features = _with_vocabularies(stored["features"], stored["vocabularies"])
    sio.dump({"features": features, "classifiers": stored["classifiers"]}, copy / MODEL_FILE)
    with pytest.raises(ThemesError, match=r"older version.*pipeline train-themes"):
        ThemeModel.load(copy)


class Sneaky:
    """A type no theme model contains; loading a file with it must fail."""


def test_load_refuses_a_model_file_with_untrusted_types(trained, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(trained[0], copy)
    sio.dump({"features": Sneaky(), "classifiers": {}}, copy / MODEL_FILE)
    with pytest.raises(UntrustedTypesFoundException):
        ThemeModel.load(copy)


# --- the project's labels and the shipped model ---------------------------------------------------


def test_project_label_files_are_valid() -> None:
    for label_file in LABEL_FILES:
        path = DEFAULT_LABELS / label_file.name
        if not path.is_file():
            continue
        for row in read_labels(path):
            assert set(row["themes"]) <= set(TAXONOMY), (path.name, row)
            assert row["themes"] == sorted(set(row["themes"])), (path.name, row)
            if label_file.base == "press":
                assert row["path"].startswith("regeringen/") and row["path"].endswith(".md")


@needs_press
def test_project_labels_cover_every_theme_on_at_least_400_documents() -> None:
    documents = load_labelled(TAXONOMY)
    assert len(documents) >= 400
    assert sum(d.source == "press" for d in documents) > len(documents) / 2
    positives = Counter(slug for d in documents for slug in d.themes)
    assert min(positives[slug] for slug in TAXONOMY) >= 25, positives
    assert sum(not d.themes for d in documents) >= 50


@needs_press
def test_project_test_split_can_measure_every_theme() -> None:
    documents = load_labelled(TAXONOMY)
    splits = assign_splits(documents, TAXONOMY, TrainingConfig())
    test = [d for d in documents if splits[d.id] == "test"]
    positives = Counter(slug for d in test for slug in d.themes)
    assert min(positives[slug] for slug in TAXONOMY) >= 6, positives
    assert all(d.source in TEST_SOURCES for d in test)


@needs_model
def test_shipped_model_is_small() -> None:
    assert (DEFAULT_THEME_MODEL / MODEL_FILE).stat().st_size < 20 * 1024 * 1024


@needs_model
@needs_press
def test_shipped_metrics_are_reproduced_by_the_shipped_model_on_the_test_split() -> None:
    model = ThemeModel.load()
    metrics = json.loads((DEFAULT_THEME_MODEL / "metrics.json").read_text(encoding="utf-8"))
    by_id = {d.id: d for d in load_labelled(TAXONOMY)}
    examples = [
        {"id": path, "text": by_id[path].text, "themes": list(by_id[path].themes)}
        for path in metrics["split"]["test_ids"]
    ]
    assert metrics["version"] == model.version
    assert evaluate_themes(model, examples) == metrics["test"]["model"]
