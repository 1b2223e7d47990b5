"""The evaluation gate on the book's 1000-image test split, with the Trainers'
benchmark models: BaselineLookup -> Evaluator (TFMA) -> Pusher -> EvaluationReport,
through the LocalDagRunner exactly as pipeline/pipeline.py wires them.

    nice -n 10 .venv/bin/python -m benchmarks.evaluation [--models scratch vgg16]

Inputs: the SavedModels and the full Examples written by benchmarks.training_accuracy
(/tmp/bench_training_<model>/{trainer/serving_model_dir,examples}). Runs the gate
twice per model: run 1 has no baseline and pushes; run 2 re-evaluates the same
model against run 1's push (the change threshold is checked; the Pusher sees the
same model and pushes no duplicate). Writes benchmarks/RESULTS-evaluation.md.
"""
import argparse
import json
import os
import platform
import shutil
import time

import numpy as np

from benchmarks.results_file import replace_section
from components import contract
from components.evaluation import decision, report, tfma_results
from pipeline import model_registry

MODELS = {key: model_registry.get(key).served_name for key in model_registry.DEFAULT_MODELS}
"""The cats vs dogs models benchmarks.training_accuracy trains, by registry key."""
TRAINING_WORK_DIR = "/tmp/bench_training_{model}"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS-evaluation.md")
RESULT_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "evaluation_{model}.json")
COMMAND = "nice -n 10 .venv/bin/python -m benchmarks.evaluation"
SHOWN_METRICS = ("example_count", "binary_accuracy", "auc", "precision", "recall",
                 "binary_crossentropy", "calibration")


def run_gate(work_dir: str, model_dir: str, examples_dir: str, served_name: str, thresholds) -> dict:
    from tfx import v1 as tfx

    from benchmarks.partial_pipelines import create_gate_pipeline

    started = time.time()
    tfx.orchestration.LocalDagRunner().run(create_gate_pipeline(
        work_dir, model_dir, examples_dir, os.path.join(work_dir, "serving"), served_name, thresholds))
    seconds = time.time() - started
    node = os.path.join(work_dir, "pipeline_root", "{}_test", "{}")

    def latest(path):
        return os.path.join(path, max(os.listdir(path), key=int))

    evaluation = latest(node.format("Evaluator", "evaluation"))
    with open(os.path.join(latest(node.format("Pusher", "pushed_model")), "push.json")) as file:
        pushed = json.load(file)
    overall = tfma_results.load_tfma_metrics(evaluation, list(contract.CATS_VS_DOGS_CLASSES))["overall"]
    verdict = decision.read_decision(latest(node.format("Evaluator", "blessing")))
    page = os.path.join(latest(node.format("EvaluationReport", "report")), report.REPORT_FILE)
    with open(page) as file:
        html = file.read()
    return {
        "seconds": round(seconds, 1),
        "metrics": {name: overall.get(name) for name in SHOWN_METRICS},
        "baseline_accuracy": overall.get("binary_accuracy", "baseline"),
        "confusion": overall.confusion.get("candidate"),
        "decision": verdict.summary(), "pushed": pushed, "report": page,
        "serving_check_agrees": "they agree" in html,
    }


def benchmark_model(model: str, work_root: str, saved_model: str = "", examples: str = "") -> dict:
    source = TRAINING_WORK_DIR.format(model=model)
    saved_model = saved_model or os.path.join(source, "trainer", "serving_model_dir")
    examples = examples or os.path.join(source, "examples")
    if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
        raise FileNotFoundError(f"{saved_model} holds no SavedModel: run "
                                f"`python -m benchmarks.training_accuracy --model {model}` first")
    work_dir = os.path.join(work_root, model)
    shutil.rmtree(work_dir, ignore_errors=True)
    model_dir = os.path.join(work_dir, "model")
    shutil.copytree(saved_model, os.path.join(model_dir, "Format-Serving"))
    thresholds = model_registry.get(model).default_thresholds
    first = run_gate(work_dir, model_dir, examples, MODELS[model], thresholds)
    second = run_gate(work_dir, model_dir, examples, MODELS[model], thresholds)
    return {"model": model, "served_name": MODELS[model], "thresholds": vars(thresholds),
            "saved_model": saved_model,
            "first": first, "second": second}


