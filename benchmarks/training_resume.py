"""What a resume costs the scratch convnet at its default preset, on the full data.

    nice -n 10 .venv/bin/python -m benchmarks.training_resume --data-dir DIR

(or CATSDOGS_DATA_DIR in the environment instead of --data-dir). Two measurements:

1. The per-epoch state save (components.training.resume), in this process: the
   default-preset model with its RMSprop state, saved --saves times; and the copy of
   the best-so-far weights, made only in epochs that improve validation accuracy.
2. A kill and a resume, on the full data in TFX's local layout: run_fn in a child
   process, SIGKILLed as soon as its first epoch is saved; run again, SIGKILLed as
   soon as its (resumed) second epoch is saved. The restart overhead is the re-run's
   time to that save, less its epoch and save time (the epoch time is the progress
   line's); a fresh start's overhead, measured the same way on the first run, is
   shown beside it. Only two epochs train: the figures are per epoch.

A kill at a uniformly random moment redoes half an epoch on average (at most one),
plus the restart overhead.
"""
import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import full_data

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPONENT = "Trainer_scratch"
EPOCH_LINE = re.compile(r"\[scratch\] epoch (\d+)/\d+ \((\d+) s\)")
CHILD = """
import json, sys
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs
from components.models.scratch import trainer as scratch
logging.set_verbosity(logging.INFO)
scratch.run_fn(FnArgs(**json.loads(sys.argv[1])))
"""


def save_cost(work_dir: str, saves: int) -> dict:
    """Seconds per state save and per best-weights copy, and the backup's size."""
    from components.models.scratch.network import build_scratch_model
    from components.training import common
    from components.training.resume import TrainingBackup
    model = build_scratch_model()
    common.compile_classifier(model, 1e-3, 2)
    model.optimizer.build(model.trainable_variables)
    backup = TrainingBackup(os.path.join(work_dir, "save_cost", "resume", "key"), "benchmark")
    phase = backup.phase("scratch", saves, model)
    best = os.path.join(work_dir, "save_cost", common.BEST_WEIGHTS_FILE)
    save_seconds, copy_seconds = [], []
    for epoch in range(saves):
        started = time.perf_counter()
        phase.save(model, epoch, {"loss": 0.5, "val_accuracy": 0.5})
        save_seconds.append(time.perf_counter() - started)
        model.save_weights(best)
        started = time.perf_counter()
        backup.store.keep_best_weights(best, epoch + 1)
        copy_seconds.append(time.perf_counter() - started)
    sizes = {name: os.path.getsize(os.path.join(phase.backup.store.folder, name)) for name in
             os.listdir(phase.backup.store.folder) if name.endswith(".h5")}
    save_dir = os.path.join(phase.backup.store.folder, sorted(n for n in os.listdir(phase.backup.store.folder)
                                                              if n.startswith("epoch-"))[-1])
    return {"parameters": model.count_params(), "saves": saves,
            "save_seconds_median": round(statistics.median(save_seconds), 3),
            "save_seconds_max": round(max(save_seconds), 3),
            "best_weights_copy_seconds_median": round(statistics.median(copy_seconds), 3),
            "save_bytes": sum(os.path.getsize(os.path.join(save_dir, n)) for n in os.listdir(save_dir)),
            "best_weights_bytes": max(sizes.values())}


def fn_args(examples: str, transform: str, pipeline_root: str, execution_id: int) -> dict:
    """TFX's local layout: <pipeline_root>/<component>/<output key>/<execution id>."""
    from components.formats import examples as examples_format
    trainer = os.path.join(pipeline_root, COMPONENT)
    return {"train_files": [os.path.join(examples_format.split_uri(examples, "train"), "*")],
            "eval_files": [os.path.join(examples_format.split_uri(examples, "validation"), "*")],
            "transform_output": transform, "transform_graph_path": transform, "custom_config": {},
            "model_run_dir": os.path.join(trainer, "model_run", str(execution_id)),
            "serving_model_dir": os.path.join(trainer, "model", str(execution_id), "Format-Serving")}


def run_until_saved(args: dict, epochs_done: int, log_path: str, backup_root: str) -> dict:
    """Starts run_fn in a child, SIGKILLs it once the backup holds `epochs_done` epochs."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    started = time.monotonic()
    with open(log_path, "w") as log:
        child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], cwd=REPO_ROOT, env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
    pattern = os.path.join(backup_root, "*", f"epoch-{epochs_done:05d}", "state.json")
    while not glob.glob(pattern):
        if child.poll() is not None:
            raise RuntimeError(f"the Trainer exited ({child.returncode}) before saving epoch {epochs_done}; "
                               f"see {log_path}")
        time.sleep(0.1)
    saved_after = time.monotonic() - started
    child.kill()
    child.wait()
    with open(log_path) as f:
        log_text = f.read()
    epoch_seconds = {int(n): int(s) for n, s in EPOCH_LINE.findall(log_text)}
    resumed = re.search(rf"{COMPONENT}: resuming from .*", log_text)
    return {"seconds_to_save": round(saved_after, 1), "epoch_seconds": epoch_seconds[epochs_done],
            "resume_line": resumed.group(0) if resumed else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full_data.add_argument(parser)
    parser.add_argument("--saves", type=int, default=5, help="state saves to time (default: %(default)s)")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--results", default=os.path.join("benchmarks", "results", "resume_scratch.json"))
    args = parser.parse_args(argv)
    args.data_dir = full_data.require(args.data_dir, "training_resume")
    from benchmarks import trainer_inputs
    from components.training import backup_store, precision
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="resume_bench_")
    try:
        result = {"save": save_cost(work_dir, args.saves)}
        print(json.dumps(result["save"]), flush=True)
        examples = trainer_inputs.write_examples(args.data_dir, os.path.join(work_dir, "examples"))
        first = trainer_inputs.image_files(args.data_dir, "train", 1)["cats"][0]
        transform = trainer_inputs.build_transform_graph(first, os.path.join(work_dir, "transform"))
        root = os.path.join(work_dir, "pipeline_root")
        backup_root = os.path.join(root, COMPONENT, backup_store.BACKUP_DIR)
        fresh = run_until_saved(fn_args(examples, transform, root, 1), 1, os.path.join(work_dir, "fresh.log"),
                                backup_root)
        key_folder = os.path.join(backup_root, os.listdir(backup_root)[0])
        result["backup_bytes_after_epoch_1"] = backup_store.BackupStore(key_folder).size_bytes()
        resumed = run_until_saved(fn_args(examples, transform, root, 2), 2, os.path.join(work_dir, "resumed.log"),
                                  backup_root)
        save_seconds = result["save"]["save_seconds_median"]
        for name, run in (("fresh_start", fresh), ("resume", resumed)):
            run["overhead_seconds"] = round(run["seconds_to_save"] - run["epoch_seconds"] - save_seconds, 1)
            result[name] = run
        epoch = resumed["epoch_seconds"]
        result["expected_seconds_lost_per_kill"] = round(0.5 * epoch + resumed["overhead_seconds"], 1)
        result["save_fraction_of_epoch"] = round(save_seconds / epoch, 4)
        result["precision"] = precision.resolve("auto")
        result["data_dir"] = args.data_dir
        os.makedirs(os.path.dirname(args.results), exist_ok=True)
        with open(args.results, "w") as f:
            json.dump(result, f, indent=1)
        print(json.dumps(result, indent=1))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
