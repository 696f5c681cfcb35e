"""Where a stack's `callmask:*` values come from: the running Pulumi engine, or the files on disk.

The engine applies Pulumi.yaml defaults itself; for the files (the `callmask` command and the tests)
the same defaults are read from Pulumi.yaml here, so both paths hand `parse_settings` the same values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from callmask.settings import NAMESPACE

PROJECT_DIR = Path(__file__).resolve().parents[2]
PREFIX = f"{NAMESPACE}:"


class StackFileError(ValueError):
    pass


def from_engine() -> dict[str, Any]:
    """The `callmask:*` config of the running program, keys without the prefix (secrets in plaintext)."""
    # Imported here, so the `callmask` command starts without loading the Pulumi runtime.
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {key[len(PREFIX):]: value for key, value in merged.items() if key.startswith(PREFIX)}


def project_defaults(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    project = _read_yaml(project_dir / "Pulumi.yaml")
    declared = project.get("config") or {}
    return {key.removeprefix(PREFIX): spec["default"] for key, spec in declared.items()
            if isinstance(spec, dict) and "default" in spec}


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(path.name[len("Pulumi."):-len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))


def from_files(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, Any], dict[str, Any]]:
    """(callmask values with Pulumi.yaml defaults applied, the stack's other namespaced values).

    Encrypted values (`secure: ...`) are left as they are: the caller decides what stands in for them.
    """
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(stack_names(project_dir)) or "none"
        raise StackFileError(f"{path.name} not found: no stack named {stack!r} (stacks with files: {known})")
    config = _read_yaml(path).get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: `config` must be a mapping of keys to values")
    values = project_defaults(project_dir)
    values.update({key[len(PREFIX):]: value for key, value in config.items() if key.startswith(PREFIX)})
    others = {key: value for key, value in config.items() if not key.startswith(PREFIX)}
    return values, others


def is_encrypted(value: Any) -> bool:
    """A `secure:` value, or a list of them (`pulumi config set --path --secret 'key[0]' ...`)."""
    if isinstance(value, list):
        return bool(value) and all(is_encrypted(item) for item in value)
    return isinstance(value, dict) and set(value) == {"secure"}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise StackFileError(f"{path}: cannot read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: expected a YAML mapping")
    return document
