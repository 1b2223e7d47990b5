"""benchmarks/serving.py keeps one RESULTS-serving.md section per model, so that `make bench`
(the untrained convnet) does not overwrite the figures measured on an exported model."""
import pytest

from benchmarks import results_file, serving


def figures(p50_ms):
    return {size: {"p50_ms": p50_ms * size, "p99_ms": 2 * p50_ms * size, "images_per_s": 1e3 / p50_ms, "n": 10}
            for size in serving.BATCH_SIZES}


def test_an_exported_models_figures_and_the_untrained_convnets_live_in_separate_sections(tmp_path, monkeypatch):
    results = tmp_path / "RESULTS-serving.md"
    monkeypatch.setattr(serving, "RESULTS", str(results))
    serving.write_results("a VGG16 export", str(tmp_path), figures(300.0), figures(310.0), "cmd", 1.0, 1.0, "vgg16")
    serving.write_results("untrained", str(tmp_path), figures(10.0), figures(12.0), "cmd", 1.0, 1.0)
    vgg16 = results_file.read_section(str(results), "latency-benchmark-vgg16")
    assert "Model: a VGG16 export." in vgg16 and "| 1 | 300.00 |" in vgg16
    assert "gRPC adds **10.00 ms**" in vgg16 and "make bench" not in vgg16
    untrained = results_file.read_section(str(results), "latency-benchmark")
    assert "Model: untrained." in untrained and "gRPC adds **2.00 ms**" in untrained and "make bench" in untrained


@pytest.mark.parametrize("argv", [["--model-dir", "some/export"], ["--model-dir", "some/export", "--label", "a b"],
                                  ["--label", "vgg16"]])
def test_a_model_dir_needs_a_label_and_a_label_needs_a_model_dir(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        serving.main(argv)
    assert exit_.value.code == 2 and "--label" in capsys.readouterr().err
