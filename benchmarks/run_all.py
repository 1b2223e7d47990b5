"""`make bench`: runs every benchmark module in this folder (each defines main(argv)).

    .venv/bin/python -m benchmarks.run_all [--only NAME ...]

Each benchmark writes its figures to benchmarks/RESULTS-<area>.md. They need the
full data set: $CATSDOGS_DATA_DIR (benchmarks/full_data.py) names it. They take from seconds
(ingestion) to about an hour (training); none is part of CI.
"""
import argparse
import importlib
import pkgutil
import sys
import time

import benchmarks


def benchmark_modules():
    return sorted(name for _, name, _ in pkgutil.iter_modules(benchmarks.__path__)
                  if name not in ("run_all",) and not name.startswith("_"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=benchmark_modules(), help="run just these")
    args = parser.parse_args(argv)
    failures = []
    for name in args.only or benchmark_modules():
        module = importlib.import_module(f"benchmarks.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"=== benchmark {name}", flush=True)
        start = time.perf_counter()
        try:
            module.main([])
        except SystemExit as exit_:  # argparse: this benchmark needs arguments (see its docstring)
            if exit_.code not in (0, None):
                failures.append(name)
        except Exception as error:  # one broken benchmark must not hide the others' figures
            failures.append(name)
            print(f"benchmark {name} failed: {error!r}", file=sys.stderr)
        print(f"=== {name}: {time.perf_counter() - start:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
