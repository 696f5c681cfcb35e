"""A reviewable, widget-by-widget Markdown diff of two Studio definitions (or templates).

PIN changes are shown as counts only; canvas moves are summed up in one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from callmask.studio.flow_graph import FlowGraph, conditions, listed

PROMPT_KEYS = ("say", "play")
MAX_VALUE_TEXT = 120


@dataclass
class FlowChanges:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    transitions: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    pins_added: int = 0
    pins_removed: int = 0
    notes: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not any((self.added, self.removed, self.prompts, self.transitions, self.conditions,
                        self.properties, self.moved, self.pins_added, self.pins_removed, self.notes))


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_VALUE_TEXT else text[:MAX_VALUE_TEXT - 1] + "…"


def compare(old: dict[str, Any], new: dict[str, Any], pins: list[str] | None = None) -> FlowChanges:
    """`pins`: the line's known PINs; the splits comparing with any of them are PIN checks, whose values
    are counted, never shown. Without them no split is taken for a PIN check."""
    before, after = FlowGraph(old, pins), FlowGraph(new, pins)
    changes = FlowChanges()
    old_pins, new_pins = set(before.pins()), set(after.pins())
    changes.pins_added, changes.pins_removed = len(new_pins - old_pins), len(old_pins - new_pins)
    for key in ("initial_state", "flags", "description"):
        if old.get(key) != new.get(key):
            changes.properties.append(f"flow `{key}`: {_text(old.get(key))} → {_text(new.get(key))}")
    for name, state in after.by_name.items():
        if name not in before.by_name:
            changes.added.append(f"`{name}` ({state.get('type')})")
    for name, state in before.by_name.items():
        if name not in after.by_name:
            changes.removed.append(f"`{name}` ({state.get('type')})")
        else:
            _compare_widget(name, state, after.by_name[name], changes,
                            is_pin_check=state in before.pin_checks or after.by_name[name] in after.pin_checks)
    return changes


def _compare_widget(name: str, old: dict, new: dict, changes: FlowChanges, is_pin_check: bool) -> None:
    if old.get("type") != new.get("type"):
        changes.properties.append(f"`{name}` type: {old.get('type')} → {new.get('type')}")
    old_props, new_props = old.get("properties") or {}, new.get("properties") or {}
    for key in sorted(old_props.keys() | new_props.keys()):
        before, after = old_props.get(key), new_props.get(key)
        if before == after:
            continue
        if key == "offset":
            changes.moved.append(name)
        elif key in PROMPT_KEYS:
            changes.prompts.append(f"`{name}` {key}: “{_text(before)}” → “{_text(after)}”")
        else:
            changes.properties.append(f"`{name}` {key}: {_text(before)} → {_text(after)}")
    old_next = {t.get("event"): t.get("next") for t in listed(old.get("transitions"))}
    new_next = {t.get("event"): t.get("next") for t in listed(new.get("transitions"))}
    for event in sorted(old_next.keys() | new_next.keys(), key=str):
        if event not in new_next:
            changes.transitions.append(f"`{name}` {event}: event removed (was → {old_next[event] or 'end'})")
        elif event not in old_next:
            changes.transitions.append(f"`{name}` {event}: new event → {new_next[event] or 'end'}")
        elif old_next[event] != new_next[event]:
            changes.transitions.append(f"`{name}` {event}: → {old_next[event] or 'end'} becomes → {new_next[event] or 'end'}")
    old_conditions, new_conditions = conditions(old), conditions(new)
    if old_conditions != new_conditions:
        if is_pin_check:
            shown_old = [{k: v for k, v in c.items() if k != "value"} for c in old_conditions]
            shown_new = [{k: v for k, v in c.items() if k != "value"} for c in new_conditions]
            if shown_old != shown_new:
                changes.conditions.append(f"`{name}` PIN condition changed (PIN values not shown)")
        else:
            for before, after in zip(old_conditions, new_conditions):
                if before != after:
                    changes.conditions.append(
                        f"`{name}` “{after.get('friendly_name', '')}”: {before.get('type')} `{_text(before.get('value'))}`"
                        f" → {after.get('type')} `{_text(after.get('value'))}`")
            if len(old_conditions) != len(new_conditions):
                changes.conditions.append(f"`{name}`: {len(old_conditions)} conditions → {len(new_conditions)}")


def markdown(changes: FlowChanges, title: str) -> str:
    lines = [f"### {title}", ""]
    if changes.empty():
        return "\n".join(lines + ["No changes to the call flow.", ""])
    sections = (("Widgets added", changes.added), ("Widgets removed", changes.removed),
                ("Prompts changed", changes.prompts), ("Transitions changed", changes.transitions),
                ("Conditions changed", changes.conditions), ("Other settings changed", changes.properties),
                ("Notes", changes.notes))
    for heading, items in sections:
        if items:
            lines += [f"**{heading}**", *[f"- {item}" for item in items], ""]
    if changes.pins_added or changes.pins_removed:
        lines += [f"**PINs:** {changes.pins_added} added, {changes.pins_removed} removed (values not shown)", ""]
    if changes.moved:
        lines += [f"**Layout:** {len(changes.moved)} widget(s) moved on the canvas only", ""]
    return "\n".join(lines)
