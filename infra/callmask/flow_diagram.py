"""A flowchart of a Studio definition: Mermaid text (renders on GitHub) or a standalone SVG laid out
from the widgets' own canvas offsets."""

from __future__ import annotations

import math
import re
from html import escape
from typing import Any

from callmask.flow_graph import FlowGraph, masked

MERMAID_SHAPES = {
    "trigger": ('(["', '"])'),
    "gather-input-on-call": ('[/"', '"/]'),
    "split-based-on": ('{"', '"}'),
    "connect-call-to": ('[["', '"]]'),
}
BOX_WIDTH, BOX_HEIGHT, MARGIN = 210, 54, 40


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
    transition = (state.get("transitions") or [])[index]
    names = [str(c.get("friendly_name")) for c in transition.get("conditions") or [] if c.get("friendly_name")]
    return f"{event}: {', '.join(names)}" if names else event


def mermaid(definition: dict[str, Any]) -> str:
    graph = FlowGraph(definition)
    node_id = node_ids(graph).__getitem__
    lines = ["flowchart TD"]
    for state in graph.states:
        name, kind = str(state.get("name")), str(state.get("type"))
        opening, closing = MERMAID_SHAPES.get(kind, ('["', '"]'))
        lines.append(f"    {node_id(name)}{opening}{_label(name)}<br/><i>{_label(kind)}</i>{closing}")
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


def svg(definition: dict[str, Any], shaded: set[str] = frozenset()) -> str:
    graph = FlowGraph(definition)
    positions = {}
    for order, state in enumerate(graph.states):
        offset = (state.get("properties") or {}).get("offset") or {"x": 0, "y": order * 150}
        positions[state.get("name")] = (_coordinate(offset.get("x", 0)), _coordinate(offset.get("y", 0)))
    min_x = min((x for x, _ in positions.values()), default=0)
    min_y = min((y for _, y in positions.values()), default=0)
    placed = {name: (x - min_x + MARGIN, y - min_y + MARGIN) for name, (x, y) in positions.items()}
    width = max((x for x, _ in placed.values()), default=0) + BOX_WIDTH + MARGIN
    height = max((y for _, y in placed.values()), default=0) + BOX_HEIGHT + MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
    labels: dict[tuple[str, str], list[str]] = {}
    for edge in graph.edges:
        if edge.target in placed:
            labels.setdefault((edge.source, edge.target), []).append(edge_label(graph, edge.source, edge.event, edge.index))
    for (source, target), texts in labels.items():
        (x1, y1), (x2, y2) = placed[source], placed[target]
        start, end = (x1 + BOX_WIDTH / 2, y1 + BOX_HEIGHT), (x2 + BOX_WIDTH / 2, y2)
        along = 0.4 if start[0] == end[0] else 0.65  # keeps labels of edges leaving one widget apart
        label_x, label_y = start[0] + (end[0] - start[0]) * along + 4, start[1] + (end[1] - start[1]) * along
        parts.append(f'<line x1="{start[0]:.0f}" y1="{start[1]:.0f}" x2="{end[0]:.0f}" y2="{end[1]:.0f}" '
                     'stroke="#555" marker-end="url(#arrow)"/>')
        parts.append(f'<text x="{label_x:.0f}" y="{label_y:.0f}" fill="#333">{_xml(", ".join(texts))}</text>')
    for state in graph.states:
        x, y = placed[state.get("name")]
        fill = "#fde2e2" if str(state.get("name")) in shaded else "#e8f0fe"
        parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="8" '
                     f'fill="{fill}" stroke="#345"/>')
        parts.append(f'<text x="{x + 10:.0f}" y="{y + 22:.0f}" font-weight="bold">{_xml(state.get("name"))}</text>')
        parts.append(f'<text x="{x + 10:.0f}" y="{y + 40:.0f}" fill="#555">{_xml(state.get("type"))}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

