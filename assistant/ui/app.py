"""The agents' web workplace (Gradio, in French).

:func:`build_ui` receives the drafting service and returns the ``gr.Blocks``; :func:`build_app`
mounts it in a FastAPI app beside the route that serves the original documents
(``/fichiers/<collection>/<source>``); :func:`launch_ui` runs that app with uvicorn. Everything
the page loads comes from this server: system fonts, local CSS and JS, no CDN, no analytics.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import gradio as gr
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse

from assistant.auth import (
    AccessError,
    Authenticator,
    Principal,
    build_authenticator,
    readable_collections,
)
from assistant.auth import (
    read_auth_file as read_auth_file,  # re-exported: its historical home
)
from assistant.config import Settings
from assistant.drafting import Citation, Draft, DraftingService, DraftRequest
from assistant.errors import AssistantError, ConfigError
from assistant.export import citation_numbers, draft_to_docx, draft_to_odt, draft_to_text
from assistant.textnorm import fold
from assistant.ui import render

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
APP_TITLE = "Assistant de rédaction"
NO_COLLECTION = (
    "Aucune collection de documents n'est indexée : le service informatique doit lancer "
    "« assistant ingest <dossier> » avant de rédiger."
)
MULTILINE_FIELDS = ("destinataire", "expediteur", "usager", "signataire")
RATINGS = {"👍 Utile": 1, "👎 Pas utile": -1}


class TemplateFieldLike(Protocol):
    name: str
    label: str
    required: bool
    placeholder: str


class TemplateLike(Protocol):
    """What the UI needs of a document template (``assistant.prompts.Template`` fits)."""

    name: str
    label: str

    @property
    def fields(self) -> Iterable[TemplateFieldLike]: ...


Collections = list[str] | Callable[[], list[str]]


class FeedbackSink(Protocol):
    """Where thumbs up/down go (``assistant.audit.AuditLog`` fits)."""

    def record_feedback(
        self, draft_id: str, rating: int, comment: str = "", user: str = "anonyme"
    ) -> None: ...


# --- documents served to the browser ------------------------------------------------------------


class DocumentFiles:
    """Resolves ``(collection, source)`` to a file on disk, only for documents of an ingested
    collection and only inside that collection's folder (no path traversal, no symlink escape)."""

    def __init__(
        self,
        roots: Callable[[], Mapping[str, Path]],
        known: Callable[[str], Iterable[str]] | None = None,
    ) -> None:
        self._roots = roots
        self._known = known

    @classmethod
    def from_index(cls, index: Any) -> DocumentFiles:
        """From :class:`assistant.store.Index`: folders recorded at ingestion, manifest sources."""

        def roots() -> dict[str, Path]:
            return {c.name: Path(c.folder) for c in index.collections() if c.folder}

        return cls(roots, lambda name: index.documents(name).keys())

    def path(self, collection: str, source: str) -> Path | None:
        root = self._roots().get(collection)
        if root is None or not source or "\x00" in source:
            return None
        if self._known is not None and source not in set(self._known(collection)):
            return None
        base = root.resolve()
        target = (base / source).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            return None
        return target


def _gradio_user(app: FastAPI, request: Request) -> str | None:
    """The user logged in through Gradio's login page (its session cookie), if any."""
    for route in app.routes:
        sub = getattr(route, "app", None)
        tokens = getattr(sub, "tokens", None)
        cookie_id = getattr(sub, "cookie_id", None)
        if tokens is None or cookie_id is None:
            continue
        token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
            f"access-token-unsecure-{cookie_id}"
        )
        user = tokens.get(token) if token else None
        if user:
            return str(user)
    return None


class StripForeignUrls:
    """ASGI middleware for the page's HTML: removes the social-preview tags Gradio's template
    carries (og:/twitter: images hosted on GitHub, which a link preview would fetch) and the
    example URLs of its API docs, so that the page names no host but this server.

    Hand-written because Gradio offers no switch for its template's meta tags. The request's
    Accept-Encoding is dropped so that the body can be rewritten uncompressed.
    """

    _META = re.compile(rb"<meta\s+(?:property|name)=\"(?:og|twitter):[^\"]*\"[^>]*>\s*", re.S)
    _EXAMPLES = re.compile(rb"https://github\.com/gradio-app/gradio/raw/main/test/test_files/")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope["path"] != "/":
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = list(start.get("headers", []))
            is_html = any(
                k.lower() == b"content-type" and b"text/html" in v.lower() for k, v in headers
            )
            if is_html:
                body = self._EXAMPLES.sub(b"", self._META.sub(b"", body))
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


