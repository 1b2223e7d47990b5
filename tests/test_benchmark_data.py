"""Benchmarks find the full data set through --data-dir or $CATSDOGS_DATA_DIR, and
name both when neither is given (benchmarks/full_data.py)."""
import pytest

from benchmarks import full_data, training_accuracy, training_precision, training_throughput

BENCHMARKS_READING_THE_FULL_DATA = (training_accuracy, training_precision, training_throughput)


@pytest.mark.parametrize("benchmark", BENCHMARKS_READING_THE_FULL_DATA, ids=lambda m: m.__name__)
def test_a_benchmark_without_data_names_the_flag_and_the_variable(benchmark, monkeypatch):
    monkeypatch.delenv(full_data.ENV, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--model", "scratch"] if benchmark is training_accuracy else [])
    message = str(exit_info.value.code)
    assert "--data-dir" in message and full_data.ENV in message


def test_the_variable_names_the_data_and_a_folder_without_train_is_refused(tmp_path, monkeypatch):
    (tmp_path / "full" / "train").mkdir(parents=True)
    monkeypatch.setenv(full_data.ENV, str(tmp_path / "full"))
    assert full_data.require(None, "bench") == str(tmp_path / "full")
    assert full_data.require(str(tmp_path / "full"), "bench") == str(tmp_path / "full")
    with pytest.raises(SystemExit, match="has no train/ folder"):
        full_data.require(str(tmp_path), "bench")


def test_the_ingestion_benchmark_rewrites_only_its_section_and_leaves_no_tfx_build(tmp_path, monkeypatch):
    import os
    import tempfile

    from benchmarks import ingestion

    results = tmp_path / "RESULTS-ingestion.md"
    results.write_text("# Ingestion benchmark\n\n## A hand-written section\n\nkept\n")
    monkeypatch.setattr(ingestion, "RESULTS", str(results))
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    sample = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "sample")

    result = ingestion.main(["--data-dir", sample])

    text = results.read_text()
    assert "## A hand-written section\n\nkept\n" in text
    assert f"Examples written: {result['examples_written']}, rejected: 0." in text
    assert result["examples_written"] == result["files"] == 160
    assert result["tfx_package_megabytes"] > 1  # TFX's sdist was built, measured ...
    assert not [name for name in os.listdir(temp) if os.path.isdir(temp / name / "build")]  # ... and removed


def test_the_evaluation_benchmark_rewrites_only_its_section(tmp_path, monkeypatch):
    from benchmarks import evaluation

    results = tmp_path / "RESULTS-evaluation.md"
    monkeypatch.setattr(evaluation, "RESULTS", str(results))
    run = {"metrics": dict.fromkeys(evaluation.SHOWN_METRICS, 0.5), "pushed": {"pushed": False, "reason": "r"},
           "seconds": 3.0, "decision": "NOT BLESSED", "confusion": [[1, 0], [0, 1]],
           "serving_check_agrees": True, "baseline_accuracy": None}
    result = {"served_name": "cats_vs_dogs_scratch", "saved_model": "/m", "thresholds": {}, "first": run,
              "second": dict(run, seconds=4.0)}

    evaluation.write_results([result])
    assert results.read_text().startswith(evaluation.TITLE + "\n")
    results.write_text(results.read_text() + "\n## Hand-written\n\nkept\n")
    evaluation.write_results([dict(result, served_name="cats_vs_dogs_vgg16")])

    text = results.read_text()
    assert text.endswith("## Hand-written\n\nkept\n")
    assert "## cats_vs_dogs_vgg16" in text and "## cats_vs_dogs_scratch" not in text
    assert text.count(evaluation.TITLE) == 1
