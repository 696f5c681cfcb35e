"""Where a stack's `callmask:*` values come from: the running Pulumi engine, or the files on disk.

The engine applies Pulumi.yaml defaults itself; for the files (the `callmask` command and the tests)
the same defaults are read from Pulumi.yaml here, so both paths hand `parse_settings` the same values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from callmask.config.settings import DIGIT_RUN, LABEL, NAMESPACE, shown

PROJECT_DIR = Path(__file__).resolve().parents[3]
PREFIX = f"{NAMESPACE}:"
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class StackFileError(ValueError):
    pass


def from_engine(stack: str) -> tuple[dict[str, Any], list[str]]:
    """The `callmask:*` config of the running program, keys without the prefix (secrets in plaintext),
    and the stack's other keys. PINs that are not secrets are refused here, before anything is registered:
    the engine says only whether the whole key holds a secret, so the stack file names each element."""
    # Imported here, so the `callmask` command starts without loading the Pulumi runtime.
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime.settings import get_root_directory

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    values = {key[len(PREFIX):]: value for key, value in merged.items() if key.startswith(PREFIX)}
    if "pins" in values:
        path = Path(get_root_directory() or PROJECT_DIR) / f"Pulumi.{stack}.yaml"
        in_file = (_read_yaml(path).get("config") or {}).get(f"{PREFIX}pins") if path.is_file() else None
        keys = plaintext_pin_keys(in_file) if in_file is not None else []
        if keys or not is_secret("pins"):
            raise StackFileError(plaintext_pins_message(keys or ["pins"], path.name))
    return values, [key for key in merged if not key.startswith(PREFIX)]


def plaintext_pin_keys(value: Any) -> list[str]:
    """The keys of a stack file's `callmask:pins` that hold a PIN in plaintext: each element of a list
    (`pins[2]`) or map (`pins.alice`; a label that may be a PIN is named by its position), or the whole key."""
    if is_encrypted(value):
        return []
    if isinstance(value, list) and value:
        return [f"pins[{index}]" for index, item in enumerate(value) if not is_encrypted(item)]
    if isinstance(value, dict) and value:
        return [f"pins.{label}" if LABEL.fullmatch(str(label)) and not DIGIT_RUN.search(str(label))
                else f"pins (entry {position})"
                for position, (label, item) in enumerate(value.items(), start=1) if not is_encrypted(item)]
    return ["pins"]


def plaintext_pins_message(keys: list[str], file_name: str) -> str:
    """One line naming the plaintext PIN keys and the command that makes each a secret (never a value)."""
    named = ", ".join(f"{PREFIX}{key}" for key in keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    first = keys[0]
    if first.startswith("pins[") or first.startswith("pins."):
        fix = (f"set each again as a secret, which replaces the plaintext value: pulumi config set --path --secret "
               f"'{PREFIX}{first}' (type the PIN when asked)")
    else:
        fix = (f"remove it (pulumi config rm {PREFIX}pins) and set each PIN as a secret: pulumi config set --path "
               f"--secret '{PREFIX}pins[0]' (type the PIN when asked)")
    return f"{named} in {file_name}: a PIN in plaintext is refused (PINs are always secrets); {fix}"


def is_secret(key: str) -> bool:
    """Whether the running program's `callmask:KEY` is set as a secret."""
    from pulumi.runtime import config as runtime_config

    full = f"{PREFIX}{key}"
    return runtime_config.is_config_secret(full) or full in runtime_config.get_config_secret_keys_env()


def project_defaults(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    project = _read_yaml(project_dir / "Pulumi.yaml")
    declared = project.get("config") or {}
    return {key.removeprefix(PREFIX): spec["default"] for key, spec in declared.items()
            if isinstance(spec, dict) and "default" in spec}


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(path.name[len("Pulumi."):-len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))


def from_files(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, Any], dict[str, Any]]:
    """(callmask values with Pulumi.yaml defaults applied, the stack's other namespaced values), each in
    the form the engine hands the program: a scalar as text, a list or an object as JSON data.

    Encrypted values (`secure: ...`) are left as they are: the caller decides what stands in for them.
    """
    if not STACK_NAME.fullmatch(stack):
        raise StackFileError(f"{shown(stack)} is not a stack name: letters, digits, '-', '_' and '.', at most 100")
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(stack_names(project_dir)) or "none"
        raise StackFileError(f"{path.name} not found: no stack named {stack!r} (stacks with files: {known})")
    config = _read_yaml(path).get("config") or {}
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        raise StackFileError(f"{path.name}: `config` must be a mapping of text keys (namespace:name) to values")
    pins = config.get(f"{PREFIX}pins")
    if pins is not None and (keys := plaintext_pin_keys(pins)):
        raise StackFileError(plaintext_pins_message(keys, path.name))
    values = {key: engine_form(value) for key, value in project_defaults(project_dir).items()}
    values.update({key[len(PREFIX):]: engine_form(value) for key, value in config.items() if key.startswith(PREFIX)})
    others = {key: engine_form(value) for key, value in config.items() if not key.startswith(PREFIX)}
    return values, others


def engine_form(value: Any) -> Any:
    """A stack-file value as the engine passes it: `true`/`false` and numbers become text; lists and
    objects stay data (the engine sends them as JSON, whose numbers stay numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        try:
            return str(value)
        except ValueError:  # an integer too long to print
            return shown(value)
    return value


def is_encrypted(value: Any) -> bool:
    """A `secure:` value, or a list or map of them (`pulumi config set --path --secret 'key[0]' ...` or
    `'key.label'`)."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return True
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        return bool(value) and all(is_encrypted(item) for item in items)
    return False


class _StackFileLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml: fast on deep nesting
    """YAML as Pulumi reads a stack file, for what matters here: an integer too long for a number stays text."""

    def construct_yaml_int(self, node):
        if len(str(node.value)) > 30:
            return str(node.value)
        return super().construct_yaml_int(node)


_StackFileLoader.add_constructor("tag:yaml.org,2002:int", _StackFileLoader.construct_yaml_int)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_StackFileLoader) or {}
    except OSError as error:
        raise StackFileError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise StackFileError(f"{path}: not UTF-8 text") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise StackFileError(f"{path}: not valid YAML{where}: {error.problem or error.context}") from None
    except (yaml.YAMLError, RecursionError, ValueError) as error:
        raise StackFileError(f"{path}: not valid YAML ({type(error).__name__}: {str(error)[:80]})") from None
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: expected a YAML mapping")
    return document
