"""The journey diagram: a pure function from a graph (and counts) to an inline SVG.

Steps are placed in columns by their distance from the trigger (back edges of loops are
drawn but do not push a step right); no script, no external asset.
"""

from collections import deque

from django.utils.html import escape

from journeys.engine.graph import normalize_graph

BOX_WIDTH, BOX_HEIGHT = 170, 64
COLUMN_GAP, ROW_GAP = 60, 26
KIND_COLOURS = {
    "trigger": "#d9f2e6",
    "wait": "#fff4d6",
    "wait_for_event": "#fff4d6",
    "condition": "#e6ecff",
    "split": "#e6ecff",
    "send": "#fde2e2",
    "send_best_channel": "#fde2e2",
    "update_profile": "#eeeeee",
    "webhook": "#eeeeee",
    "exit": "#dddddd",
}


def _columns(graph: dict) -> dict[str, int]:
    steps = {step["id"]: step for step in graph["steps"]}
    entry = next((s["id"] for s in graph["steps"] if s["kind"] == "trigger"), None)
    column: dict[str, int] = {}
    if entry is not None:
        column[entry] = 0
        queue = deque([entry])
        while queue:
            current = queue.popleft()
            for target in steps[current]["exits"].values():
                if target in steps and target not in column:
                    column[target] = column[current] + 1
                    queue.append(target)
    last = max(column.values(), default=-1)
    for step_id in steps:  # unreachable steps go in a last column
        column.setdefault(step_id, last + 1)
    return column


def journey_svg(graph: dict, *, counts: dict | None = None, problems: dict | None = None) -> str:
    """``counts``: step id -> {"entered", "waiting", "moved_on"}; ``problems``: step id ->
    messages (the step is outlined red and lists them)."""
    if not isinstance(graph, dict) or not isinstance(graph.get("steps"), list):
        return ""
    try:
        graph = normalize_graph(graph)
        column = _columns(graph)
    except (KeyError, TypeError, AttributeError):
        return ""  # a draft too broken to draw: the problems list says why
    counts = counts or {}
    problems = problems or {}
    rows: dict[int, int] = {}
    position = {}
    for step in graph["steps"]:
        col = column[step["id"]]
        row = rows.get(col, 0)
        rows[col] = row + 1
        position[step["id"]] = (
            20 + col * (BOX_WIDTH + COLUMN_GAP),
            20 + row * (BOX_HEIGHT + ROW_GAP),
        )
    width = 40 + (max(column.values(), default=0) + 1) * (BOX_WIDTH + COLUMN_GAP)
    height = 40 + max(rows.values(), default=1) * (BOX_HEIGHT + ROW_GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="journey-diagram" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
        'font-size="11" role="img" aria-label="journey diagram">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker>'
        "</defs>",
    ]
    for step in graph["steps"]:
        x, y = position[step["id"]]
        for name, target in step["exits"].items():
            if target not in position:
                continue
            tx, ty = position[target]
            x1, y1 = x + BOX_WIDTH, y + BOX_HEIGHT / 2
            x2, y2 = tx, ty + BOX_HEIGHT / 2
            if tx <= x:  # a loop back: curve below the boxes
                x1, x2 = x + BOX_WIDTH / 2, tx + BOX_WIDTH / 2
                y1, y2 = y + BOX_HEIGHT, ty + BOX_HEIGHT
                path = f"M{x1},{y1} C{x1},{y1 + 40} {x2},{y2 + 40} {x2},{y2}"
            else:
                path = f"M{x1},{y1} C{x1 + 30},{y1} {x2 - 30},{y2} {x2},{y2}"
            parts.append(
                f'<path d="{path}" fill="none" stroke="#666" marker-end="url(#arrow)"/>'
                f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 3}" fill="#444" '
                f'text-anchor="middle">{escape(name)}</text>'
            )
    for step in graph["steps"]:
        step_id = step["id"]
        x, y = position[step_id]
        fill = KIND_COLOURS.get(step["kind"], "#ffffff")
        stroke = "#c00" if step_id in problems else "#888"
        title = "\n".join(problems.get(step_id, [])) or step.get("label", "")
        numbers = counts.get(step_id, {})
        count_line = (
            f"in {numbers.get('entered', 0)} · waiting {numbers.get('waiting', 0)} · "
            f"on {numbers.get('moved_on', 0)}"
        )
        message_line = (
            f"sent {numbers['sent']} · dlv {numbers.get('delivered', 0)} · "
            f"open {numbers.get('opened', 0)} · click {numbers.get('clicked', 0)}"
            if "sent" in numbers
            else ""
        )
        parts.append(
            f'<g class="step" data-step="{escape(step_id)}"><title>{escape(title)}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if step_id in problems else 1}"/>'
            f'<text x="{x + 8}" y="{y + 16}" font-weight="bold">{escape(step_id)}</text>'
            f'<text x="{x + 8}" y="{y + 31}" fill="#555">{escape(step["kind"])}</text>'
            f'<text x="{x + 8}" y="{y + 46}" class="counts">{escape(count_line)}</text>'
            f'<text x="{x + 8}" y="{y + 59}" class="messages">{escape(message_line)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
