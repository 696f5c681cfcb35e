"""A Studio definition seen as a graph of widgets, and the roles callmask's widgets play in it.

The validator, the simulator, the diagram and the diff all read a definition through this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

WIDGET_REFERENCE = re.compile(r"widgets\.([A-Za-z0-9_-]+)")
DIGITS_REFERENCE = re.compile(r"widgets\.([A-Za-z0-9_-]+)\.Digits")
PIN_CONDITION_TYPES = ("matches_any_of", "equal_to")


@dataclass(frozen=True)
class Edge:
    source: str
    event: str
    target: str | None
    index: int  # position in the source widget's transitions


class FlowGraph:
    def __init__(self, definition: dict[str, Any]):
        self.definition = definition
        self.states: list[dict[str, Any]] = [s for s in definition.get("states", []) if isinstance(s, dict)]
        self.by_name: dict[str, dict[str, Any]] = {s.get("name"): s for s in self.states}
        self.initial: str | None = definition.get("initial_state")

    @cached_property
    def edges(self) -> list[Edge]:
        return [Edge(state.get("name"), t.get("event", ""), t.get("next"), index)
                for state in self.states
                for index, t in enumerate(state.get("transitions") or []) if isinstance(t, dict)]

    def successors(self, name: str, without: frozenset[Edge] = frozenset()) -> list[str]:
        return [e.target for e in self.edges if e.source == name and e.target in self.by_name and e not in without]

    def reachable(self, without: frozenset[Edge] = frozenset()) -> set[str]:
        if self.initial not in self.by_name:
            return set()
        seen, stack = {self.initial}, [self.initial]
        while stack:
            for target in self.successors(stack.pop(), without):
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return seen

    @cached_property
    def dominators(self) -> dict[str, set[str]]:
        """For each reachable widget, the widgets every path from the start passes through first."""
        reachable = self.reachable()
        predecessors = {name: {e.source for e in self.edges if e.target == name and e.source in reachable}
                        for name in reachable}
        dominators = {name: set(reachable) for name in reachable}
        dominators[self.initial] = {self.initial}
        changed = True
        while changed:
            changed = False
            for name in reachable - {self.initial}:
                incoming = [dominators[p] for p in predecessors[name]]
                new = ({name} | set.intersection(*incoming)) if incoming else {name}
                if new != dominators[name]:
                    dominators[name], changed = new, True
        return dominators

    def of_type(self, widget_type: str) -> list[dict[str, Any]]:
        return [s for s in self.states if s.get("type") == widget_type]

    def match_edges(self, split_name: str) -> list[Edge]:
        return [e for e in self.edges if e.source == split_name and e.event == "match"]

    # ---- roles ----
    @cached_property
    def pin_checks(self) -> list[dict[str, Any]]:
        """Splits that compare gathered digits with a list of PINs."""
        return [s for s in self.of_type("split-based-on") if any(
            c.get("type") in PIN_CONDITION_TYPES and _is_digit_list(c.get("value"))
            for c in conditions(s))]

    @cached_property
    def number_checks(self) -> list[dict[str, Any]]:
        """Splits that test the number to dial with a regex."""
        return [s for s in self.of_type("split-based-on") if any(c.get("type") == "regex" for c in conditions(s))]

    def pins(self) -> list[str]:
        return [pin for check in self.pin_checks for pin in self.pins_of(check)]

    @staticmethod
    def pins_of(check: dict[str, Any]) -> list[str]:
        """The PINs one PIN check compares with."""
        return [pin for c in conditions(check) if c.get("type") in PIN_CONDITION_TYPES and _is_digit_list(c.get("value"))
                for pin in split_list(c["value"])]

    def digits_source(self, widget: dict[str, Any]) -> str | None:
        """The gather widget whose Digits a split examines."""
        match = DIGITS_REFERENCE.search(str(widget.get("properties", {}).get("input", "")))
        return match.group(1) if match else None


def conditions(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for t in state.get("transitions") or [] if isinstance(t, dict) and t.get("event") == "match"
            for c in t.get("conditions") or [] if isinstance(c, dict)]


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _is_digit_list(value: Any) -> bool:
    return isinstance(value, str) and bool(split_list(value)) and all(item.isdigit() for item in split_list(value))
