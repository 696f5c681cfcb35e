"""A flowchart of a Studio definition: Mermaid text (renders on GitHub) or a standalone SVG laid out
from the widgets' own canvas offsets. Each widget shows its name, type and its prompt or key setting."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape
from typing import Any

from callmask.studio.flow_graph import FlowGraph, listed, masked

MERMAID_SHAPES = {
    "trigger": ('(["', '"])'),
    "gather-input-on-call": ('[/"', '"/]'),
    "split-based-on": ('{"', '"}'),
    "connect-call-to": ('[["', '"]]'),
}
BOX_WIDTH, BOX_HEIGHT, MARGIN = 230, 66, 30


def node_ids(graph: FlowGraph) -> dict[str, str]:
    """A Mermaid id per widget, readable and never shared: `a-4` and `a_4` get different ids."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for state in graph.states:
        name = str(state.get("name"))
        base = "w_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
        candidate, suffix = base, 1
        while candidate in taken:
            suffix += 1
            candidate = f"{base}_{suffix}"
        taken.add(candidate)
        ids.setdefault(name, candidate)
    return ids


NOT_IN_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _label(text: str) -> str:
    """Text for a quoted Mermaid label: on one line, without the quote that would end it."""
    return re.sub("[\x00-\x1f\x7f-\x9f\u2028\u2029]+", " ", text).replace('"', "#quot;")


def _xml(text: Any) -> str:
    """Escaped for SVG, characters XML cannot hold replaced, so the document is always well-formed."""
    return escape(NOT_IN_XML.sub("\ufffd", str(text)))


def _coordinate(value: Any) -> float:
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
    return number if math.isfinite(number) else 0.0


def edge_label(graph: FlowGraph, source: str, event: str, index: int) -> str:
    state = graph.by_name[source]
    transition = listed(state.get("transitions"))[index]
    names = [str(c.get("friendly_name")) for c in listed(transition.get("conditions")) if c.get("friendly_name")]
    return f"{event}: {', '.join(names)}" if names else event


def mermaid(definition: dict[str, Any]) -> str:
    graph = FlowGraph(definition)
    node_id = node_ids(graph).__getitem__
    lines = ["flowchart TD"]
    for state in graph.states:
        name, kind = str(state.get("name")), str(state.get("type"))
        opening, closing = MERMAID_SHAPES.get(kind, ('["', '"]'))
        said = f"<br/>{_label(text)}" if (text := summary(state)) else ""
        lines.append(f"    {node_id(name)}{opening}{_label(name)}<br/><i>{_label(kind)}</i>{said}{closing}")
    ends, missing = False, {}
    for edge in graph.edges:
        label = _label(edge_label(graph, edge.source, edge.event, edge.index))
        if edge.target in graph.by_name:
            lines.append(f'    {node_id(edge.source)} -->|"{label}"| {node_id(edge.target)}')
        elif edge.target is not None:  # a broken `next`: drawn, so the picture matches the JSON
            target = missing.setdefault(edge.target, f"missing_{len(missing) + 1}")
            lines.append(f'    {node_id(edge.source)} -->|"{label}"| {target}')
        elif graph.by_name[edge.source].get("type") != "trigger":  # a trigger event without next: not handled
            lines.append(f'    {node_id(edge.source)} -.->|"{label}"| call_ends')
            ends = True
    lines += [f'    {node}["{_label(name)}<br/><i>missing widget</i>"]' for name, node in missing.items()]
    if ends:
        lines.append("    call_ends((end))")
    return "\n".join(lines) + "\n"


def draw(definition: dict[str, Any], form: str = "mermaid", pins: list[str] | None = None,
         reveal: bool = False) -> str:
    """The diagram of a flow. With the line's known `pins` its PIN and number checks are shaded, and the
    PINs masked in the definition before drawing, so they never reach a node id or a coordinate."""
    graph = FlowGraph(definition, pins)
    guards = {str(s.get("name")) for s in graph.pin_checks + graph.number_checks}
    shown = definition if reveal or not pins else masked(definition, pins)
    return svg(shown, guards) if form == "svg" else mermaid(shown)


