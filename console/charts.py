"""Charts as inline SVG, drawn on the server: no JavaScript library, nothing loaded from elsewhere, and the
strict Content-Security-Policy holds (an inline <svg> is markup, not script). Every label is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

# One colour per status, the same in every chart and in the legend (console/static/console.css).
COLOURS = {
    "received": "#9aa5b1",
    "forwarded": "#5b8def",
    "delivered": "#2f9e44",
    "answered": "#37b24d",
    "skipped": "#adb5bd",
    "replayed": "#7950f2",
    "resolved": "#868e96",
    "rejected": "#e8590c",
    "parked": "#c92a2a",
}


def _colour(status: str) -> str:
    return COLOURS.get(status, "#495057")


def stacked_columns(
    labels: Sequence[str], series: Sequence[dict[str, int]], title: str, width: int = 640, height: int = 180
) -> str:
    """One column per slot (e.g. per hour), stacked by status."""
    top = max([sum(s.values()) for s in series] + [1])
    pad_left, pad_bottom = 40, 22
    inner_w, inner_h = width - pad_left - 8, height - pad_bottom - 10
    step = inner_w / max(len(series), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><title>{escape(title)}</title>',
        f'<text x="4" y="14" class="axis">{top}</text><text x="4" y="{10 + inner_h}" class="axis">0</text>',
        f'<line x1="{pad_left}" y1="{10 + inner_h}" x2="{width - 8}" y2="{10 + inner_h}" class="base"/>',
    ]
    for i, counts in enumerate(series):
        x = pad_left + i * step + 1
        y = 10.0 + inner_h
        for status, n in sorted(counts.items()):
            h = inner_h * n / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
                f"fill={quoteattr(_colour(status))}><title>{escape(f'{labels[i]} {status}: {n}')}</title></rect>"
            )
        if len(series) <= 12 or i % max(len(series) // 8, 1) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 6}" class="axis">{escape(labels[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(rows: Sequence[tuple[str, dict[str, int]]], title: str, width: int = 640) -> str:
    """One horizontal bar per message type, stacked by status, with its total."""
    bar, gap, label_w = 16, 6, 190
    height = max(len(rows), 1) * (bar + gap) + 8
    top = max([sum(c.values()) for _, c in rows] + [1])
    inner = width - label_w - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><title>{escape(title)}</title>'
    ]
    for i, (label, counts) in enumerate(rows):
        y = 4 + i * (bar + gap)
        parts.append(f'<text x="0" y="{y + bar - 4}" class="label">{escape(label)}</text>')
        x = float(label_w)
        for status, n in sorted(counts.items()):
            w = inner * n / top
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill={quoteattr(_colour(status))}>'
                f"<title>{escape(f'{label} {status}: {n}')}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar - 4}" class="axis">{sum(counts.values())}</text>')
    if not rows:
        parts.append(f'<text x="0" y="{bar}" class="axis">no messages in this window</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(statuses: Sequence[str]) -> str:
    items = "".join(
        f'<span class="key"><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" '
        f"fill={quoteattr(_colour(s))}/></svg> {escape(s)}</span>"
        for s in statuses
    )
    return f'<p class="legend">{items}</p>'
