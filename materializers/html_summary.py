"""Small self-contained HTML pages that summarize an artifact in the ZenML dashboard."""

from __future__ import annotations

import html

SUMMARY_STYLE = (
    "body{font-family:sans-serif;font-size:14px;margin:1em}"
    "table{border-collapse:collapse;margin-bottom:1em}"
    "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    "code{font-size:12px}"
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
        f"<style>{SUMMARY_STYLE}</style></head><body><h2>{title}</h2>"
        f"<table>{rows}</table>{more_html}</body></html>"
    )