# ---- the SVG picture ----
CHAR_WIDTH, LABEL_HEIGHT, END_RADIUS = 6.1, 16, 11
SUMMARY_CHARS = 32
LABEL_STEPS = (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.12, 0.88)
LABEL_SHIFTS = (0, 14, -14, 28, -28, 44, -44, 64, -64, 90, -90)


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2

    def overlaps(self, other: "Box", gap: float = 2) -> bool:
        return not (self.x + self.width + gap <= other.x or other.x + other.width + gap <= self.x or
                    self.y + self.height + gap <= other.y or other.y + other.height + gap <= self.y)

    def border_toward(self, point: tuple[float, float]) -> tuple[float, float]:
        """Where the line from the center to `point` leaves the box (arrows end on borders, not under boxes)."""
        (cx, cy), (px, py) = self.center, point
        dx, dy = px - cx, py - cy
        if dx == dy == 0:
            return cx, self.y
        scale = min(self.width / 2 / abs(dx) if dx else math.inf, self.height / 2 / abs(dy) if dy else math.inf)
        return cx + dx * scale, cy + dy * scale

    def crosses(self, start: tuple[float, float], end: tuple[float, float], gap: float = 3) -> bool:
        """Whether the segment passes through the box, or within `gap` of it (Liang-Barsky clipping: constant
        time, however long the segment)."""
        (x, y), dx, dy = start, end[0] - start[0], end[1] - start[1]
        low, high = 0.0, 1.0
        for step, room in ((-dx, x - (self.x - gap)), (dx, self.x + self.width + gap - x),
                           (-dy, y - (self.y - gap)), (dy, self.y + self.height + gap - y)):
            if step == 0:
                if room < 0:
                    return False
                continue
            bound = room / step
            if step < 0:
                low = max(low, bound)
            else:
                high = min(high, bound)
            if low > high:
                return False
        return True


def summary(state: dict[str, Any]) -> str:
    """The widget's prompt or key setting, shortened: what it says, dials, tests or calls."""
    props = state.get("properties") if isinstance(state.get("properties"), dict) else {}
    kind = state.get("type")
    conditions = [c for t in listed(state.get("transitions")) if isinstance(t, dict)
                  for c in listed(t.get("conditions")) if isinstance(c, dict)]
    if kind == "split-based-on":
        tests = sorted({str(c.get("type")) for c in conditions})
        subject = re.sub(r"\{\{\s*(widgets\.)?|\s*\}\}", "", str(props.get("input", "")))
        text = f"{subject}: {', '.join(tests)}" if tests else subject
    elif kind == "connect-call-to":
        text = f"dials {props.get('to', '')}"
    elif kind in ("add-twiml-redirect", "make-http-request", "run-function"):
        text = f"{props.get('method', 'POST')} {props.get('url', '')}" if props.get("url") else ""
    elif kind == "set-variables":
        text = ", ".join(str(v.get("key")) for v in listed(props.get("variables")) if isinstance(v, dict))
    else:
        text = props.get("say") or props.get("body") or props.get("play") or ""
    return shorten(" ".join(str(text).split()), SUMMARY_CHARS)


def shorten(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 1].rstrip() + "…"


