"""Imports flow one way, checked on the source (no module is imported here):
the installed packages never import tests/ or benchmarks/, benchmarks never
import tests/; the Pusher may
read the evaluation's results, never the reverse; components/formats and
components/html_pages, which every layer imports, import no other project
module but components.contract."""
import ast
import glob
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTALLED = ("components", "pipeline", "serving")


def _imports(path):
    """Top-level names of the modules a source file imports, as dotted strings."""
    with open(path) as source:
        tree = ast.parse(source.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _sources(package):
    return sorted(glob.glob(os.path.join(REPO, package, "**", "*.py"), recursive=True))


def _offences(packages, forbidden):
    return sorted({(os.path.relpath(path, REPO), name)
                   for package in packages for path in _sources(package)
                   for name in _imports(path) if name.split(".")[0] in forbidden or name.startswith(forbidden)})


def test_installed_packages_import_neither_tests_nor_benchmarks():
    assert _offences(INSTALLED, ("tests", "benchmarks")) == []


def test_the_evaluation_does_not_import_the_pusher():
    assert _offences([os.path.join("components", "evaluation")], ("components.pusher",)) == []


def test_shared_modules_import_only_the_contract():
    shared = [os.path.join("components", "formats"), os.path.join("components", "html_pages")]
    offences = [(path, name) for path, name in _offences(shared, ("components", "pipeline", "serving"))
                if not name.startswith(("components.contract", "components.formats", "components.html_pages"))
                and name != "components"]
    assert offences == []


def test_benchmarks_do_not_import_tests():
    assert _offences(["benchmarks"], ("tests",)) == []
