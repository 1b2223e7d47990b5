"""A model's recorded accuracy over seeds (components/evaluation/recorded_accuracy.py):
runs are grouped by recipe, a run's recipe is matched with them, and the evaluation
report's page says where the run's accuracy falls."""
import html
import json
import sys

import pytest

from benchmarks import results_file, seed_spread
from components.evaluation import baseline, recorded_accuracy, report_page
from components.evaluation.tfma_results import SliceMetrics
from pipeline import model_registry

SCRATCH = model_registry.get("scratch")
DEFAULTS = recorded_accuracy.default_hparams(SCRATCH.package)


def recorded_run(seed, accuracy, test_images=1000, **changes):
    hparams = {**SCRATCH.default_hparams.as_custom_config(), **changes, "seed": seed}
    return {"seed": seed, "test_accuracy": accuracy, "test_images": test_images, "kept_epoch": 100 + seed,
            "epochs_run": 150, "best_val_accuracy": accuracy + 0.01, "run_seconds": 3000 + 60 * seed,
            "hparams": hparams, "finished": "2026-12-06 12:00"}


RUNS = [recorded_run(1, 0.857), recorded_run(1, 0.853, epochs=100), recorded_run(2, 0.848),
        recorded_run(3, 0.861)]


def test_runs_differing_only_in_seed_are_one_recipe_in_the_order_first_run():
    default, shorter = recorded_accuracy.recipes(RUNS, DEFAULTS)
    assert default.changes == {} and default.seeds == [1, 2, 3]
    assert (default.min, default.max) == (0.848, 0.861) and default.mean == pytest.approx((0.857 + 0.848 + 0.861) / 3)
    assert default.kept_epochs == ["101 (150)", "102 (150)", "103 (150)"] and default.minutes == [51, 52, 53]
    assert shorter.changes == {"epochs": 100} and shorter.sets == ["--set epochs=100"]
    assert default.describe() == "default preset" and shorter.describe() == "default preset with epochs=100"


def test_a_name_added_after_a_run_was_recorded_is_no_change_but_a_changed_default_is():
    older = recorded_run(4, 0.85)
    del older["hparams"]["ema_momentum"]  # recorded before the option existed
    (recipe,) = recorded_accuracy.recipes([older], DEFAULTS)
    assert recipe.changes == {}
    moved_default = {**DEFAULTS, "epochs": 200}  # a later default preset trains longer
    (recipe,) = recorded_accuracy.recipes([recorded_run(1, 0.857)], moved_default)
    assert recipe.changes == {"epochs": 150}


def test_a_run_is_matched_with_its_recipe_and_unknown_hyper_parameters_match_none():
    recipes = recorded_accuracy.recipes(RUNS, DEFAULTS)
    run = {**SCRATCH.default_hparams.as_custom_config(), "seed": 7, "epochs": 100}
    matched = recorded_accuracy.Comparison(recipes, recorded_accuracy.changes_from(run, DEFAULTS))
    assert matched.same_recipe is recipes[1]
    assert recorded_accuracy.Comparison(recipes, None).same_recipe is None
    unrecorded = recorded_accuracy.Comparison(recipes, {"epochs": 2})
    assert unrecorded.same_recipe is None