def _fmt(value):
    return "–" if value is None or np.isnan(value) else (
        f"{int(value)}" if float(value).is_integer() and value > 1 else f"{value:.4f}")


TITLE = "# Evaluation benchmark: TFMA on the book's 1000-image test split"


def write_results(results) -> None:
    """Rewrites the evaluation-benchmark section of RESULTS; hand-written sections stay."""
    lines = [
        f"Command: `{COMMAND}` (after `benchmarks.training_accuracy` for each model; also `make bench`).",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, {time.strftime('%Y-%m-%d')}; "
        "LocalDagRunner, Beam DirectRunner in_memory.",
        "Gate: BaselineLookup -> Evaluator (TFMA, `serving_examples`, raw test examples) -> Pusher "
        "(warmup requests replayed before publishing) -> EvaluationReport (a second pass "
        "through `serving_default` on the image bytes, for the worst-image thumbnails).",
        "",
        "| model | " + " | ".join(SHOWN_METRICS) + " | decision (run 1) | gate wall time run 1 / run 2 |",
        "| --- | " + " | ".join("---" for _ in SHOWN_METRICS) + " | --- | --- |",
    ]
    for result in results:
        first, second = result["first"], result["second"]
        lines.append(f"| {result['served_name']} | " + " | ".join(
            _fmt(first["metrics"][m]) for m in SHOWN_METRICS) +
            f" | {'pushed v' + str(first['pushed']['pushed_version']) if first['pushed']['pushed'] else 'not pushed'}"
            f" | {first['seconds']:.0f} s / {second['seconds']:.0f} s |")
    lines.append("")
    for result in results:
        first, second = result["first"], result["second"]
        lines += [
            f"## {result['served_name']}",
            "",
            f"- SavedModel: `{result['saved_model']}`; thresholds: {result['thresholds']}.",
            f"- Run 1: {first['decision']}",
            f"- Confusion matrix at 0.5 (run 1): {first['confusion']}.",
            f"- Serving signature on image bytes agrees with TFMA's accuracy: {first['serving_check_agrees']}.",
            f"- Run 2 (same model, baseline = run 1's push): {second['decision']}; "
            f"baseline accuracy {_fmt(second['baseline_accuracy'])}; Pusher: {second['pushed']['reason']}.",
            "",
        ]
    replace_section(RESULTS, "evaluation-benchmark", "\n".join(lines), title=TITLE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", choices=sorted(MODELS), default=sorted(MODELS))
    parser.add_argument("--work-dir", default="/tmp/bench_evaluation")
    parser.add_argument("--saved-model", default="", help="with one --models: this SavedModel instead")
    parser.add_argument("--examples", default="", help="with one --models: this Examples folder instead")
    args = parser.parse_args(argv)
    results = []
    if (args.saved_model or args.examples) and len(args.models) != 1:
        parser.error("--saved-model/--examples need exactly one --models")
    for model in args.models:
        result = benchmark_model(model, args.work_dir, args.saved_model, args.examples)
        print(json.dumps(result, indent=1, default=str), flush=True)
        os.makedirs(os.path.dirname(RESULT_JSON), exist_ok=True)
        with open(RESULT_JSON.format(model=model), "w") as file:
            json.dump(result, file, indent=1, default=str)
    # the table shows every model benchmarked so far, so models can be run one at a time
    for model in sorted(MODELS):
        if os.path.exists(RESULT_JSON.format(model=model)):
            with open(RESULT_JSON.format(model=model)) as file:
                results.append(json.load(file))
    write_results(results)
    return results


if __name__ == "__main__":
    main()
