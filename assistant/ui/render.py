"""Pure rendering for the agents' page: sources to cards, answer text with clickable [n], waiting
messages. No Gradio here, so that each function is tested without a browser.

Every string that comes from a document or from the model is HTML-escaped; only the markup
written here reaches the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote

from assistant.drafting import Citation
from assistant.textnorm import lexical_terms

FILES_ROUTE = "/fichiers"

_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORD = re.compile(r"[\w’'-]+", re.UNICODE)


def file_url(collection: str, source: str, page: int | None = None) -> str:
    """Address of the original document served by the app, opened at ``page`` for a PDF."""
    url = f"{FILES_ROUTE}/{quote(collection, safe='')}/{quote(source, safe='/')}"
    if page is not None and source.lower().endswith(".pdf"):
        url += f"#page={page}"
    return url


def highlight(passage: str, query: str) -> str:
    """The passage, escaped, with the words of the request marked (French stems compared)."""
    wanted = set(lexical_terms(query)) if query.strip() else set()
    if not wanted:
        return escape(passage)
    out: list[str] = []
    last = 0
    for match in _WORD.finditer(passage):
        word = match.group(0)
        terms = lexical_terms(word)
        if terms and all(t in wanted for t in terms):
            out.append(escape(passage[last : match.start()]))
            out.append(f"<mark>{escape(word)}</mark>")
            last = match.end()
    out.append(escape(passage[last:]))
    return "".join(out)


def _place(c: Citation) -> str:
    parts = []
    if c.page is not None:
        parts.append(f"page {c.page}")
    if c.heading:
        parts.append(escape(c.heading.replace(" > ", " › ")))
    return " · ".join(parts)


def source_card(c: Citation, *, query: str = "", cited: bool = True) -> str:
    """One source as a card: number, title, page, heading path, passage, link to the original."""
    title = escape(c.title or c.source)
    place = _place(c)
    url = escape(file_url(c.collection, c.source, c.page))
    action = (
        f"Ouvrir le document à la page {c.page}" if c.page is not None else "Ouvrir le document"
    )
    state = "cited" if cited else "unused"
    return (
        f'<article class="src-card {state}" id="source-{c.n}" tabindex="-1" '
        f'aria-labelledby="source-{c.n}-title" data-source="{c.n}">'
        f'<h3 class="src-title" id="source-{c.n}-title">'
        f'<span class="src-num">[{c.n}]</span> {title}</h3>'
        f'<p class="src-meta"><span class="src-file">{escape(c.collection)} / '
        f"{escape(c.source)}</span>{' · ' + place if place else ''}</p>"
        f'<blockquote class="src-passage">{highlight(c.text, query)}</blockquote>'
        f'<p class="src-open"><a href="{url}" target="_blank" rel="noopener">{action}'
        '<span class="sr-only"> (nouvel onglet)</span></a></p></article>'
    )


def sources_html(
    sources: Iterable[Citation], *, cited: Iterable[int] | None = None, query: str = ""
) -> str:
    """The sources panel: cited sources first as cards, the other passages read by the model in
    a collapsed section. ``cited=None`` means all sources are shown as cited (while streaming)."""
    items = sorted(sources, key=lambda c: c.n)
    if not items:
        return (
            '<div class="src-panel"><p class="src-empty">Les sources utilisées apparaîtront ici, '
            "avec la page et le passage de chaque document.</p></div>"
        )
    numbers = None if cited is None else set(cited)
    used = [c for c in items if numbers is None or c.n in numbers]
    others = [c for c in items if numbers is not None and c.n not in numbers]
    parts = ['<div class="src-panel">']
    if used:
        parts.append(
            f'<p class="src-count">{_count(len(used), "source citée", "sources citées")}</p>'
        )
        parts.extend(source_card(c, query=query) for c in used)
    else:
        parts.append(
            '<p class="src-empty">Le brouillon ne cite aucune source : vérifiez-le avec soin.</p>'
        )
    if others:
        parts.append(
            f'<details class="src-others"{"" if used else " open"}><summary>'
            f"Autres passages consultés, non cités ({len(others)})</summary>"
        )
        parts.extend(source_card(c, query=query, cited=False) for c in others)
        parts.append("</details>")
    parts.append("</div>")
    return "".join(parts)


# A verification mark written by the program ("[À VÉRIFIER : reason]"), once HTML-escaped.
_TO_CHECK = re.compile(r"\[À VÉRIFIER : [^\]]*\]")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _link(n: int, known: dict[int, Citation]) -> str:
    c = known.get(n)
    if c is None:
        return str(n)
    label = escape(f"Voir la source {n} : {c.title or c.source}", quote=True)
    return f'<a class="cite" href="#source-{n}" data-source="{n}" aria-label="{label}">{n}</a>'


def answer_html(text: str, sources: Iterable[Citation], *, streaming: bool = False) -> str:
    """The draft as HTML paragraphs; each [n] of a known source becomes a link to its card."""
    known = {c.n: c for c in sources}

    def linkify(match: re.Match[str]) -> str:
        numbers = [int(p) for p in re.split(r"[,;]", match.group(1))]
        return "[" + ", ".join(_link(n, known) for n in numbers) + "]"

    paragraphs = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        html = _CITATION.sub(linkify, escape(line))
        html = _TO_CHECK.sub(lambda m: f'<mark class="a-verifier">{m.group(0)}</mark>', html)
        paragraphs.append(f"<p>{html}</p>")
    if not paragraphs and not streaming:
        return (
            '<div class="draft-view draft-empty"><p>Le brouillon apparaîtra ici. Choisissez un '
            "type de document, décrivez votre demande puis cliquez sur « Rédiger ».</p></div>"
        )
    cursor = '<span class="cursor" aria-hidden="true">▍</span>' if streaming else ""
    busy = ' aria-busy="true"' if streaming else ""
    return f'<div class="draft-view"{busy}>{"".join(paragraphs)}{cursor}</div>'


def duration_fr(seconds: float) -> str:
    """A rough French duration: "moins d'une minute", "environ 3 min"."""
    if seconds < 50:
        return "moins d'une minute"
    return f"environ {max(1, round(seconds / 60))} min"


def queue_message(position: int, seconds_per_draft: float | None) -> str:
    """What an agent reads while the model serves others (``position`` 1 = next in line)."""
    if position <= 0:
        return "C'est votre tour : la rédaction commence."
    if position == 1:
        head = "Le modèle termine la demande d'un autre agent ; vous êtes le prochain."
    else:
        head = (
            f"Le modèle est occupé par d'autres agents : vous êtes en position {position} "
            "dans la file d'attente."
        )
    if seconds_per_draft:
        return f"{head} Début estimé dans {duration_fr(position * seconds_per_draft)}."
    return f"{head} La page se mettra à jour d'elle-même, inutile de la recharger."


def status_html(text: str, kind: str = "info", details: str = "") -> str:
    """The status line above the draft (queue, progress, errors), read by screen readers;
    ``details`` goes on a second, smaller line (see :func:`details_line`)."""
    if not text:
        return '<div class="status status-empty" role="status"></div>'
    more = f'<span class="status-details">{escape(details)}</span>' if details else ""
    return f'<div class="status status-{escape(kind)}" role="status">{escape(text)}{more}</div>'


def _number_fr(value: float, decimals: int = 0) -> str:
    """French spelling of a figure: narrow no-break space for thousands, decimal comma."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u202f").replace(".", ",")


def details_line(timings: Mapping[str, Any]) -> str:
    """What the model read and how fast, from a draft's ``timings`` (measured by llama.cpp):
    "Contexte : 812 jetons dont 640 déjà en cache · premier mot en 3,1 s · 18 jetons/s".
    Empty when the model did not run (abstention, stopped before the first word)."""
    prompt = timings.get("prompt_tokens")
    first = timings.get("first_token_s")
    if not isinstance(prompt, int) or prompt <= 0 or not isinstance(first, int | float):
        return ""
    cached = timings.get("cached_tokens")
    parts = [
        f"Contexte : {_number_fr(prompt)} jetons"
        + (f" dont {_number_fr(cached)} déjà en cache" if isinstance(cached, int) else ""),
        f"premier mot en {_number_fr(first, 1)} s",
    ]
    speed = timings.get("tokens_per_s")
    if isinstance(speed, int | float) and speed > 0:
        parts.append(f"{_number_fr(speed)} jetons/s")
    return " · ".join(parts)