# --- authentication -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """Who a request comes from and what they may read: ``collections`` ``None`` means every
    collection; ``denied``: nobody is authenticated (nothing is readable)."""

    user: str
    collections: list[str] | None = None
    denied: bool = False

    def filter(self, names: Iterable[str]) -> list[str]:
        if self.denied:
            return []
        return [n for n in names if self.collections is None or n in self.collections]


AccessOf = Callable[..., Access]  # (request, username=None) -> Access
GroupsOf = Callable[[], dict[str, list[str]]]
DENIED_MESSAGE = (
    "Accès refusé : vous n'êtes pas identifié. Passez par l'adresse habituelle de l'assistant "
    "(portail de la mairie) ou reconnectez-vous."
)


def access_resolver(authenticator: Authenticator | None, groups: GroupsOf | None) -> AccessOf:
    """``request -> Access`` (``request``: a ``gr.Request`` or a FastAPI ``Request``; for the
    latter the Gradio login is read from its session cookie by the caller and passed as
    ``request.username``). Without an authenticator everybody is the local operator."""

    def resolve(request: Any, username: str | None = None) -> Access:
        name = username or getattr(request, "username", None)
        if authenticator is None:
            return Access(str(name) if name else "anonyme")
        client = getattr(request, "client", None)
        principal: Principal | None = authenticator.principal(
            name, getattr(request, "headers", None), getattr(client, "host", None)
        )
        if principal is None:
            return Access("anonyme", [], denied=True)
        if principal.unrestricted:
            return Access(str(name) if name else "anonyme")
        if groups is None:
            return Access(principal.name)
        readable = readable_collections(principal, _Groups(groups))
        return Access(principal.name, readable)

    return resolve


@dataclass
class _Groups:
    get: GroupsOf

    def collection_groups(self) -> dict[str, list[str]]:
        return self.get()


# --- session state ------------------------------------------------------------------------------


@dataclass
class Session:
    """One browser tab's drafting session (kept by Gradio per session)."""

    request: DraftRequest | None = None
    draft: Draft | None = None
    sources: list[Citation] = field(default_factory=list)
    history: list[Draft] = field(default_factory=list)
    stamps: list[str] = field(default_factory=list)


@dataclass
class _Durations:
    """Recent generation durations, for the queue estimate shown to waiting agents."""

    values: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, seconds: float) -> None:
        with self.lock:
            self.values = [*self.values[-9:], seconds]

    def average(self) -> float | None:
        with self.lock:
            return sum(self.values) / len(self.values) if self.values else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text))[:50].strip("-") or "brouillon"


def _with_text(draft: Draft, text: str) -> Draft:
    """The draft as the agent edited it: sources re-split between cited and not cited."""
    numbers = set(citation_numbers(text))
    sources = draft.sources
    return replace(
        draft,
        answer=text,
        citations=[c for c in sources if c.n in numbers],
        unused_sources=[c for c in sources if c.n not in numbers],
    )


def _templates(service: DraftingService) -> list[TemplateLike]:
    templates = getattr(service, "templates", None)
    if templates is None:
        raise ConfigError(
            "Le service de rédaction ne fournit pas de modèles de documents. Vérifiez le dossier "
            "prompts/ (réglage prompts_dir)."
        )
    return list(templates)


# --- the page -----------------------------------------------------------------------------------


