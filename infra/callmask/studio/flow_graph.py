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
VERDICT_REFERENCE = re.compile(r"\{\{\s*widgets\.([A-Za-z0-9_-]+)\.verdict\s*\}\}")
PIN_ACCEPTED = "ok"  # the verdict of the line's PIN-check Function for a PIN on the list
PIN_CONDITION_TYPES = ("matches_any_of", "equal_to")


@dataclass(frozen=True)
class Edge:
    source: str
    event: str
    target: str | None
    index: int  # position in the source widget's transitions


class FlowGraph:
    def __init__(self, definition: dict[str, Any], pins: tuple[str, ...] | list[str] | None = None):
        """`pins`: the PINs the line is known to use; the PIN checks are then the splits that compare
        with them, never a guess from any split that compares digits."""
        self.definition = definition
        self.known_pins = set(pins) if pins is not None else None
        self.states: list[dict[str, Any]] = [s for s in definition.get("states", []) if isinstance(s, dict)]
        self.by_name: dict[str, dict[str, Any]] = {s.get("name"): s for s in self.states}
        self.initial: str | None = definition.get("initial_state")

    @cached_property
    def edges(self) -> list[Edge]:
        return [Edge(state.get("name"), t.get("event", ""), t.get("next"), index)
                for state in self.states
                for index, t in enumerate(listed(state.get("transitions"))) if isinstance(t, dict)]

    @cached_property
    def outgoing(self) -> dict[str, list[Edge]]:
        """Each widget's transitions that lead to an existing widget."""
        found: dict[str, list[Edge]] = {}
        for edge in self.edges:
            if edge.target in self.by_name:
                found.setdefault(edge.source, []).append(edge)
        return found

    @cached_property
    def predecessors(self) -> dict[str, list[str]]:
        """The widgets with a transition to each widget."""
        found: dict[str, list[str]] = {}
        for source, edges in self.outgoing.items():
            for edge in edges:
                found.setdefault(str(edge.target), []).append(source)
        return found

    def successors(self, name: str, without: frozenset[Edge] = frozenset()) -> list[str]:
        return [e.target for e in self.outgoing.get(name, []) if e not in without]

    def reachable(self, without: frozenset[Edge] = frozenset()) -> set[str]:
        if not without and "_reachable" in self.__dict__:
            return self.__dict__["_reachable"]
        seen = self._walk(without)
        if not without:
            self.__dict__["_reachable"] = seen
        return seen

    def _walk(self, without: frozenset[Edge]) -> set[str]:
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
    def _dominator_tree(self) -> tuple[dict[str, int], dict[str, int]]:
        """Entry and exit numbers of each reachable widget in the dominator tree (Cooper, Harvey and
        Kennedy's iterative algorithm over reverse postorder), so dominance is two comparisons."""
        order: list[str] = []  # postorder, iteratively (flows can be deep)
        if self.initial in self.by_name:
            seen, stack = {self.initial}, [(self.initial, iter(self.successors(self.initial)))]
            while stack:
                name, children = stack[-1]
                child = next((c for c in children if c not in seen), None)
                if child is None:
                    order.append(name)
                    stack.pop()
                else:
                    seen.add(child)
                    stack.append((child, iter(self.successors(child))))
        number = {name: index for index, name in enumerate(order)}
        idom = {self.initial: self.initial} if order else {}
        changed = True
        while changed:
            changed = False
            for name in reversed(order[:-1]):
                processed = [p for p in self.predecessors.get(name, []) if p in idom]
                new = processed[0]
                for other in processed[1:]:
                    a, b = new, other
                    while a != b:
                        while number[a] < number[b]:
                            a = idom[a]
                        while number[b] < number[a]:
                            b = idom[b]
                    new = a
                if idom.get(name) != new:
                    idom[name], changed = new, True
        children: dict[str, list[str]] = {}
        for name, parent in idom.items():
            if name != parent:
                children.setdefault(parent, []).append(name)
        entry, exit_, clock = {}, {}, 0
        stack2 = [(self.initial, False)] if order else []
        while stack2:
            name, done = stack2.pop()
            if done:
                exit_[name] = clock
            else:
                entry[name] = clock
                stack2.append((name, True))
                stack2.extend((child, False) for child in children.get(name, []))
            clock += 1
        return entry, exit_

    def strictly_dominates(self, first: str, second: str) -> bool:
        """Every path from the start to `second` passes through `first` before it (both reachable)."""
        entry, exit_ = self._dominator_tree
        if first == second or first not in entry or second not in entry:
            return False
        return entry[first] < entry[second] and exit_[second] < exit_[first]

    def of_type(self, widget_type: str) -> list[dict[str, Any]]:
        return [s for s in self.states if s.get("type") == widget_type]

    def match_edges(self, split_name: str) -> list[Edge]:
        return [e for e in self.edges if e.source == split_name and e.event == "match"]

    # ---- roles ----
    @cached_property
    def pin_checks(self) -> list[dict[str, Any]]:
        """The PIN gates: the literal PIN checks, then the verdict checks."""
        return self.literal_pin_checks + self.verdict_checks

    @cached_property
    def literal_pin_checks(self) -> list[dict[str, Any]]:
        """Splits that compare with the line's known PINs (any of them: an old PIN list still counts).
        Without known PINs there are none: a menu comparing the caller's key with "1" is no PIN check."""
        if not self.known_pins:
            return []
        return [s for s in self.of_type("split-based-on") if any(
            c.get("type") in PIN_CONDITION_TYPES and _is_digit_list(c.get("value"))
            and set(split_list(c["value"])) & self.known_pins
            for c in conditions(s))]

    @cached_property
    def verdict_checks(self) -> list[dict[str, Any]]:
        """Splits on the verdict a TwiML Redirect brought back (the line's PIN-check Function): a dial-out
        role, so only for a line whose PINs are given."""
        if self.known_pins is None:
            return []
        return [s for s in self.of_type("split-based-on") if self.verdict_source(s) is not None]

    def verdict_source(self, split: dict[str, Any]) -> dict[str, Any] | None:
        """The TwiML Redirect widget whose verdict a split examines."""
        match = VERDICT_REFERENCE.fullmatch(str(split.get("properties", {}).get("input", "")).strip())
        widget = self.by_name.get(match.group(1)) if match else None
        return widget if widget is not None and widget.get("type") == "add-twiml-redirect" else None

    @cached_property
    def pin_check_names(self) -> set[str]:
        return {str(s.get("name")) for s in self.pin_checks}

    def pass_edges(self, check: dict[str, Any]) -> list[Edge]:
        """The transitions by which a call passes a gate: every match of a PIN or number check; of a
        verdict check, only a match on exactly the verdict `ok`."""
        name = str(check.get("name"))
        if check not in self.verdict_checks:
            return self.match_edges(name)
        transitions = listed(check.get("transitions"))
        return [edge for edge in self.match_edges(name) if _accepts_only_ok(transitions[edge.index])]

    @cached_property
    def number_checks(self) -> list[dict[str, Any]]:
        """Splits that test the number to dial with a regex: a dial-out role, so only for a line whose PINs
        are given (possibly none); otherwise a regex split is just a split."""
        if self.known_pins is None:
            return []
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