class Picture:
    """Boxes at the widgets' canvas offsets; edges from border to border with their arrowheads; each label
    placed where it covers no box, no other label and no other edge; events that end the call drawn to an
    end marker beside their widget."""

    def __init__(self, graph: FlowGraph):
        self.graph = graph
        self.boxes: dict[str, Box] = {}
        for order, state in enumerate(graph.states):
            offset = (state.get("properties") or {}).get("offset") or {"x": 0, "y": order * 150}
            offset = offset if isinstance(offset, dict) else {}
            self.boxes.setdefault(str(state.get("name")), Box(_coordinate(offset.get("x", 0)),
                                                              _coordinate(offset.get("y", 0)), BOX_WIDTH, BOX_HEIGHT))
        self.ends: list[Box] = []
        self.segments: list[tuple[tuple[float, float], tuple[float, float]]] = []
        self.labels: list[tuple[Box, str]] = []
        self.unlabelled: list[tuple[str, tuple[float, float], tuple[float, float], int]] = []
        self.lines: list[str] = []

    def obstacles(self) -> list[Box]:
        return [*self.boxes.values(), *self.ends, *(box for box, _ in self.labels)]

    def edge(self, source: Box, target: Box, text: str, bend: float = 0.0) -> None:
        start, end = source.border_toward(target.center), target.border_toward(source.center)
        if bend:  # the two directions between one pair of widgets, drawn side by side
            length = math.dist(start, end) or 1
            nx, ny = (end[1] - start[1]) / length * bend, (start[0] - end[0]) / length * bend
            start, end = (start[0] + nx, start[1] + ny), (end[0] + nx, end[1] + ny)
        self.segments.append((start, end))
        self.lines.append(f'<line class="edge" x1="{start[0]:.1f}" y1="{start[1]:.1f}" x2="{end[0]:.1f}" '
                          f'y2="{end[1]:.1f}" stroke="#555" marker-end="url(#arrow)"/>')
        self.unlabelled.append((text, start, end, len(self.segments) - 1))

    def loop(self, box: Box, text: str) -> None:
        """An event that comes back to its own widget: a loop on the right side."""
        right, top, bottom = box.x + box.width, box.y + box.height * 0.3, box.y + box.height * 0.7
        self.lines.append(f'<path class="edge" d="M {right:.1f} {top:.1f} C {right + 46:.1f} {top - 24:.1f} '
                          f'{right + 46:.1f} {bottom + 24:.1f} {right:.1f} {bottom:.1f}" fill="none" stroke="#555" '
                          'marker-end="url(#arrow)"/>')
        self.segments.append(((right, top), (right + 36, box.center[1])))
        self.segments.append(((right + 36, box.center[1]), (right, bottom)))
        beside = (right + 52 + len(text) * CHAR_WIDTH / 2, box.center[1])  # the label right of the loop
        self.unlabelled.append((text, beside, beside, len(self.segments) - 1))

    def end(self, box: Box, text: str) -> None:
        """The widget's events that end the call, to an end marker where it covers nothing."""
        size, gap = 2 * END_RADIUS, max(60.0, len(text) * CHAR_WIDTH + 36)  # room for the label on its line
        spots = [(box.x + box.width + gap, box.center[1] - END_RADIUS), (box.x - gap - size, box.center[1] - END_RADIUS),
                 (box.center[0] - END_RADIUS, box.y + box.height + 60), (box.center[0] - END_RADIUS, box.y - 60 - size),
                 (box.x + box.width + gap, box.y + box.height + 40), (box.x - gap - size, box.y + box.height + 40)]
        marker = next((Box(x, y, size, size) for x, y in spots
                       if not any(Box(x, y, size, size).overlaps(other, 8) for other in self.obstacles())),
                      Box(*spots[0], size, size))
        self.ends.append(marker)
        cx, cy = marker.center
        self.lines.append(f'<circle class="end" cx="{cx:.1f}" cy="{cy:.1f}" r="{END_RADIUS}" fill="#fff" '
                          'stroke="#a33" stroke-width="2"/>')
        self.lines.append(f'<text x="{cx:.1f}" y="{cy + 3.5:.1f}" text-anchor="middle" font-size="9" '
                          'fill="#a33">end</text>')
        start = box.border_toward(marker.center)
        dx, dy = start[0] - cx, start[1] - cy
        reach = math.hypot(dx, dy) or 1
        stop = (cx + dx / reach * END_RADIUS, cy + dy / reach * END_RADIUS)
        self.segments.append((start, stop))
        self.lines.append(f'<line class="edge" x1="{start[0]:.1f}" y1="{start[1]:.1f}" x2="{stop[0]:.1f}" '
                          f'y2="{stop[1]:.1f}" stroke="#a33" stroke-dasharray="4 3" marker-end="url(#arrow)"/>')
        self.unlabelled.append((text, start, stop, len(self.segments) - 1))

    def label(self, text: str, start: tuple[float, float], end: tuple[float, float], own: int) -> None:
        """The label on its own edge, at the first place along it that covers no box, label or other edge
        (every edge is drawn before any label is placed); where none is free, the one that covers least (a
        widget box counts most)."""
        width, height = len(text) * CHAR_WIDTH + 8, LABEL_HEIGHT
        length = math.dist(start, end)
        normal = ((end[1] - start[1]) / length, (start[0] - end[0]) / length) if length else (0.0, 1.0)
        best, best_cost = None, math.inf
        for step in LABEL_STEPS:
            for shift in LABEL_SHIFTS:
                cx = start[0] + (end[0] - start[0]) * step + normal[0] * shift
                cy = start[1] + (end[1] - start[1]) * step + normal[1] * shift
                box = Box(cx - width / 2, cy - height / 2, width, height)
                cost = (100 * sum(box.overlaps(b) for b in [*self.boxes.values(), *self.ends]) +
                        10 * sum(box.overlaps(b) for b, _ in self.labels) +
                        sum(box.crosses(*segment) for index, segment in enumerate(self.segments)
                            if index != own and not (start == end and index == own - 1)))
                if cost < best_cost:
                    best, best_cost = box, cost
                if cost == 0:
                    break
            if best_cost == 0:
                break
        self.labels.append((best, text))

    def draw(self, shaded: set[str]) -> str:
        graph = self.graph
        grouped: dict[tuple[str, str], list[str]] = {}
        ending: dict[str, list[str]] = {}
        for edge in graph.edges:
            text = edge_label(graph, edge.source, edge.event, edge.index)
            if edge.target in self.boxes:
                grouped.setdefault((str(edge.source), edge.target), []).append(text)
            elif edge.target is None and graph.by_name[edge.source].get("type") != "trigger":
                ending.setdefault(str(edge.source), []).append(text)
        for (source, target), texts in grouped.items():
            if source == target:
                self.loop(self.boxes[source], ", ".join(texts))
            else:
                self.edge(self.boxes[source], self.boxes[target], ", ".join(texts),
                          bend=6.0 if (target, source) in grouped else 0.0)
        for source, texts in ending.items():
            self.end(self.boxes[source], ", ".join(texts))
        for text, start, end, own in self.unlabelled:
            self.label(text, start, end, own)
        return self.document(shaded)

    def document(self, shaded: set[str]) -> str:
        everything = self.obstacles()
        left = min((b.x for b in everything), default=0) - MARGIN
        top = min((b.y for b in everything), default=0) - MARGIN
        width = max((b.x + b.width for b in everything), default=0) + MARGIN - left
        height = max((b.y + b.height for b in everything), default=0) + MARGIN - top
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
                 f'viewBox="{left:.0f} {top:.0f} {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
                 '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" '
                 'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
                 'fill="#555"/></marker></defs>', f'<rect x="{left:.0f}" y="{top:.0f}" width="{width:.0f}" '
                 f'height="{height:.0f}" fill="#fff"/>', *self.lines]
        for state in self.graph.states:
            name = str(state.get("name"))
            box = self.boxes[name]
            fill = "#fde2e2" if name in shaded else "#e8f0fe"
            parts.append(f'<rect class="widget" x="{box.x:.0f}" y="{box.y:.0f}" width="{box.width}" '
                         f'height="{box.height}" rx="8" fill="{fill}" stroke="#345"/>')
            parts.append(f'<text x="{box.x + 10:.0f}" y="{box.y + 19:.0f}" font-weight="bold">{_xml(name)}</text>')
            parts.append(f'<text x="{box.x + 10:.0f}" y="{box.y + 36:.0f}" fill="#667" font-size="11">'
                         f'{_xml(state.get("type"))}</text>')
            if text := summary(state):
                parts.append(f'<text class="summary" x="{box.x + 10:.0f}" y="{box.y + 54:.0f}" fill="#223" '
                             f'font-style="italic" font-size="11">{_xml(text)}</text>')
        for box, text in self.labels:
            parts.append(f'<rect class="label" x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
                         f'height="{box.height:.1f}" rx="3" fill="#fff" fill-opacity="0.9" stroke="#ccd"/>')
            parts.append(f'<text x="{box.x + 4:.1f}" y="{box.y + 12:.1f}" font-size="11" fill="#333">{_xml(text)}</text>')
        parts.append("</svg>")
        return "\n".join(parts) + "\n"


def svg(definition: dict[str, Any], shaded: set[str] = frozenset()) -> str:
    return Picture(FlowGraph(definition)).draw(set(shaded))
