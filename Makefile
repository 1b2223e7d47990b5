# The two commands a newcomer needs: `make run` and `make test`.
# Both build the environment (.venv) first if it is missing.
VENV := .venv
PY := $(VENV)/bin/python
OUTPUT_DIR ?= outputs/local
DATA_DIR ?= data/sample

.PHONY: env run test test-kfp test-all bench clean

env: $(VENV)/.bootstrap-complete

$(VENV)/.bootstrap-complete: requirements.lock setup.py scripts/bootstrap.sh scripts/retry.sh
	scripts/bootstrap.sh

run: env
	$(VENV)/bin/catsdogs run-local --data-dir $(DATA_DIR) --output-dir $(OUTPUT_DIR) --quick --serve-and-predict

test: env
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests

# The compiled KFP pipeline executed task by task in containers of the project's
# image (Docker installed and started if needed; see scripts/test_kfp.sh).
test-kfp: env
	scripts/test_kfp.sh

# The benchmarks read the book's full data set from $$CATSDOGS_DATA_DIR
# (`make bench CATSDOGS_DATA_DIR=DIR`); benchmarks/full_data.py.
bench: env
	CATSDOGS_DATA_DIR="$(CATSDOGS_DATA_DIR)" $(PY) -m benchmarks.run_all $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf outputs
