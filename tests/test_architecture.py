"""The package's layout is its architecture: one concern per folder, each saying what it is for, and imports
only downward, as `.importlinter` describes them (checked by the real `lint-imports`, which also fails on an
upward import planted in a copy of the package)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess

import pytest
from pulumi_cli import REPO, VENV_BIN

PACKAGE = REPO / "infra" / "callmask"
CONCERNS = ["cli", "config", "function", "line", "local", "operations", "providers", "studio", "twilio"]


def lint_imports(python_path: str | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, **({"PYTHONPATH": python_path} if python_path else {})}
    return subprocess.run([str(VENV_BIN / "lint-imports"), "--config", str(REPO / ".importlinter"), "--no-cache"],
                          cwd=REPO, env=environ, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold():
    done = lint_imports()
    assert done.returncode == 0 and "1 kept, 0 broken" in done.stdout, done.stdout + done.stderr


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "callmask", ignore=shutil.ignore_patterns("__pycache__"))
    graph = tmp_path / "callmask" / "studio" / "flow_graph.py"
    graph.write_text(graph.read_text() + "\nfrom callmask.cli.main import main  # planted: studio reaching up\n")
    done = lint_imports(str(tmp_path))
    assert done.returncode == 1 and "BROKEN" in done.stdout
    assert "callmask.studio.flow_graph -> callmask.cli.main" in done.stdout, done.stdout


def test_the_package_is_one_folder_per_concern_each_saying_what_it_is_for():
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == CONCERNS
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py"], "no module left loose"
    for concern in CONCERNS:
        docstring = ast.get_docstring(ast.parse((PACKAGE / concern / "__init__.py").read_text()))
        assert docstring and len(docstring.splitlines()[0]) > 40, f"callmask.{concern} says what it is for"
        assert len(docstring.splitlines()[0]) <= 120, f"callmask.{concern}: its first line says it in one line"


@pytest.mark.parametrize("module, names", [
    ("callmask.providers.studio_flow", ["StudioFlowProvider", "StudioFlow"]),
    ("callmask.providers.phone_number", ["PhoneNumberProvider", "PhoneNumber"]),
    ("callmask.providers.voice_binding", ["VoiceBindingProvider", "VoiceBinding"]),
    ("callmask.providers.dialing_permissions", ["DialingPermissionsProvider", "DialingPermissions"]),
    ("callmask.providers.usage_trigger", ["SpendAlertProvider", "SpendAlert"]),
    ("callmask.providers.pin_salt", ["PinSaltProvider", "PinSalt"]),
    ("callmask.providers.serverless", ["ServiceProvider", "FunctionVersionProvider", "BuildProvider", "DeploymentProvider", "VariablesProvider"]),
])
def test_provider_classes_keep_the_import_path_existing_stacks_unpickle_them_by(module, names):
    import importlib

    loaded = importlib.import_module(module)
    for name in names:
        assert getattr(loaded, name).__module__ == module
