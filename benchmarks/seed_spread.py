"""Test accuracy of a model's default preset over seeds, through the whole pipeline
(`catsdogs run-local` on the full data; TFMA's accuracy on the 1000 test images).

    nice -n 10 .venv/bin/python -m benchmarks.seed_spread --model scratch --seeds 1 2 3

Each seed is one run-local of the selected model with `--set <model>.seed=N` (and
any --set given here), in one output folder per model, so ingestion and Transform
run once and are cached for the next seeds. Every finished seed is kept in
components/models/<model>/recorded_seeds.json (components.evaluation.recorded_accuracy:
a later session adds seeds to it; runs are grouped by their hyper-parameters without the
seed, so a recipe change starts a new group; the evaluation report reads it), and
RESULTS-training.md's section seeds_<model> shows each recipe's spread: mean, min and
max test accuracy, the kept epoch and the time per run.

The table names each recipe by how it differs from the default preset of the code that
writes it; after a default changes, `--tables-only` rewrites the sections from the records
(no training, no data needed).
"""
import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks import full_data, results_file
from components import contract
from components.evaluation import recorded_accuracy, tfma_results
from pipeline import model_registry

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "RESULTS-training.md")
COMMAND = "nice -n 10 .venv/bin/python -m benchmarks.seed_spread"
# What `make bench` runs: three seeds of each cats vs dogs model's default preset.
RECORDED_SEEDS = (1, 2, 3)


def latest(pipeline_root: str, component_id: str, output_key: str) -> str:
    folder = os.path.join(pipeline_root, component_id, output_key)
    return os.path.join(folder, max(os.listdir(folder), key=int))


def run_seed(spec, seed: int, sets, data_dir: str, output_dir: str, quick: bool = False) -> dict:
    """One run-local of this model and seed; its TFMA test accuracy, kept epoch and times."""
    command = [os.path.join(os.path.dirname(sys.executable), "catsdogs"), "run-local", "--data-dir", data_dir,
               "--output-dir", output_dir, "--models", spec.key, "--set", f"{spec.key}.seed={seed}",
               *[arg for assignment in sets for arg in ("--set", assignment)], *(["--quick"] if quick else [])]
    started = time.time()
    subprocess.run(command, check=True)
    seconds = time.time() - started
    root = os.path.join(output_dir, "pipeline_root")
    with open(os.path.join(latest(root, spec.trainer_id, "model_run"), contract.TRAINING_REPORT_DIR,
                           contract.TRAINING_HISTORY_FILE)) as f:
        report = json.load(f)
    evaluation = latest(root, spec.component_id("Evaluator"), "evaluation")
    slices = tfma_results.load_tfma_metrics(evaluation, list(contract.CATS_VS_DOGS_CLASSES))
    overall = slices["overall"]
    val_accuracy = report["history"].get("val_accuracy", [])
    return {"seed": seed, "test_accuracy": overall.get(tfma_results.accuracy_metric_of(slices), model=""),
            "test_images": int(overall.get("example_count", model="") or 0),
            "kept_epoch": report.get("kept_epoch"), "epochs_run": len(val_accuracy),
            "best_val_accuracy": max(val_accuracy) if val_accuracy else None,
            "run_seconds": round(seconds), "hparams": {k: v for k, v in report["hparams"].items() if k != "seed"},
            "finished": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def section(spec, runs: list) -> str:
    lines = [f"### {spec.title}: test accuracy over seeds (TFMA, through the pipeline)", "",
             f"    {COMMAND} --model {spec.key} --seeds {' '.join(map(str, RECORDED_SEEDS))} [--set NAME=VALUE ...]", "",
             "| recipe | seeds | test accuracy: mean / min / max | per seed | kept epoch (of run) | minutes per run |",
             "| --- | --- | --- | --- | --- | --- |"]
    for recipe in recorded_accuracy.recipes(runs, recorded_accuracy.default_hparams(spec.package)):
        name = "default preset" + "".join(f" `{option}`" for option in recipe.sets)
        lines.append(
            f"| {name} | {', '.join(map(str, recipe.seeds))} | "
            f"{recipe.mean:.1%} / **{recipe.min:.1%}** / {recipe.max:.1%} | "
            f"{', '.join(f'{a:.1%}' for a in recipe.accuracies)} | "
            f"{', '.join(recipe.kept_epochs)} | {', '.join(map(str, recipe.minutes))} |")
    return "\n".join(lines)


def write_table(spec, runs: list) -> None:
    results_file.replace_section(RESULTS, f"seeds_{spec.key}", section(spec, runs))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=model_registry.DEFAULT_MODELS,
                        help="one model; without it, both, with the recorded seeds (hours on a CPU)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(RECORDED_SEEDS))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a hyper-parameter of this model over its default preset (repeatable)")
    full_data.add_argument(parser)
    parser.add_argument("--work-dir", default="/tmp/bench_seed_spread")
    parser.add_argument("--tables-only", action="store_true",
                        help="rewrite RESULTS-training.md's seeds sections from the recorded runs against "
                             "the current defaults, and train nothing")
    parser.add_argument("--quick", action="store_true",
                        help="run-local's smoke budgets: checks this benchmark in minutes (on data/sample); "
                             "its figures mean nothing, so they go to --work-dir only")
    args = parser.parse_args(argv)
    keys = [args.model] if args.model else model_registry.DEFAULT_MODELS
    if args.tables_only:
        for spec in map(model_registry.get, keys):
            write_table(spec, recorded_accuracy.load(spec.package))
        return
    data_dir = full_data.require(args.data_dir, "seed_spread")
    for key in keys:
        spec = model_registry.get(key)
        sets = [f"{key}.{assignment}" for assignment in args.set]
        for seed in args.seeds:
            run = run_seed(spec, seed, sets, data_dir, os.path.join(args.work_dir, key), args.quick)
            if args.quick:
                print(json.dumps(run), flush=True)
                continue
            runs = [r for r in recorded_accuracy.load(spec.package)
                    if (r["seed"], r["hparams"]) != (seed, run["hparams"])] + [run]
            recorded_accuracy.save(spec.package, runs)
            write_table(spec, runs)
            print(json.dumps(run), flush=True)


if __name__ == "__main__":
    main()
