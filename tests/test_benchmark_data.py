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
