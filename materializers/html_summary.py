"""The look of every HTML visualization, and a one-table summary page of an artifact."""

from __future__ import annotations

import html

PAGE_STYLE = (
    "body{font-family:sans-serif;font-size:14px;margin:1em}"
    "table{border-collapse:collapse;margin-bottom:1em}"
)
# Tables of text (facts, token previews), and tables of figures with a name column first.
TEXT_TABLE_STYLE = (
    PAGE_STYLE + "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}code{font-size:12px}"
)
FIGURES_TABLE_STYLE = (
    PAGE_STYLE + "th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
)


def summary_page(title: str, facts: dict[str, str], more_html: str = "") -> str:
    """A page headed `title` with a table of `facts` (escaped), then `more_html` (not escaped)."""
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in facts.items()
    )
    title = html.escape(title)
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{TEXT_TABLE_STYLE}</style></head><body><h2>{title}</h2>"
        f"<table>{rows}</table>{more_html}</body></html>"
    )