def test_the_record_is_read_and_written_beside_the_models_package(tmp_path, monkeypatch):
    package = tmp_path / "copied_model"
    package.mkdir()
    (package / "__init__.py").write_text("from components.models.scratch import SPEC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "copied_model", raising=False)
    assert recorded_accuracy.load("copied_model") == []
    recorded_accuracy.save("copied_model", RUNS)
    assert json.loads((package / recorded_accuracy.RECORD_FILE).read_text()) == RUNS
    comparison = recorded_accuracy.compare("copied_model", RUNS[2]["hparams"])
    assert comparison.same_recipe.seeds == [1, 2, 3]


def test_every_shipped_record_parses_and_groups():
    for spec in model_registry.MODELS:
        runs = recorded_accuracy.load(spec.package)
        for recipe in recorded_accuracy.recipes(runs, recorded_accuracy.default_hparams(spec.package)):
            assert 0.0 <= recipe.min <= recipe.max <= 1.0, spec.key
            assert all(run["test_images"] > 0 for run in recipe.runs), spec.key


def page(accuracy, test_images, comparison):
    overall = SliceMetrics(scalars={("", "binary_accuracy", False): accuracy,
                                    ("", "example_count", False): float(test_images)})
    inputs = report_page.ReportInputs(
        model_name=SCRATCH.served_name, class_names=["cat", "dog"], slices={"overall": overall},
        thresholds={"min_accuracy": 0.7}, decision=None, accuracy_metric="binary_accuracy",
        baseline=baseline.BaselineInfo(False, "first push"), worst=[], serving_accuracy=None,
        recorded=comparison)
    return html.unescape(report_page.render_html(inputs))  # the template escapes quotes


@pytest.mark.parametrize("accuracy, where", [(0.855, "within the recorded seeds' range"),
                                             (0.83, "below every recorded seed"),
                                             (0.87, "above every recorded seed")])
def test_the_report_says_where_the_runs_accuracy_falls_among_its_recipes_seeds(accuracy, where):
    recipes = recorded_accuracy.recipes(RUNS, DEFAULTS)
    text = page(accuracy, 1000, recorded_accuracy.Comparison(recipes, {}))
    assert "This run's recipe: default preset." in text
    assert f"binary_accuracy {accuracy:.1%} is {where} of this recipe (84.8%-86.1% over 3 seeds)" in text
    assert "default preset (this run's)</td><td>1, 2, 3</td><td>85.5% / 84.8% / 86.1%</td>" in text
    assert "default preset with epochs=100</td><td>1</td>" in text


def test_the_report_refuses_to_compare_other_test_sets_other_recipes_and_unknown_ones():
    recipes = recorded_accuracy.recipes(RUNS, DEFAULTS)
    sample = page(0.95, 40, recorded_accuracy.Comparison(recipes, {}))
    assert "evaluated on 1000 test images, this run on 40: the accuracies are not comparable" in sample
    assert "is within" not in sample and "is above" not in sample
    quick = page(0.6, 1000, recorded_accuracy.Comparison(recipes, {"epochs": 2, "batch_size": 16}))
    assert "This run's recipe: default preset with batch_size=16, epochs=2." in quick
    assert "No recorded run used this recipe" in quick and "(this run's)" not in quick
    unknown = page(0.6, 1000, recorded_accuracy.Comparison(recipes, None))
    assert "hyper-parameters are unknown" in unknown and "(this run's)" not in unknown
    empty = page(0.6, 1000, recorded_accuracy.Comparison([], {}))
    assert "No run of this model is recorded yet" in empty and "<th>per seed</th>" not in empty
    assert "Recorded accuracy over seeds" not in page(0.6, 1000, None)


def test_tables_only_rewrites_the_seeds_sections_from_the_records_and_keeps_the_rest(tmp_path, monkeypatch):
    results = tmp_path / "RESULTS-training.md"
    results.write_text("A hand-written note.\n\n"
                       "<!-- begin seeds_scratch -->\nstale table\n<!-- end seeds_scratch -->\n")
    monkeypatch.setattr(seed_spread, "RESULTS", str(results))
    monkeypatch.delenv("CATSDOGS_DATA_DIR", raising=False)  # no data: nothing is trained
    seed_spread.main(["--model", "scratch", "--tables-only"])
    text = results.read_text()
    assert text.startswith("A hand-written note.\n") and "stale table" not in text
    expected = seed_spread.section(SCRATCH, recorded_accuracy.load(SCRATCH.package))
    assert results_file.read_section(str(results), "seeds_scratch") == expected


def test_the_shipped_seeds_tables_name_recipes_against_the_current_defaults():
    """A default changed without `seed_spread --tables-only` leaves RESULTS naming old recipes."""
    for key in model_registry.DEFAULT_MODELS:
        spec = model_registry.get(key)
        expected = seed_spread.section(spec, recorded_accuracy.load(spec.package))
        assert results_file.read_section(seed_spread.RESULTS, f"seeds_{key}") == expected, key