def build_ui(
    service: DraftingService,
    settings: Settings,
    *,
    collections: Collections | None = None,
    feedback: FeedbackSink | None = None,
    access: AccessOf | None = None,
) -> gr.Blocks:
    """The agents' page. ``collections`` (a list, or a function re-read at each page load so
    that a new ingestion shows up) are offered as checkboxes (default: the settings' default
    collection); ``feedback`` receives thumbs up/down (default: ``service.audit``);
    ``access`` names the user of a request and the collections they may read (default: the
    Gradio login name, every collection)."""
    access_of: AccessOf = access or access_resolver(None, None)
    templates = _templates(service)
    by_name = {t.name: t for t in templates}
    sink: FeedbackSink | None = feedback or getattr(service, "audit", None)

    def list_collections() -> list[str]:
        if collections is None:
            return [settings.default_collection]
        return list(collections()) if callable(collections) else list(collections)

    def default_choice(names: list[str]) -> list[str]:
        return [c for c in names if c == settings.default_collection] or names[:1]

    # With access control the choices are filled per user when the page loads.
    choices = list_collections() if access is None else []
    default_type = "courrier" if "courrier" in by_name else templates[0].name
    stops: dict[str, threading.Event] = {}
    durations = _Durations()
    export_dir = Path(tempfile.mkdtemp(prefix="assistant-export-"))

    with gr.Blocks(title=APP_TITLE, analytics_enabled=False, fill_width=True) as ui:
        session = gr.State(Session())
        gr.HTML(
            '<header class="app-header"><p class="app-name">Assistant de rédaction</p>'
            '<p class="app-tagline">Brouillons de courriers, d\'actes et de notes appuyés sur les '
            "documents de la commune. Le modèle fonctionne sur le serveur de la mairie : aucune "
            "donnée ne quitte la collectivité. Chaque brouillon doit être relu par un agent."
            "</p></header>",
            elem_id="app-header",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420, elem_id="col-draft"):
                doc_type = gr.Dropdown(
                    choices=[(t.label, t.name) for t in templates],
                    value=default_type,
                    label="Type de document",
                    elem_id="doc-type",
                )
                field_boxes: list[tuple[str, str, gr.Textbox]] = []
                groups: dict[str, gr.Group] = {}
                for template in templates:
                    with gr.Group(visible=template.name == default_type) as group:
                        fields = list(template.fields)
                        # Two fields a row: the whole form and the draft fit on one screen.
                        for i in range(0, len(fields), 2):
                            with gr.Row(equal_height=True):
                                for f in fields[i : i + 2]:
                                    box = gr.Textbox(
                                        label=f.label + (" (obligatoire)" if f.required else ""),
                                        placeholder=f.placeholder,
                                        lines=2 if f.name in MULTILINE_FIELDS else 1,
                                        max_lines=4,
                                        elem_id=f"champ-{template.name}-{f.name}",
                                    )
                                    field_boxes.append((template.name, f.name, box))
                    groups[template.name] = group
                sources_choice = gr.CheckboxGroup(
                    choices=choices,
                    value=default_choice(choices),
                    label="Collections de documents consultées",
                    elem_id="collections",
                )
                request_box = gr.Textbox(
                    label="Votre demande",
                    placeholder="Ex. : répondre à Mme Martin qui demande les horaires d'ouverture "
                    "de la déchetterie et les pièces à fournir pour une carte d'accès.",
                    lines=3,
                    elem_id="demande",
                )
                letter_box = gr.Textbox(
                    label="Courrier de l'usager (facultatif)",
                    placeholder="Collez ici le courrier ou le courriel reçu : l'assistant en lit "
                    "les questions pour chercher les réponses. Décrivez votre demande ci-dessus.",
                    lines=3,
                    max_lines=12,
                    elem_id="courrier-usager",
                )
                with gr.Row():
                    draft_btn = gr.Button("Rédiger", variant="primary", elem_id="btn-rediger")
                    stop_btn = gr.Button(
                        "Arrêter la rédaction",
                        variant="stop",
                        interactive=False,
                        elem_id="btn-arreter",
                    )
                status = gr.HTML(
                    render.status_html(
                        "" if choices or access is not None else NO_COLLECTION, "error"
                    ),
                    elem_id="statut",
                )
                with gr.Tabs(elem_id="onglets-brouillon"):
                    with gr.Tab("Brouillon", id="lecture", elem_id="onglet-lecture"):
                        preview = gr.HTML(render.answer_html("", []), elem_id="brouillon")
                    with gr.Tab("Modifier le texte", id="modifier", elem_id="onglet-modifier"):
                        editor = gr.Textbox(
                            label="Texte du brouillon (modifiable)",
                            lines=18,
                            max_lines=60,
                            elem_id="editeur",
                        )
                with gr.Row():
                    followup = gr.Textbox(
                        label="Demander une modification du brouillon",
                        placeholder="Ex. : plus court ; ton plus chaleureux ; ajouter les délais.",
                        lines=1,
                        scale=4,
                        elem_id="revision",
                    )
                    revise_btn = gr.Button(
                        "Réviser", interactive=False, scale=1, elem_id="btn-reviser"
                    )
                    regen_btn = gr.Button(
                        "Régénérer", interactive=False, scale=1, elem_id="btn-regenerer"
                    )
                with gr.Row():
                    docx_btn = gr.Button("Exporter en Word (DOCX)", elem_id="btn-docx")
                    odt_btn = gr.Button("Exporter en ODT (LibreOffice)", elem_id="btn-odt")
                    copy_btn = gr.Button("Copier le texte", elem_id="btn-copier")
                export_file = gr.File(
                    label="Fichier exporté (cliquez sur le nom pour le télécharger)",
                    visible=False,
                    elem_id="fichier-export",
                )
                copy_text = gr.Textbox(visible=False)
                copy_status = gr.HTML("", elem_id="copie-statut")
                with gr.Accordion("Votre avis sur ce brouillon", open=False, elem_id="avis"):
                    rating = gr.Radio(
                        choices=list(RATINGS),
                        label="Ce brouillon vous a-t-il été utile ?",
                        elem_id="avis-note",
                    )
                    comment = gr.Textbox(
                        label="Commentaire (facultatif)", lines=2, elem_id="avis-commentaire"
                    )
                    feedback_btn = gr.Button("Envoyer mon avis", elem_id="btn-avis")
                    feedback_status = gr.HTML("", elem_id="avis-statut")
                history = gr.Dropdown(
                    choices=[],
                    value=None,
                    label="Brouillons de cette session",
                    info="Choisissez un brouillon précédent pour le retrouver.",
                    interactive=True,
                    elem_id="historique",
                )
            with gr.Column(scale=2, min_width=320, elem_id="col-sources"):
                gr.HTML('<h2 class="panel-title" id="titre-sources">Sources</h2>')
                sources_panel = gr.HTML(render.sources_html([]), elem_id="sources")

        # --- handlers -----------------------------------------------------------------------
        boxes = [box for _, _, box in field_boxes]

        def show_fields(name: str) -> list[Any]:
            return [gr.update(visible=n == name) for n in groups]

        doc_type.change(show_fields, doc_type, list(groups.values()), show_progress="hidden")

        def user_of(request: gr.Request | None) -> str:
            return access_of(request).user

        def rights(req: DraftRequest, request: gr.Request | None) -> DraftRequest:
            """The request as this user may make it (rights read again at every request)."""
            who = access_of(request)
            if who.denied:
                raise AccessError(DENIED_MESSAGE)
            return replace(req, user=who.user, allowed_collections=who.collections)

        def stop_event(request: gr.Request | None) -> threading.Event:
            key = getattr(request, "session_hash", None) or "local"
            return stops.setdefault(key, threading.Event())

        busy_outputs = [draft_btn, stop_btn, revise_btn, regen_btn, editor]

        def controls(running: bool, has_draft: bool, text: str | None = None) -> dict[Any, Any]:
            """The buttons' and the editor's states; ``text``: the editor's new value too (one
            entry per component: a second ``editor`` key beside these would replace it)."""
            editing: dict[str, Any] = {"interactive": not running}
            if text is not None:
                editing["value"] = text
            return {
                draft_btn: gr.update(interactive=not running),
                stop_btn: gr.update(interactive=running),
                revise_btn: gr.update(interactive=has_draft and not running),
                regen_btn: gr.update(interactive=has_draft and not running),
                editor: gr.update(**editing),
            }

        def history_update(state: Session) -> Any:
            return gr.update(
                choices=[(label, i) for i, label in enumerate(state.stamps)],
                value=len(state.stamps) - 1 if state.stamps else None,
            )

        def run(req: DraftRequest, state: Session, request: gr.Request | None) -> Iterator[Any]:
            stop = stop_event(request)
            stop.clear()
            state.request = req
            text = ""
            sources: list[Citation] = []
            final: Draft | None = None
            last_emit = 0.0
            started = time.monotonic()
            yield {
                status: render.status_html("Recherche des passages utiles dans les documents…"),
                preview: render.answer_html("", [], streaming=True),
                sources_panel: render.sources_html([]),
                export_file: gr.update(visible=False, value=None),
                **controls(True, False),
            }
            try:
                req = rights(req, request)
                state.request = req
                events = service.stream(req)
            except AssistantError as err:
                yield {status: render.status_html(str(err), "error"), **controls(False, False)}
                return
            try:
                for event in events:
                    if stop.is_set():
                        break
                    update: dict[Any, Any] | None = None
                    if event.kind == "status" and event.text:
                        update = {status: render.status_html(event.text)}
                    elif event.kind == "sources":
                        sources = list(event.sources)
                        state.sources = sources
                        update = {sources_panel: render.sources_html(sources, query=req.request)}
                    elif event.kind == "token":
                        text += event.text
                        if time.monotonic() - last_emit < 0.08:
                            continue
                        last_emit = time.monotonic()
                        update = {
                            preview: render.answer_html(text, sources, streaming=True),
                            editor: text,
                            status: render.status_html(
                                f"Rédaction en cours : {len(text.split())} mots écrits. "
                                "Vous pouvez arrêter à tout moment."
                            ),
                        }
                    elif event.kind == "queue":
                        update = {
                            status: render.status_html(
                                render.queue_message(event.position, durations.average()),
                                "queue",
                            )
                        }
                    elif event.kind == "done":
                        final = event.draft
                        continue
                    if update:
                        yield update
            except AssistantError as err:
                yield {status: render.status_html(str(err), "error"), **controls(False, False)}
                return
            except Exception:  # the page must say something rather than freeze
                log.exception("drafting failed")
                yield {
                    status: render.status_html(
                        "Erreur inattendue pendant la rédaction. Réessayez ; si elle se répète, "
                        "prévenez le service informatique (journal du serveur).",
                        "error",
                    ),
                    **controls(False, False),
                }
                return
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
            stopped = final is None
            if final is None:
                numbers = set(citation_numbers(text))
                final = Draft(
                    id=uuid.uuid4().hex[:12],
                    request=req,
                    answer=text,
                    abstained=False,
                    citations=[c for c in sources if c.n in numbers],
                    unused_sources=[c for c in sources if c.n not in numbers],
                    invalid_citations=[],
                    model="",
                    timings={"interrompu": True},
                )
            else:
                durations.record(time.monotonic() - started)
            state.draft = final
            state.sources = final.sources
            state.history.append(final)
            label = next((t.label for t in templates if t.name == req.doc_type), req.doc_type)
            subject = req.fields.get("objet") or req.fields.get("sujet") or req.request
            state.stamps.append(
                f"{datetime.now():%H:%M} — {label} — {subject[:60]}"
                + (" (interrompu)" if stopped else "")
            )
            yield {
                status: render.status_html(
                    _final_message(final, stopped), "done", render.details_line(final.timings)
                ),
                preview: render.answer_html(final.answer, final.sources),
                sources_panel: render.sources_html(
                    final.sources, cited=[c.n for c in final.citations], query=req.request
                ),
                session: state,
                history: history_update(state),
                # The editor (what is exported, copied, revised) gets the checked text with its
                # « À VÉRIFIER » marks, not the last streamed preview.
                **controls(False, True, text=final.answer),
            }

        def start(
            kind: str,
            colls: list[str],
            text: str,
            letter: str,
            state: Session,
            request: gr.Request,  # Gradio inserts it here; the field values follow
            *values: str,
        ) -> Iterator[Any]:
            fields = {
                name: value.strip()
                for (tname, name, _), value in zip(field_boxes, values, strict=True)
                if tname == kind and value and value.strip()
            }
            template = by_name[kind]
            missing = [f.label for f in template.fields if f.required and f.name not in fields]
            if not text.strip():
                yield {
                    status: render.status_html("Décrivez votre demande avant de rédiger.", "error")
                }
                return
            if missing:
                yield {
                    status: render.status_html(
                        "Renseignez d'abord : " + ", ".join(f"« {m} »" for m in missing) + ".",
                        "error",
                    )
                }
                return
            req = DraftRequest(
                request=text.strip(),
                doc_type=kind,
                fields=fields,
                collections=list(colls),
                user=user_of(request),
                letter=(letter or "").strip(),
            )
            yield from run(req, state, request)

        def revise(
            instruction: str, edited: str, state: Session, request: gr.Request
        ) -> Iterator[Any]:
            if state.draft is None or state.request is None:
                yield {status: render.status_html("Rédigez d'abord un brouillon.", "error")}
                return
            if not instruction.strip():
                yield {
                    status: render.status_html(
                        "Écrivez la modification souhaitée (ex. : « plus court »).", "error"
                    )
                }
                return
            previous = _with_text(state.draft, edited)
            req = replace(
                state.request, request=instruction.strip(), previous=previous, user=user_of(request)
            )
            yield from run(req, state, request)

        def regenerate(state: Session, request: gr.Request) -> Iterator[Any]:
            if state.request is None:
                yield {status: render.status_html("Rédigez d'abord un brouillon.", "error")}
                return
            yield from run(state.request, state, request)

        every = [
            status, preview, editor, sources_panel, session, history, export_file, *busy_outputs,
        ]  # fmt: skip
        common: dict[str, Any] = {
            "show_progress": "hidden",
            # One drafting + max_queue waiting for the model (its gate tells them their place);
            # as many again are let in to be told "Serveur occupé" at once instead of waiting
            # silently in Gradio's own queue.
            "concurrency_limit": 2 * (settings.max_queue + 1),
        }
        ev_draft = draft_btn.click(
            start,
            [doc_type, sources_choice, request_box, letter_box, session, *boxes],
            every,
            **common,
        )
        ev_submit = request_box.submit(
            start,
            [doc_type, sources_choice, request_box, letter_box, session, *boxes],
            every,
            **common,
        )
        ev_revise = revise_btn.click(revise, [followup, editor, session], every, **common)
        ev_followup = followup.submit(revise, [followup, editor, session], every, **common)
        ev_regen = regen_btn.click(regenerate, [session], every, **common)
        del ev_draft, ev_submit, ev_revise, ev_followup, ev_regen

        def stop(request: gr.Request) -> Any:
            stop_event(request).set()
            return render.status_html("Arrêt demandé…")

        stop_btn.click(stop, None, status, concurrency_limit=None, show_progress="hidden")

        def on_edit(text: str, state: Session) -> str:
            return render.answer_html(text, state.sources)

        editor.input(on_edit, [editor, session], preview, show_progress="hidden")

        def export(fmt: Literal["docx", "odt"]) -> Callable[[str, Session], Any]:
            def make(text: str, state: Session) -> Any:
                if state.draft is None:
                    gr.Warning("Rédigez d'abord un brouillon.")
                    return gr.update(visible=False)
                draft = _with_text(state.draft, text)
                subject = draft.request.fields.get("objet") or draft.request.request
                folder = export_dir / uuid.uuid4().hex[:8]
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{draft.request.doc_type}-{_slug(subject)}.{fmt}"
                (draft_to_docx if fmt == "docx" else draft_to_odt)(draft, path)
                return gr.update(value=str(path), visible=True)

            return make

        docx_btn.click(export("docx"), [editor, session], export_file)
        odt_btn.click(export("odt"), [editor, session], export_file)

        def plain_text(text: str, state: Session) -> str:
            if state.draft is None:
                return text
            return draft_to_text(_with_text(state.draft, text))

        copy_btn.click(plain_text, [editor, session], copy_text, show_progress="hidden").then(
            None, copy_text, copy_status, js="(text) => window.assistantCopy(text)"
        )

        def send_feedback(
            choice: str | None, note: str, state: Session, request: gr.Request
        ) -> str:
            if state.draft is None:
                return render.status_html("Aucun brouillon à évaluer pour l'instant.", "error")
            if choice not in RATINGS:
                return render.status_html("Choisissez « Utile » ou « Pas utile ».", "error")
            if sink is None:
                return render.status_html(
                    "Le journal des avis n'est pas configuré sur ce serveur.", "error"
                )
            try:
                sink.record_feedback(state.draft.id, RATINGS[choice], note or "", user_of(request))
            except AssistantError as err:
                return render.status_html(str(err), "error")
            return render.status_html("Merci, votre avis est enregistré.", "done")

        feedback_btn.click(
            send_feedback, [rating, comment, session], feedback_status, show_progress="hidden"
        )

        def restore(index: int | None, state: Session) -> Any:
            if index is None or not 0 <= int(index) < len(state.history):
                return {}
            draft = state.history[int(index)]
            state.draft, state.request, state.sources = draft, draft.request, draft.sources
            return {
                preview: render.answer_html(draft.answer, draft.sources),
                editor: draft.answer,
                sources_panel: render.sources_html(
                    draft.sources, cited=[c.n for c in draft.citations], query=draft.request.request
                ),
                status: render.status_html(f"Brouillon rétabli : {state.stamps[int(index)]}."),
                session: state,
            }

        history.input(
            restore, [history, session], [preview, editor, sources_panel, status, session]
        )

        def refresh_collections(request: gr.Request) -> dict[Any, Any]:
            who = access_of(request)
            names = who.filter(list_collections())
            update: dict[Any, Any] = {
                sources_choice: gr.update(choices=names, value=default_choice(names))
            }
            if not names:
                update[status] = render.status_html(
                    DENIED_MESSAGE if who.denied else NO_COLLECTION, "error"
                )
            return update

        if callable(collections) or access is not None:
            ui.load(refresh_collections, None, [sources_choice, status], show_progress="hidden")
    return ui


