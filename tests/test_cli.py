"""The `catsdogs` console script and its sub-command table."""
import importlib
import os
import subprocess
import sys

import pytest

from pipeline import cli

VENV_BIN = os.path.dirname(sys.executable)


def test_help_lists_every_subcommand():
    result = subprocess.run([os.path.join(VENV_BIN, "catsdogs"), "--help"],
                            capture_output=True, text=True, check=True)
    for name in ("run-local", "prepare-data", "compile", "submit", "serve", "predict", "explain"):
        assert name in result.stdout


def test_unknown_subcommand_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_every_subcommand_module_defines_the_interface():
    for name, (module_name, _) in cli.SUBCOMMANDS.items():
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run), name
