"""The flow template (`flow/*.json`) and the one renderer that turns it into a Studio definition.

A template is a complete Studio definition in which per-stack values are written as `${name}`
placeholders. A string that is exactly one placeholder takes the value with its type, in the JSON type
Studio writes for that widget property (so `"${pinLength}"` becomes the number 8, and a redirect's
`"${pinCheckTimeout}"` the text "110"); a placeholder inside longer text is replaced by the value's text. Studio's own Liquid (`{{widgets.x.Digits}}`) is left alone: Studio evaluates it during a call.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from callmask.studio.flow_graph import listed
from callmask.studio.widget_library import PROPERTY_TYPES, as_studio_type

PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_.]*)\}")
PINS = "pins"
PIN_CHECK_URL = "pinCheckUrl"  # the PIN-check Function's URL: known once its Environment exists
FLOW_DIR = Path(__file__).resolve().parents[3] / "flow"
DEFAULT_FLOW_FILE = FLOW_DIR / "conference.json"
FUNCTION_FLOW_FILE = FLOW_DIR / "conference-function.json"  # callmask:pinCheck function


def flow_file(pin_check: str) -> Path:
    """The template of a stack's flow: the PIN checked in the flow, or by the line's Function."""
    return FUNCTION_FLOW_FILE if pin_check == "function" else DEFAULT_FLOW_FILE


class TemplateError(ValueError):
    """The template is unreadable, or its placeholders and the supplied values do not match."""


def load_template(path: Path = DEFAULT_FLOW_FILE) -> dict[str, Any]:
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TemplateError(f"{path}: cannot read the flow file ({error.strerror})") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{path}: not UTF-8 text, so not a flow definition") from None
    except json.JSONDecodeError as error:
        raise TemplateError(f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    except RecursionError:
        raise TemplateError(f"{path}: nested too deeply to be a flow definition") from None
    if not isinstance(template, dict) or not isinstance(template.get("states"), list):
        raise TemplateError(f"{path}: expected a Studio flow definition object with a `states` list")
    return template


def canonical_json(document: Any) -> str:
    """Stable text for a JSON document: the form used for resource inputs and content hashes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(*parts: str) -> str:
    """A short hash naming a template revision (never fed secret values)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def placeholders(template: Any) -> set[str]:
    """Every placeholder name the template uses."""
    return {name for text in strings_in(template) for name in PLACEHOLDER.findall(text)}


def check_values(template: Any, names: set[str], source: str = "flow template") -> None:
    """Raise TemplateError unless the template uses exactly the supplied value names."""
    used = placeholders(template)
    problems = []
    if missing := sorted(used - names):
        problems.append(f"{source} uses placeholders with no value: {', '.join('${' + n + '}' for n in missing)}")
    if unused := sorted(names - used):
        problems.append(f"{source} never uses these values: {', '.join(unused)}")
    if problems:
        raise TemplateError("; ".join(problems))


def render_flow(template: Any, values: Mapping[str, Any], pins: list[str] | tuple[str, ...],
                pin_check_url: str | None = None) -> dict[str, Any]:
    """The Studio definition for one stack: every placeholder filled, PINs as a comma list (a flow whose
    Function checks the PIN has none, and the Function's URL instead)."""
    all_values = dict(values)
    if pins:
        all_values[PINS] = ",".join(pins)
    if pin_check_url is not None:
        all_values[PIN_CHECK_URL] = pin_check_url
    check_values(template, set(all_values))
    return _conform(template, _fill(template, all_values))


def _conform(template: Any, rendered: Any) -> Any:
    """Each widget property filled from a whole placeholder in the JSON type Studio writes for it (the
    widget library's): `"timeout": "${pinCheckTimeout}"` of a TwiML Redirect becomes the text "110"."""
    for before, after in zip(listed(template.get("states")), listed(rendered.get("states"))):
        if not isinstance(before, dict) or not isinstance(before.get("properties"), dict):
            continue
        for key, kind in PROPERTY_TYPES.get(str(before.get("type")), {}).items():
            value = before["properties"].get(key)
            if isinstance(value, str) and PLACEHOLDER.fullmatch(value):
                after["properties"][key] = as_studio_type(after["properties"][key], kind)
    return rendered


def _fill(node: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole:
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), node)
    return node


def strings_in(node: Any) -> Iterator[str]:
    """Every string value anywhere in a JSON document, in document order (iteratively: any depth)."""
    pending = [node]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            pending.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            pending.extend(reversed(node))
