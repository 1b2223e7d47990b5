"""The `catsdogs` console script and its sub-command table: help without
TensorFlow, --verbose, and TensorFlow's C++ start-up log kept from the user."""
import importlib
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from pipeline import cli, native_logs

VENV_BIN = os.path.dirname(sys.executable)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_CAT = os.path.join(REPO_ROOT, "data", "sample", "test", "cats", "cat.1500.jpg")
HEAVY_MODULES = ("tensorflow", "tfx", "keras", "apache_beam", "tensorflow_model_analysis", "kfp")


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
    for name, (module_name, _, _) in cli.SUBCOMMANDS.items():
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run), name


def test_every_subcommand_help_imports_no_tensorflow_or_tfx():
    """Each `catsdogs <sub> --help` in one fresh interpreter; after each, none of
    the heavy libraries may have been imported."""
    script = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from pipeline import cli
        loaded = {{}}
        for name in [None, *cli.SUBCOMMANDS]:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                cli.main([name, "--help"] if name else ["--help"])
            loaded[name or ""] = [m for m in {HEAVY_MODULES!r} if m in sys.modules]
        print(json.dumps(loaded))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True)
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert set(loaded) == {"", *cli.SUBCOMMANDS}
    assert loaded == {name: [] for name in loaded}, loaded


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))
def test_subcommand_help_prints_usage_and_nothing_on_stderr(name):
    result = subprocess.run([os.path.join(VENV_BIN, "catsdogs"), name, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: catsdogs {name} ")
    assert "--verbose" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("argv", [["--verbose", "serve"], ["serve", "--verbose"]])
def test_verbose_is_accepted_before_or_after_the_subcommand(argv):
    first = next(index for index, arg in enumerate(argv) if not arg.startswith("-"))
    args = cli.build_subcommand_parser(argv[first]).parse_args(argv[first + 1:])
    assert args.verbose == ("--verbose" in argv[first + 1:])
    assert cli.build_parser().parse_args(argv[:first]).verbose == ("--verbose" in argv[:first])


def test_a_subcommand_s_own_verbose_flag_replaces_the_common_one():
    parser = cli.build_subcommand_parser("run-local")
    assert parser.parse_args(["--data-dir", "d", "--verbose"]).verbose
    assert not parser.parse_args(["--data-dir", "d"]).verbose
    assert parser.format_help().count("--verbose") == 2  # usage line and one description


def test_help_states_the_serving_defaults_the_options_use():
    from serving.client import ClientOptions
    from serving.server import ServerOptions
    server, client = ServerOptions(), ClientOptions()
    serve_help = " ".join(cli.build_subcommand_parser("serve").format_help().split())
    predict_help = " ".join(cli.build_subcommand_parser("predict").format_help().split())
    for flag, value in (("port", server.port), ("rest_api_port", server.rest_api_port),
                        ("catsdogs_host", server.host), ("grpc_max_threads", server.grpc_max_threads),
                        ("catsdogs_max_request_bytes", server.max_request_bytes),
                        ("model_name", server.model_name)):
        assert f"--{flag}={value} " in serve_help
    assert f"default {client.timeout_seconds:g})" in predict_help
    assert f"default {client.retries})" in predict_help


def test_native_startup_lines_are_held_back_and_the_rest_passes(capfd):
    with native_logs.native_stderr_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1796161891.740056    8087 port.cc:153] oneDNN custom operations are on.\n"
                    b"W0000 00:00:1796161891.740317    8087 cudart_stub.cc:31] Could not find cuda drivers\n"
                    b"E0000 00:00:1796161892.308475    8087 cuda_platform.cc:52] failed call to cuInit\n"
                    b"To enable the following instructions: AVX2 FMA, in other operations, rebuild\n"
                    b"a Python warning: keep me\n")
    assert capfd.readouterr().err == "a Python warning: keep me\n"


def _predict_with_no_server(*global_flags):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [os.path.join(VENV_BIN, "catsdogs"), *global_flags, "predict", "--server", f"127.0.0.1:{port}",
         "--model", "m", "--retries", "0", "--timeout", "5", SAMPLE_CAT],
        capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
def test_tensorflow_startup_log_reaches_the_user_only_with_verbose():
    """A real sub-command that loads TensorFlow (predict against a closed port):
    with --verbose TensorFlow's C++ start-up lines show, without it stderr holds
    only the command's own one-line error."""
    verbose, quiet = _predict_with_no_server("--verbose"), _predict_with_no_server()
    assert verbose.returncode == quiet.returncode == 1
    noise = [line for line in verbose.stderr.splitlines() if native_logs.NOISE.match(line)]
    assert noise, "TensorFlow printed no start-up log with --verbose: " + verbose.stderr
    (error,) = quiet.stderr.splitlines()
    assert error.startswith("catsdogs predict: 127.0.0.1:") and "UNAVAILABLE" in error