def _final_message(draft: Draft, stopped: bool) -> str:
    if stopped:
        return "Rédaction arrêtée : le texte partiel reste modifiable et exportable."
    if draft.abstained:
        return (
            "Les documents consultés ne suffisent pas pour répondre avec certitude. Précisez la "
            "demande, choisissez d'autres collections, ou ajoutez les documents utiles."
        )
    cited = len(draft.citations)
    parts = [
        "Brouillon prêt"
        + (
            f", {cited} source{'s' if cited > 1 else ''} citée{'s' if cited > 1 else ''}"
            if cited
            else ", sans source citée : vérifiez-le avec soin"
        )
        + ". Relisez-le avant tout envoi."
    ]
    if draft.checks:
        n = len(draft.checks)
        parts.append(
            f"{n} point{'s' if n > 1 else ''} à vérifier, surligné{'s' if n > 1 else ''} dans "
            "le texte (chiffre absent de sa source, coordonnée retirée, recopie)."
        )
    if draft.invalid_citations:
        numbers = ", ".join(f"[{n}]" for n in draft.invalid_citations)
        parts.append(f"Renvois sans source retirés du texte : {numbers}.")
    return " ".join(parts)


# --- look and feel ------------------------------------------------------------------------------


def theme() -> gr.themes.Base:
    """Sober State-like look: blue #000091, white, greys; system fonts only (nothing fetched)."""
    blue = gr.themes.Color(
        c50="#f5f5fe", c100="#ececfe", c200="#e3e3fd", c300="#cacafb", c400="#8585f6",
        c500="#000091", c600="#000091", c700="#00006d", c800="#000057", c900="#00004a",
        c950="#000035", name="bleu",
    )  # fmt: skip
    grey = gr.themes.Color(
        c50="#f6f6f6", c100="#eeeeee", c200="#dddddd", c300="#cecece", c400="#929292",
        c500="#666666", c600="#3a3a3a", c700="#2a2a2a", c800="#1e1e1e", c900="#161616",
        c950="#0e0e0e", name="gris",
    )  # fmt: skip
    return gr.themes.Base(
        primary_hue=blue,
        secondary_hue=blue,
        neutral_hue=grey,
        radius_size=gr.themes.sizes.radius_sm,
        font=[gr.themes.Font("system-ui"), gr.themes.Font("Segoe UI"), "Arial", "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), "Consolas", "monospace"],
    ).set(
        body_text_color="#161616",
        body_text_color_subdued="#3a3a3a",
        block_label_text_color="#161616",
        block_title_text_color="#161616",
        button_primary_background_fill="#000091",
        button_primary_background_fill_hover="#1212ff",
        button_primary_text_color="#ffffff",
        button_secondary_background_fill="#ffffff",
        button_secondary_background_fill_hover="#f6f6f6",
        button_secondary_text_color="#000091",
        button_secondary_border_color="#000091",
        button_border_width="1px",
        button_cancel_background_fill="#ffffff",
        button_cancel_text_color="#ce0500",
        button_cancel_border_color="#ce0500",
        input_placeholder_color="#666666",
        link_text_color="#000091",
        checkbox_background_color_selected="#000091",
    )


def page_assets() -> dict[str, Any]:
    """Theme, CSS and head script for :func:`gr.mount_gradio_app` / ``launch`` (Gradio 6 takes
    them there, not in ``gr.Blocks``). The script is inlined: no extra request, no CDN."""
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    return {
        "theme": theme(),
        "css_paths": [STATIC_DIR / "app.css"],
        "head": f"<script>{script}</script>",
    }


# --- serving ------------------------------------------------------------------------------------


def build_app(
    service: DraftingService,
    settings: Settings,
    *,
    files: DocumentFiles,
    collections: Collections | None = None,
    feedback: FeedbackSink | None = None,
    auth: list[tuple[str, str]] | None = None,
    authenticator: Authenticator | None = None,
    groups: GroupsOf | None = None,
) -> FastAPI:
    """FastAPI app: ``/fichiers/<collection>/<source>`` plus the Gradio page mounted at ``/``.

    ``authenticator`` (or ``auth``, legacy ``user:password`` pairs) decides who may come in;
    ``groups`` (``Index.collection_groups``) what each user may read: the same rights apply to
    the page's collections, its retrieval and the original documents."""
    app = FastAPI(title=APP_TITLE, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(StripForeignUrls)
    if authenticator is None and auth:
        authenticator = Authenticator(None, auth)
    access = access_resolver(authenticator, groups) if authenticator is not None else None

    @app.get("/fichiers/{collection}/{source:path}", include_in_schema=False)
    def original_document(collection: str, source: str, request: Request) -> FileResponse:
        if access is not None:
            who = access(request, _gradio_user(app, request))
            if who.denied:
                raise HTTPException(
                    status_code=401, detail="Connectez-vous d'abord à l'assistant."
                )
            if not who.filter([collection]):  # forbidden looks like absent: nothing to learn
                raise HTTPException(
                    status_code=404,
                    detail="Document introuvable dans les collections qui vous sont ouvertes.",
                )
        path = files.path(collection, source)
        if path is None:
            raise HTTPException(
                status_code=404,
                detail="Document introuvable dans les collections indexées. "
                "Il a peut-être été déplacé : relancez l'ingestion de sa collection.",
            )
        return FileResponse(path, content_disposition_type="inline", filename=path.name)

    ui = build_ui(service, settings, collections=collections, feedback=feedback, access=access)
    ui.queue(default_concurrency_limit=1, max_size=None)
    login = (
        authenticator.check
        if authenticator is not None
        and authenticator.login_required
        and not authenticator.proxy_header
        else None
    )
    return gr.mount_gradio_app(
        app,
        ui,
        path="/",
        auth=login,
        max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        auth_message="Identifiez-vous avec le compte fourni par le service informatique.",
        footer_links=[],
        ssr_mode=False,
        show_error=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        server_name=settings.host,
        server_port=settings.port,
        **page_assets(),
    )


def check_exposure(settings: Settings) -> Authenticator | None:
    """Authentication for the configured host: accounts (``assistant users add``), the legacy
    ``auth_file`` or the reverse proxy's header. None needed on loopback (``None`` returned when
    nothing is configured); beyond it, refused without one (the reason says how to fix it)."""
    from assistant.offline import is_loopback

    authenticator = build_authenticator(settings)
    if not authenticator.enabled:
        if not is_loopback(settings.host):
            raise ConfigError(
                f"Écoute sur {settings.host} refusée sans authentification : l'interface serait "
                "ouverte à tout le réseau. Créez les comptes des agents (« assistant users add "
                "NOM --groups SERVICE »), ou indiquez un fichier de lignes "
                "« utilisateur:mot_de_passe » dans auth_file (ASSISTANT_AUTH_FILE), ou restez "
                "sur 127.0.0.1."
            )
        return None
    return authenticator


def launch_ui(
    service: DraftingService,
    settings: Settings,
    *,
    files: DocumentFiles,
    collections: Collections | None = None,
    feedback: FeedbackSink | None = None,
    groups: GroupsOf | None = None,
) -> None:
    """Serve the page until interrupted (uvicorn, host and port from the settings)."""
    import uvicorn

    authenticator = check_exposure(settings)
    app = build_app(
        service,
        settings,
        files=files,
        collections=collections,
        feedback=feedback,
        authenticator=authenticator,
        groups=groups,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
