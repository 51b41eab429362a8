"""Specification of the theme classifier: taxonomy, keyword rules, training, loading, scoring."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest
import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

from pipeline.nlp.themes import (
    DEFAULT_HELDOUT,
    DEFAULT_PRESS_DIR,
    DEFAULT_THEME_MODEL,
    DEFAULT_THEMES,
    MODEL_FILE,
    KeywordRule,
    KeywordThemeModel,
    ThemeModel,
    ThemeModelMissingError,
    ThemesError,
    TrainingConfig,
    evaluate_themes,
    keyword_scores,
    load_themes,
    normalize_text,
    read_heldout,
    read_press_document,
    train_themes,
    weak_labels,
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


def test_press_markdown_is_read_without_heading_marks_and_link_targets(tmp_path: Path) -> None:
    file = tmp_path / "doc.md"
    file.write_text(
        "# Ny lag om bosättning\n\nLäs [direktivet](/rattsliga-dokument/dir-2024-12) här.\n",
        encoding="utf-8",
    )
    assert read_press_document(file) == "Ny lag om bosättning\n\nLäs direktivet här."


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


def test_evaluate_refuses_gold_labels_outside_the_taxonomy() -> None:
    model = KeywordThemeModel(load_themes(DEFAULT_THEMES))
    with pytest.raises(ValueError, match="hemlos"):
        evaluate_themes(model, [{"id": "x", "text": "Text.", "themes": ["hemlos"]}])


# --- training round trip on a small synthetic corpus -------------------------------------------

HOMELESS = [
    "Antalet hemlösa i kommunen har ökat kraftigt det senaste året.",
    "Stadsmissionen öppnar ett nytt härbärge för hemlösa kvinnor.",
    "Bostad först ger personer i hemlöshet ett eget hyreskontrakt.",
    "Socialtjänsten vill förebygga vräkningar genom tidig kontakt med hyresvärdarna.",
    "Fler barnfamiljer riskerar vräkning när hyrorna stiger.",
    "Hemlösheten bland unga vuxna är ett växande problem i storstäderna.",
    "Kommunen erbjuder sociala kontrakt till den som står utan bostad.",
    "Natthärbärget var fullbelagt under de kallaste nätterna.",
]
JOBS = [
    "Arbetslösheten bland unga steg till nio procent i mars.",
    "Arbetsförmedlingen ska förbättra matchningen mellan arbetssökande och arbetsgivare.",
    "Fler långtidsarbetslösa ska komma i arbete genom subventionerade anställningar.",
    "Regeringen vill att fler ska gå från försörjningsstöd till egenförsörjning.",
    "Sysselsättningen ökade i industrin under andra kvartalet.",
    "Nystartsjobb och lönebidrag gör det lättare för företag att anställa.",
    "Jobbcoacher hjälper arbetssökande att skriva ansökningar.",
    "Många lediga jobb finns inom vården och byggsektorn.",
]
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
TINY = TrainingConfig(
    word_max_features=3000,
    word_min_df=1,
    char_max_features=4000,
    char_min_df=1,
    max_df=1.0,
    calibration_folds=2,
    validation_fraction=0.25,
    min_positives=4,
)
HELDOUT_MARKER = "Zyxwerkstad"


def _document(rng: random.Random, title: str, pools: list[list[str]]) -> str:
    sentences = [sentence for pool in pools for sentence in rng.sample(pool, 4)]
    sentences += rng.sample(NEUTRAL, 2)
    rng.shuffle(sentences)
    return f"# {title}\n\n" + "\n\n".join(sentences) + "\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """Train once on 48 generated press releases plus 3 held-out ones; share the result."""
    root = tmp_path_factory.mktemp("themes")
    press = root / "press"
    rng = random.Random(7)
    kinds = [("hemlöshet", [HOMELESS]), ("arbete", [JOBS]), ("övrigt", [NEUTRAL])]
    for number in range(48):
        title, pools = kinds[number % 3]
        file = press / "regeringen" / "pressmeddelanden" / "2024" / f"{number % 12 + 1:02d}"
        file.mkdir(parents=True, exist_ok=True)
        (file / f"dokument-{number}.md").write_text(
            _document(rng, f"Nyheter om {title} nummer {number}", pools), encoding="utf-8"
        )
    heldout_rows = []
    for number, (slug, pool) in enumerate(
        [("hemloshet", HOMELESS), ("arbete", JOBS), (None, NEUTRAL)]
    ):
        relative = f"regeringen/debattartiklar/2025/01/heldout-{number}.md"
        text = _document(rng, f"{HELDOUT_MARKER} debatt {number}", [pool])
        (press / relative).parent.mkdir(parents=True, exist_ok=True)
        (press / relative).write_text(text, encoding="utf-8")
        heldout_rows.append({"path": relative, "themes": [slug] if slug else []})
    heldout = root / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(row) + "\n" for row in heldout_rows), encoding="utf-8")
    output = root / "model"
    metrics = train_themes(press, DEFAULT_THEMES, output, heldout=heldout, config=TINY)
    return output, metrics, heldout


def test_training_writes_model_thresholds_metadata_and_metrics(trained) -> None:
    output, metrics, _ = trained
    for name in ("themes.skops", "thresholds.json", "metadata.json", "metrics.json"):
        assert (output / name).is_file(), name
    assert json.loads((output / "metrics.json").read_text(encoding="utf-8")) == metrics
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-[0-9a-f]{8}", metrics["version"])
    assert set(metrics["model"]["per_theme"]) == set(TAXONOMY)
    assert set(metrics["keyword_baseline"]["per_theme"]) == set(TAXONOMY)
    assert metrics["heldout"]["documents"] == 3


def test_training_never_sees_the_heldout_documents(trained) -> None:
    output, metrics, _ = trained
    assert metrics["training"]["documents"] == 48
    model = ThemeModel.load(output)
    vocabulary = model.features.transformer_list[0][1].vocabulary_
    assert HELDOUT_MARKER.lower() not in vocabulary
    assert "nummer" in vocabulary  # a word every training title has


def test_themes_with_too_few_weak_positives_are_scored_by_keywords(trained) -> None:
    output, metrics, _ = trained
    sources = ThemeModel.load(output).sources
    assert sources["hemloshet"] == "model"
    assert sources["arbete"] == "model"
    assert sources["integration"] == "keywords"
    assert metrics["training"]["theme_sources"] == sources


def test_loaded_model_reports_the_trained_version(trained) -> None:
    output, metrics, _ = trained
    assert ThemeModel.load(output).version == metrics["version"]


NEW_TEXTS = [
    "Ideella organisationer larmar om att hemlösa kvinnor nekas plats på härbärgena. "
    "Hemlösheten har ökat och Bostad först räcker inte till, säger Stadsmissionen.",
    "Arbetsförmedlingen rapporterar att arbetslösheten fortsätter att stiga och att fler "
    "arbetssökande behöver stöd för att få jobb.",
    "Försvarsministern besöker marinbasen i Karlskrona för att följa en övning.",
]


def test_predict_returns_only_themes_above_threshold_sorted_by_score(trained) -> None:
    model = ThemeModel.load(trained[0])
    all_scores = model.scores(NEW_TEXTS)
    predictions = model.predict(NEW_TEXTS)
    for scores, predicted in zip(all_scores, predictions, strict=True):
        assert set(scores) == set(TAXONOMY)
        assert all(0.0 <= score <= 1.0 for score in scores.values())
        expected = {slug for slug, score in scores.items() if score >= model.thresholds[slug]}
        assert {slug for slug, _ in predicted} == expected
        assert [score for _, score in predicted] == sorted((s for _, s in predicted), reverse=True)
        assert all(scores[slug] == score for slug, score in predicted)
    assert predictions[0][0][0] == "hemloshet"
    assert predictions[1][0][0] == "arbete"
    assert "hemloshet" not in {slug for slug, _ in predictions[2]}


def test_predict_of_nothing_is_nothing(trained) -> None:
    assert ThemeModel.load(trained[0]).predict([]) == []


def test_explain_names_words_of_the_text_that_raised_the_score(trained) -> None:
    model = ThemeModel.load(trained[0])
    terms = model.explain(NEW_TEXTS[0], "hemloshet", k=5)
    assert 0 < len(terms) <= 5
    text = normalize_text(NEW_TEXTS[0]).lower()
    assert all(term in text for term in terms)
    assert any(term.startswith(("hemlös", "härbärge", "bostad")) for term in terms)


def test_explain_for_a_keyword_scored_theme_lists_the_keyword_matches(trained) -> None:
    model = ThemeModel.load(trained[0])
    text = "Sfi och samhällsorientering är grunden för integrationen. Sfi-lärare saknas."
    assert model.explain(text, "integration") == ["sfi", "samhällsorientering", "integrationen"]


def test_explain_refuses_an_unknown_theme(trained) -> None:
    with pytest.raises(KeyError, match="hemlos"):
        ThemeModel.load(trained[0]).explain("Text.", "hemlos")


def test_config_hash_changes_with_keywords_and_heldout_set() -> None:
    themes = load_themes(DEFAULT_THEMES)
    config = TrainingConfig()
    digest = config.digest(themes, ["a.md"])
    assert digest == TrainingConfig().digest(themes, ["a.md"])
    assert digest != config.digest(themes, ["a.md", "b.md"])
    assert digest != TrainingConfig(C=1.0).digest(themes, ["a.md"])
    assert digest != config.digest(themes[:-1], ["a.md"])


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


class Sneaky:
    """A type no theme model contains; loading a file with it must fail."""


def test_load_refuses_a_model_file_with_untrusted_types(trained, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(trained[0], copy)
    sio.dump({"features": Sneaky(), "classifiers": {}}, copy / MODEL_FILE)
    with pytest.raises(UntrustedTypesFoundException):
        ThemeModel.load(copy)


# --- the hand-labelled held-out set and the shipped model --------------------------------------


def test_heldout_labels_are_valid_and_cover_every_theme() -> None:
    rows = read_heldout(DEFAULT_HELDOUT)
    assert len(rows) >= 80
    assert len({row["path"] for row in rows}) == len(rows)
    for row in rows:
        assert set(row) == {"path", "themes"}
        assert set(row["themes"]) <= set(TAXONOMY), row
        assert row["path"].startswith("regeringen/") and row["path"].endswith(".md")
    positives = {slug: sum(slug in row["themes"] for row in rows) for slug in TAXONOMY}
    assert min(positives.values()) >= 2, positives
    assert sum(not row["themes"] for row in rows) >= 10


@needs_press
def test_heldout_documents_exist_in_the_press_corpus() -> None:
    missing = [
        row["path"]
        for row in read_heldout(DEFAULT_HELDOUT)
        if not (DEFAULT_PRESS_DIR / row["path"]).is_file()
    ]
    assert missing == []


@needs_model
def test_shipped_model_is_small() -> None:
    assert (DEFAULT_THEME_MODEL / MODEL_FILE).stat().st_size < 20 * 1024 * 1024


@needs_model
@needs_press
def test_shipped_metrics_are_reproduced_by_the_shipped_model() -> None:
    model = ThemeModel.load()
    metrics = json.loads((DEFAULT_THEME_MODEL / "metrics.json").read_text(encoding="utf-8"))
    examples = [
        {
            "id": row["path"],
            "text": read_press_document(DEFAULT_PRESS_DIR / row["path"]),
            "themes": row["themes"],
        }
        for row in read_heldout(DEFAULT_HELDOUT)
    ]
    assert metrics["version"] == model.version
    assert evaluate_themes(model, examples) == metrics["model"]