def listed(value: Any) -> list[Any]:
    """A flow value that Studio takes as a list (states, transitions, conditions, variables), or none when
    the file holds something else there."""
    return value if isinstance(value, list) else []


def _accepts_only_ok(transition: dict[str, Any]) -> bool:
    tests = [c for c in listed(transition.get("conditions")) if isinstance(c, dict)]
    return bool(tests) and any(c.get("type") == "equal_to" and str(c.get("value", "")).strip() == PIN_ACCEPTED
                               for c in tests)


def conditions(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for t in listed(state.get("transitions")) if isinstance(t, dict) and t.get("event") == "match"
            for c in listed(t.get("conditions")) if isinstance(c, dict)]


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _is_digit_list(value: Any) -> bool:
    return isinstance(value, str) and bool(split_list(value)) and all(item.isdigit() for item in split_list(value))


def mask_pins(text: str, pins: tuple[str, ...] | list[str]) -> str:
    for pin in sorted(set(pins), key=len, reverse=True):
        text = text.replace(pin, "*" * len(pin))
    return text


def masked(document: Any, pins: tuple[str, ...] | list[str]) -> Any:
    """A copy of a JSON document with the PINs masked in every text, its numbers and shape untouched
    (iteratively: flows nested as deep as JSON allows)."""
    def alone(node: Any) -> Any:  # the node itself, an empty container in its place
        if isinstance(node, str):
            return mask_pins(node, pins)
        return type(node)() if isinstance(node, (dict, list)) else node

    copy = alone(document)
    pending = [(document, copy)] if isinstance(document, (dict, list)) else []
    while pending:
        source, target = pending.pop()
        for key, value in source.items() if isinstance(source, dict) else enumerate(source):
            child = alone(value)
            if isinstance(target, dict):
                target[alone(key)] = child
            else:
                target.append(child)
            if isinstance(value, (dict, list)):
                pending.append((value, child))
    return copy
