"""One run's report as one self-contained HTML page: plain formatting, no MLflow.

The page needs nothing but itself to be read: figures are ``data:`` URIs, the style is
inline, and there is no script. A study's own Markdown table is rendered as HTML; images
in it are not (they would be links to elsewhere).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Union

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    numeric_from: int | None = None  # columns from this index on hold numbers: right-aligned


@dataclass(frozen=True)
class Markdown:
    text: str


@dataclass(frozen=True)
class Figure:
    name: str
    data: bytes
    mime: str = "image/png"


Block = Union[Table, Markdown]


@dataclass
class RunReport:
    """What a report shows of one parent run, already formatted as text."""

    kind: str  # experiment, sweep or study
    run_id: str
    name: str
    experiment: str
    status: str
    started: str
    headline: list[Block]
    figures: list[Figure] = field(default_factory=list)
    sections: list[tuple[str, Block]] = field(default_factory=list)  # (title, block) after the figures
    stages: Table | None = None
    provenance: list[tuple[str, str]] = field(default_factory=list)
    config: str = ""
    config_source: str = ""
    footer: str = ""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def mime_of(name: str) -> str | None:
    dot = name.rfind(".")
    return MIME.get(name[dot:].lower()) if dot >= 0 else None


def table_html(table: Table) -> str:
    def cell(tag: str, text: str, i: int) -> str:
        numeric = table.numeric_from is not None and i >= table.numeric_from
        attributes = ' class="num"' if numeric else ""
        return f"<{tag}{attributes}>{html.escape(str(text))}</{tag}>"

    head = "".join(cell("th", c, i) for i, c in enumerate(table.columns))
    body = "".join("<tr>" + "".join(cell("td", v, i) for i, v in enumerate(row)) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown_html(text: str) -> str:
    """CommonMark with tables; raw HTML is escaped and images are left out."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
    return md.render(text)


def block_html(block: Block) -> str:
    return table_html(block) if isinstance(block, Table) else f'<div class="md">{markdown_html(block.text)}</div>'


def figure_html(figure: Figure) -> str:
    name = html.escape(figure.name)
    return (f'<figure><img src="{data_uri(figure.data, figure.mime)}" alt="{name}">'
            f"<figcaption>{name}</figcaption></figure>")


def definitions_html(items: list[tuple[str, str]]) -> str:
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    return f"<dl>{rows}</dl>"


STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1120px; padding: 24px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d8dee4; }
.sub { color: #59636e; margin: 0; }
.kind { display: inline-block; background: #ddf4ff; color: #0550ae; border-radius: 10px; padding: 0 9px;
        font-size: 13px; font-weight: 600; margin-right: 6px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d8dee4; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; white-space: nowrap; }
.md table { font-size: 13.5px; }
.md td { white-space: nowrap; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; border: 1px solid #d8dee4; }
figcaption { color: #59636e; font-size: 13px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 3px 18px; margin: 8px 0; }
dt { color: #59636e; }
dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13.5px; }
pre { background: #f6f8fa; border: 1px solid #d8dee4; padding: 10px 14px; overflow-x: auto; font-size: 13px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13.5px; }
footer { margin-top: 36px; color: #59636e; font-size: 13px; }
"""


def render(report: RunReport) -> str:
    """The whole page."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(report.name)} · w2s report</title>",
        f"<style>{STYLE}</style></head><body>",
        f'<header><h1>{e(report.name)}</h1><p class="sub"><span class="kind">{e(report.kind)}</span>'
        f"{e(report.status)} · experiment {e(report.experiment)} · run <code>{e(report.run_id)}</code>"
        f" · started {e(report.started)}</p></header>",
        '<section id="headline"><h2>Headline metrics</h2>',
        *(block_html(b) for b in report.headline),
        "</section>",
    ]
    if report.figures:
        parts += ['<section id="figures"><h2>Figures</h2>', *(figure_html(f) for f in report.figures), "</section>"]
    for title, block in report.sections:
        parts += [f"<section><h2>{e(title)}</h2>", block_html(block), "</section>"]
    if report.stages is not None:
        parts += ['<section id="stages"><h2>Stages</h2>', table_html(report.stages), "</section>"]
    if report.provenance:
        parts += ['<section id="provenance"><h2>Provenance</h2>', definitions_html(report.provenance), "</section>"]
    if report.config:
        parts += ['<section id="config"><h2>Configuration</h2>',
                  f'<p class="sub">{e(report.config_source)}</p>' if report.config_source else "",
                  f"<pre>{e(report.config)}</pre></section>"]
    if report.footer:
        parts.append(f"<footer>{e(report.footer)}</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
