"""Document templates (``prompts/*.toml``) and the rendering of chat messages from them.

A town edits the templates without touching code: each ``<type>.toml`` declares its label,
fields, token budget and the French instructions; ``_commun.toml`` holds the preamble shared by
every type, the AI mention and the abstention text.

Message layout (designed for llama.cpp's prefix cache):

- ``system`` = common preamble + the type's instructions + its skeleton. It depends only on the
  template, so it is byte-identical between requests of one type, and every type starts with the
  same preamble (switching types keeps that part cached).
- ``user`` = the numbered sources (delimited and escaped: data, never instructions), the agent's
  fields, the request, then a short fixed reminder. Only this part changes between requests.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assistant.errors import TemplateError
from assistant.hostile import strip_instructions
from assistant.structure import MAX_PARAGRAPHS

COMMON_FILE = "_commun.toml"

_COMMON_KEYS = (
    "preambule",
    "mention_ia",
    "phrase_abstention",
    "abstention",
    "entete_sources",
    "rappel",
    "revision",
    "sans_sources",
    "mention_sans_sources",
)
_TEMPLATE_TEXT_KEYS = ("name", "label", "description", "system", "instructions")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class TemplateField:
    """A value the agent gives (``destinataire``, ``objet``...); the UI asks for it."""

    name: str
    label: str
    required: bool = False
    placeholder: str = ""
    default: str = ""  # used in the header/footer when the agent leaves the field empty
    # A salutation field ("appel") left empty is written from this field (the recipient) when
    # it names one: "Monsieur le Président de …" -> "Monsieur le Président,"; see salutation_of.
    salutation_from: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "required": self.required,
            "placeholder": self.placeholder,
        }


@dataclass(frozen=True)
class Template:
    """One document type. ``budget_tokens`` = 0 means "use settings.context_budget"."""

    name: str
    label: str
    description: str
    fields: tuple[TemplateField, ...]
    budget_tokens: int
    max_tokens: int
    system: str
    instructions: str
    skeleton: str
    path: Path | None = None
    header: str = ""  # written by the program from the fields, before the model's text
    footer: str = ""  # written by the program from the fields, after the model's text
    consigne: str = ""  # short fixed order placed after the request (what to write, narrowly)
    # "prose" (a letter: lists the model writes become prose), "acte" (visas, considérants,
    # articles: normalised), or "" (no post-processing of the form).
    form: str = ""
    # The line(s) between the considérants and the articles of an act, written by the program
    # ("Après en avoir délibéré,\n\nDÉCIDE :", "ARRÊTE :"); empty: "DÉCIDE :".
    decision: str = ""
    # Whether the type rests on a legal text (an act's visas, a note's applicable rule): its
    # evidence then always holds the best passage of the legal texts (doc type "loi") that is
    # relevant itself (see DraftingService._with_legal_basis). TOML key: ``base_legale``.
    legal_basis: bool = False
    # The fewest paragraphs the model's prose part may have (the schema's ``minItems``). TOML
    # key: ``paragraphes_min`` (1 to :data:`assistant.structure.MAX_PARAGRAPHS`).
    min_paragraphs: int = 1
    # How each article of an act may open, one of these as written (the grammar enforces it:
    # :func:`assistant.structure.opening_pattern`); empty: any text. TOML key:
    # ``articles_ouvertures`` (a list of strings, for ``forme = "acte"``).
    article_openings: tuple[str, ...] = ()
    # The header's line that acknowledges the addressee's request (« J'ai bien reçu votre
    # demande… »): dropped from a letter the agent writes at the town's initiative (to notify a
    # decision, to inform, to ask a notary for a deed: :func:`answers_request`). TOML key:
    # ``accuse_reception`` (a line of ``header``, as written).
    acknowledgement: str = ""
    # The ``consigne`` of such a letter instead of the reply's (« … les deux paragraphes du
    # courrier », not « … de la réponse »). TOML key: ``consigne_initiative``.
    initiative_consigne: str = ""

    def for_request(self, request: str, letter: str = "", references: str = "") -> Template:
        """This template as the request needs it: itself for a reply (or a template without
        :attr:`acknowledgement`), else without the acknowledgement line and with
        :attr:`initiative_consigne` (:func:`answers_request` decides)."""
        if not self.acknowledgement or answers_request(request, letter, references):
            return self
        lines = [ln for ln in self.header.splitlines() if ln.strip() != self.acknowledgement]
        header = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
        return replace(self, header=header, consigne=self.initiative_consigne or self.consigne)

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def check_fields(self, values: Mapping[str, str]) -> list[TemplateField]:
        """Raise on a field the template does not declare; return required fields left empty."""
        known = self.field_names()
        for name in values:
            if name not in known:
                choices = ", ".join(known) if known else "aucun champ pour ce type"
                raise TemplateError(
                    f"Champ inconnu « {name} » pour le type « {self.name} ». "
                    f"Champs possibles : {choices}. Corrigez le nom du champ (--field nom=valeur)."
                )
        return [f for f in self.fields if f.required and not values.get(f.name, "").strip()]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "fields": [f.as_json() for f in self.fields],
            "budget_tokens": self.budget_tokens,
            "max_tokens": self.max_tokens,
        }


@dataclass(frozen=True)
class CommonText:
    """Texts shared by all types (``_commun.toml``)."""

    preambule: str
    mention_ia: str
    phrase_abstention: str
    abstention: str
    entete_sources: str
    rappel: str
    revision: str
    sans_sources: str
    mention_sans_sources: str


class Templates:
    """The loaded templates, by name, plus the common texts."""

    def __init__(self, templates: Mapping[str, Template], common: CommonText) -> None:
        self._templates = dict(templates)
        self.common = common

    def names(self) -> list[str]:
        return list(self._templates)

    def __contains__(self, name: object) -> bool:
        return name in self._templates

    def __iter__(self) -> Iterator[Template]:
        return iter(self._templates.values())

    def get(self, name: str) -> Template:
        try:
            return self._templates[name]
        except KeyError:
            raise TemplateError(
                f"Type de document inconnu : « {name} ». Types disponibles : "
                f"{', '.join(self._templates)}. Choisissez l'un d'eux (--type) ou ajoutez un "
                "fichier <type>.toml dans le dossier des modèles (prompts/)."
            ) from None


# --- loading ------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise TemplateError(
            f"Le modèle {path} n'est pas un fichier TOML valide ({err}). Corrigez la syntaxe "
            "(guillemets, triple guillemets des textes sur plusieurs lignes) ; "
            "voir prompts/README.md."
        ) from err
    except OSError as err:
        raise TemplateError(
            f"Impossible de lire {path} ({err}). Vérifiez les droits du fichier."
        ) from err


def _text(data: Mapping[str, Any], key: str, path: Path) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TemplateError(
            f"Dans {path}, la clé « {key} » manque ou est vide. "
            "Ajoutez-la (voir prompts/README.md)."
        )
    return value.strip()


def _int(data: Mapping[str, Any], key: str, path: Path, minimum: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise TemplateError(
            f"Dans {path}, « {key} » doit être un nombre entier supérieur ou égal à {minimum} "
            f"(trouvé : {value!r}). Corrigez la valeur."
        )
    return value


def _fields(data: Mapping[str, Any], path: Path) -> tuple[TemplateField, ...]:
    raw = data.get("fields", [])
    if not isinstance(raw, list):
        raise TemplateError(
            f"Dans {path}, « fields » doit être une liste de [[fields]]. Corrigez-la."
        )
    out: list[TemplateField] = []
    for item in raw:
        if not isinstance(item, dict):
            raise TemplateError(
                f"Dans {path}, chaque champ doit être un bloc [[fields]]. Corrigez-le."
            )
        name = _text(item, "name", path)
        if not _NAME.match(name):
            raise TemplateError(
                f"Dans {path}, le nom de champ « {name} » doit être en minuscules sans accent "
                "ni espace (lettres, chiffres, _). Corrigez-le."
            )
        if name in {f.name for f in out}:
            raise TemplateError(
                f"Dans {path}, le champ « {name} » est déclaré deux fois. Supprimez le doublon."
            )
        out.append(
            TemplateField(
                name=name,
                label=_text(item, "label", path),
                required=bool(item.get("required", False)),
                placeholder=str(item.get("placeholder", "")),
                default=str(item.get("default", "")).strip(),
                salutation_from=str(item.get("appel_depuis", "")).strip(),
            )
        )
    for spec in out:
        if spec.salutation_from and spec.salutation_from not in {f.name for f in out}:
            raise TemplateError(
                f"Dans {path}, le champ « {spec.name} » a appel_depuis = "
                f"« {spec.salutation_from} », qui n'est pas un champ déclaré. Corrigez le nom."
            )
    return tuple(out)


def _frame(
    data: Mapping[str, Any], path: Path, fields: tuple[TemplateField, ...], key: str = "header"
) -> str:
    """The optional ``header`` / ``footer``: text with ``{field}`` placeholders, checked
    against the fields."""
    value = data.get(key, "")
    if not isinstance(value, str):
        raise TemplateError(f"Dans {path}, « {key} » doit être un texte. Corrigez-le.")
    known = {f.name for f in fields}
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as err:
        raise TemplateError(
            f"Dans {path}, « {key} » contient une accolade mal fermée ({err}). Écrivez "
            "{nom_du_champ} pour insérer un champ."
        ) from err
    unknown = names - known
    if unknown:
        raise TemplateError(
            f"Dans {path}, « {key} » utilise {', '.join(sorted(unknown))}, qui n'est pas un "
            f"champ déclaré ({', '.join(sorted(known)) or 'aucun'}). Corrigez le nom ou "
            "déclarez le champ dans [[fields]]."
        )
    return value.strip()


_FORMS = ("", "prose", "acte")


def _form(data: Mapping[str, Any], path: Path) -> str:
    value = data.get("forme", "")
    if value not in _FORMS:
        raise TemplateError(
            f'Dans {path}, forme = {value!r} n\'est pas reconnue. Écrivez forme = "prose" '
            '(courrier), forme = "acte" (délibération, arrêté) ou supprimez la ligne.'
        )
    return str(value)


def _bool(data: Mapping[str, Any], key: str, path: Path) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise TemplateError(
            f"Dans {path}, « {key} » doit valoir true ou false (trouvé : {value!r}). "
            "Corrigez la valeur ou supprimez la ligne."
        )
    return value


# What says that a letter answers its addressee: the agent's own words (« Répondre à… », « en
# réponse à »), what the addressee asked (« qui demande », « qui souhaite », « qui voulait »,
# « qui nous a écrit »), a letter of theirs referred to (« suite à sa demande », « Votre courrier
# du 3 mars » in the références). « Informer l'association… », « Notifier à… la décision »,
# « Écrire à l'étude notariale… pour lancer l'acte » are written at the town's initiative; a
# letter that thanked them for a request never made was seen in four held-out courriers
# (L02, L03, M01, M02). Hand-written: the openings of French administrative correspondence.
_ANSWERS = re.compile(
    r"\br[ée]pon(?:dre|ds|dez|se|ses)\b"
    r"|\bqui\s+(?:nous\s+|m['’]\s*|vous\s+)?(?:a\s+|ont\s+|avait\s+|avaient\s+)?"
    r"(?:demand|souhait|sollicit|voudr|veu|voul|interrog|s['’]\s*interrog|[ée]cri|adress)\w*"
    r"|\b(?:suite|en\s+retour)\s+(?:à|de)\s+(?:sa|son|ses|leur|leurs|votre|vos)\s+"
    r"(?:demande|courrier|lettre|message|courriel|mail|question|réclamation|plainte)",
    re.IGNORECASE,
)
_THEIR_LETTER = re.compile(r"^\s*(?:votre|vos|v/)\s*\w", re.IGNORECASE)


def answers_request(request: str, letter: str = "", references: str = "") -> bool:
    """Whether a letter answers its addressee (a request, a letter of theirs) rather than
    being written at the town's initiative: a pasted letter, a reference to theirs (« Votre
    courrier du… »), or the request's words (:data:`_ANSWERS`)."""
    return bool(letter.strip() or _THEIR_LETTER.match(references or "") or _ANSWERS.search(request))


def load_template(path: Path) -> Template:
    data = _read_toml(path)
    texts = {key: _text(data, key, path) for key in _TEMPLATE_TEXT_KEYS}
    if texts["name"] != path.stem:
        raise TemplateError(
            f"Dans {path}, name = « {texts['name']} » doit être le nom du fichier « {path.stem} ». "
            "Renommez le fichier ou corrigez « name »."
        )
    fields = _fields(data, path)
    return Template(
        name=texts["name"],
        label=texts["label"],
        description=texts["description"],
        fields=fields,
        budget_tokens=_int(data, "budget_tokens", path, 0),
        max_tokens=_int(data, "max_tokens", path, 16),
        system=texts["system"],
        instructions=texts["instructions"],
        skeleton=str(data.get("skeleton", "")).strip(),
        path=path,
        header=_frame(data, path, fields, "header"),
        footer=_frame(data, path, fields, "footer"),
        consigne=str(data.get("consigne", "")).strip(),
        form=_form(data, path),
        decision=str(data.get("decision", "")).strip(),
        legal_basis=_bool(data, "base_legale", path),
        min_paragraphs=_min_paragraphs(data, path),
        article_openings=_article_openings(data, path),
        acknowledgement=_acknowledgement(data, path),
        initiative_consigne=str(data.get("consigne_initiative", "")).strip(),
    )


def _acknowledgement(data: Mapping[str, Any], path: Path) -> str:
    value = data.get("accuse_reception", "")
    if not isinstance(value, str):
        raise TemplateError(f"Dans {path}, « accuse_reception » doit être un texte. Corrigez-le.")
    value = value.strip()
    header = str(data.get("header", ""))
    if value and value not in {ln.strip() for ln in header.splitlines()}:
        raise TemplateError(
            f"Dans {path}, « accuse_reception » doit reprendre telle quelle une ligne de "
            f"« header » (trouvé : « {value} »). Copiez la ligne de l'en-tête ou supprimez la clé."
        )
    return value


def _article_openings(data: Mapping[str, Any], path: Path) -> tuple[str, ...]:
    value = data.get("articles_ouvertures", [])
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and v.strip() for v in value)
        or (value and data.get("forme") != "acte")
    ):
        raise TemplateError(
            f"Dans {path}, « articles_ouvertures » doit être une liste de débuts d'article non "
            f'vides (par exemple ["Le Conseil municipal approuve "]), pour un modèle dont '
            f'forme = "acte" (trouvé : {value!r}). Corrigez la valeur ou supprimez la ligne.'
        )
    return tuple(value)


def _min_paragraphs(data: Mapping[str, Any], path: Path) -> int:
    if "paragraphes_min" not in data:
        return 1
    value = _int(data, "paragraphes_min", path, 1)
    if value > MAX_PARAGRAPHS:
        raise TemplateError(
            f"Dans {path}, « paragraphes_min » vaut {value} : au plus {MAX_PARAGRAPHS}. "
            "Corrigez la valeur."
        )
    return value


def load_common(path: Path) -> CommonText:
    if not path.is_file():
        raise TemplateError(
            f"Fichier commun des modèles introuvable : {path}. Restaurez-le depuis la "
            "distribution (prompts/_commun.toml) ou corrigez le réglage prompts_dir."
        )
    data = _read_toml(path)
    return CommonText(**{key: _text(data, key, path) for key in _COMMON_KEYS})


def load_templates(directory: Path) -> Templates:
    """Load ``directory/*.toml`` (files starting with ``_`` are not types)."""
    if not directory.is_dir():
        raise TemplateError(
            f"Dossier des modèles introuvable : {directory}. Corrigez le réglage prompts_dir "
            "(ASSISTANT_PROMPTS_DIR) ou lancez l'assistant depuis le dossier du projet."
        )
    templates = {
        t.name: t
        for t in (
            load_template(p) for p in sorted(directory.glob("*.toml")) if not p.name.startswith("_")
        )
    }
    if not templates:
        raise TemplateError(
            f"Aucun modèle de document (*.toml) dans {directory}. "
            "Ajoutez-en (voir prompts/README.md)."
        )
    return Templates(templates, load_common(directory / COMMON_FILE))


# --- documents are data: escaping and neutralising ------------------------------------------------

# Chat-template control sequences of common model families. Documents are tokenised with special
# tokens enabled by llama.cpp's chat path, so a document holding "<|im_end|>" could otherwise end
# the user turn and open a fake system turn.
_CONTROL = re.compile(
    r"<\|[^|<>\n]{0,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>|</?(?:system|assistant|user)>",
    re.IGNORECASE,
)
# Instruction-looking sentences addressed to an AI. Hand-written: no library in the stack
# detects prompt injection. Kept specific, so that ordinary administrative prose is untouched.
_A = "[aàâ]"
_E = "[eéèê]"
_INJECTION_TRIGGERS = [
    rf"\b(?:ignor{_E}[rsz]?|oubli{_E}[rsz]?|disregard|forget)\b[^.!?\n]{{0,60}}\b(?:instructions?|consignes?|r{_E}gles|prompt)\b",
    r"\b(?:nouvelles?|new)\s+(?:instructions?|consignes?)\b",
    rf"\btu\s+(?:es|{_E}tais)\s+(?:maintenant|d{_E}sormais)\b",
    r"\byou\s+are\s+now\b",
    rf"\b(?:prompt\s+syst{_E}me|system\s+prompt)\b",
    rf"\b(?:en\s+tant\s+qu['’]|tu\s+es\s+une?\s+)(?:IA|intelligence\s+artificielle|assistant|mod{_E}le)\b[^.!?\n]{{0,60}}\b(?:dois|vas|{_E}cris|r{_E}ponds)\b",
    rf"\b(?:assistant|IA|mod{_E}le\s+de\s+langue|chatbot)\s*[,:]\s*(?:{_E}cris|r{_E}ponds|ajoute|affiche|dis|write|say|print)\b",
    r"^\s*(?:system|assistant|syst[eè]me)\s*:",
]
_INJECTION = re.compile(
    "|".join(f"(?:{p})" for p in _INJECTION_TRIGGERS), re.IGNORECASE | re.MULTILINE
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
NEUTRALISED = "[passage retiré : il ressemblait à une consigne adressée à l'assistant]"


def escape_data(text: str) -> str:
    """Make document text inert inside the prompt: it cannot close its source block, open a new
    one, or inject chat-template control tokens."""
    text = _CONTROL.sub(
        lambda m: (
            m.group(0).replace("<", "‹").replace(">", "›").replace("[", "(").replace("]", ")")
        ),
        text,
    )
    # Our own delimiters are "<<" ... ">>": a document may not produce them.
    text = re.sub(r"<{2,}", lambda m: "‹" * len(m.group(0)), text)
    return re.sub(r">{2,}", lambda m: "›" * len(m.group(0)), text)


def neutralise_instructions(text: str) -> tuple[str, int]:
    """Replace each sentence that looks like an instruction to an AI by a marker (the trigger
    list below, then :func:`assistant.hostile.strip_instructions`).

    Returns the new text and how many sentences were removed. Such sentences carry no
    administrative information; removing them spares small models the temptation to obey.
    """
    count = 0
    while True:
        match = _INJECTION.search(text)
        if match is None:
            # Then the signal-based detector (assistant.hostile): it catches phrasings that no
            # list of triggers foresaw, sentence by sentence and row by row.
            text, more = strip_instructions(text, NEUTRALISED)
            return text, count + more
        start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, match.start())), default=0)
        end_match = _SENTENCE_END.search(text, match.end())
        end = end_match.end() if end_match else len(text)
        lead = " " if start > 0 and not text[start - 1].isspace() else ""
        text = text[:start] + lead + NEUTRALISED + text[end:]
        count += 1


# --- rendering ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceBlock:
    """A numbered source as shown to the model."""

    n: int
    source: str
    page: int | None
    title: str
    text: str


def source_header(block: SourceBlock) -> str:
    """ "<<SOURCE 2 — Code général des collectivités territoriales — …, page 3>>": the text's
    name when it has one (the file's path then says nothing more to the model and costs some
    twenty tokens a source), else its path."""
    title = " ".join(block.title.split())
    where = escape_data(title) if title else escape_data(block.source)
    if block.page is not None:
        where += f", page {block.page}"
    return f"<<SOURCE {block.n} — {where}>>"


def render_source(block: SourceBlock) -> str:
    """One delimited source; its text must already be escaped (see :func:`escape_data`)."""
    return f"{source_header(block)}\n{block.text.strip()}\n<<FIN SOURCE {block.n}>>"


def render_system(template: Template, common: CommonText) -> str:
    """The fixed part: byte-identical for every request of ``template``."""
    text = (
        f"{common.preambule}\n\n{template.system}\n\nConsignes de forme :\n{template.instructions}"
    )
    if template.skeleton:
        text += (
            "\n\nStructure à suivre (remplace chaque parenthèse par le contenu tiré des sources "
            f"et des informations de l'agent) :\n{template.skeleton}"
        )
    return text


def render_header(template: Template, values: Mapping[str, str]) -> str:
    """The template's header with the agent's fields; a missing one takes the field's default,
    else is left to complete."""
    return _render_frame(template.header, template, values)


def render_footer(template: Template, values: Mapping[str, str]) -> str:
    """The template's footer (politeness formula, vote, signature), filled like the header."""
    return _render_frame(template.footer, template, values)


# "Monsieur le Président de l'association…", "Madame la Maire de…", "M. le Directeur général des
# services": civility, article, title words up to the first complement. Hand-written: these are
# the fixed forms of French administrative correspondence (the salutation repeats the title,
# never the name, and "M." is written in full).
_CIVILITY = {
    "monsieur": "Monsieur",
    "m.": "Monsieur",
    "mr": "Monsieur",
    "mr.": "Monsieur",
    "madame": "Madame",
    "mme": "Madame",
    "mme.": "Madame",
    "maître": "Maître",
    "maitre": "Maître",
    "me": "Maître",
    "docteur": "Docteur",
}
_TITLE_END = re.compile(
    r"\s+(?:de|du|des|d['’]|à|au|aux|chez|pour)\b|\s*[,;(\n]|\s+[-–—]\s", re.IGNORECASE
)


def salutation_of(recipient: str) -> str:
    """The salutation ("formule d'appel") a letter to ``recipient`` opens with, or "" when the
    recipient does not say who they are (then the template's default, "Madame, Monsieur,").

    "Monsieur le Président de l'association X" -> "Monsieur le Président,";
    "Madame la Présidente du comité" -> "Madame la Présidente,"; "Madame Lefèvre" -> "Madame,";
    "M. Paul Bernard, 3 rue…" -> "Monsieur,"; "Madame et Monsieur Durand" -> "Madame, Monsieur,";
    "Maître Dupont" -> "Maître,"; "Association Les Amis" -> "" (no civility)."""
    text = " ".join(recipient.split())
    words = text.split(" ")
    if not words or not words[0]:
        return ""
    first = _CIVILITY.get(words[0].lower().rstrip(","))
    if first is None:
        return ""
    rest = text[len(words[0]) :].strip().lstrip(",").strip()
    # A couple or both civilities: "Madame et Monsieur Durand", "M. et Mme Durand".
    second = re.match(r"(?:et|ou)\s+(\S+)", rest, re.IGNORECASE)
    if second and _CIVILITY.get(second.group(1).lower().rstrip(",")):
        other = _CIVILITY[second.group(1).lower().rstrip(",")]
        if {first, other} == {"Madame", "Monsieur"}:
            return "Madame, Monsieur,"
        return f"{first}, {other},"
    title = re.match(r"(le|la)\s+(\S.*)|(l['’])\s*(\S.*)", rest, re.IGNORECASE)
    if title and first in {"Monsieur", "Madame"}:
        article = (title.group(1) or title.group(3)).lower()
        body = _TITLE_END.split(title.group(2) or title.group(4), maxsplit=1)[0].strip()
        # At most three title words ("Directeur général adjoint"), none a name-like digit.
        body_words = body.split()[:3]
        if body_words and not any(ch.isdigit() for ch in body):
            joined = " ".join(body_words)
            head = f"{article} " if article in {"le", "la"} else "l'"
            return f"{first} {head}{joined[0].upper()}{joined[1:]},"
    return f"{first},"


def _render_frame(text: str, template: Template, values: Mapping[str, str]) -> str:
    if not text:
        return ""
    specs = {f.name: f for f in template.fields}
    given: dict[str, str] = {}
    for name, spec in specs.items():
        value = (values.get(name) or "").strip()
        if not value and spec.salutation_from:
            value = salutation_of(values.get(spec.salutation_from) or "")
        given[name] = value or spec.default
    filled = {name: given[name] or f"[À COMPLÉTER : {specs[name].label.lower()}]" for name in specs}
    lines = []
    for line in text.splitlines():
        optional = line.startswith("?")
        line = line.removeprefix("?")
        names = {n for _, n, _, _ in string.Formatter().parse(line) if n}
        if optional and not any(given[n] for n in names):
            continue  # "?Réf. : {references}" disappears when no reference is given
        lines.append(line.format(**filled))
    return "\n".join(lines)


def render_fields(template: Template, values: Mapping[str, str]) -> str:
    lines = []
    for spec in template.fields:
        value = values.get(spec.name, "").strip()
        if value:
            lines.append(f"- {spec.label} : {escape_data(value)}")
        elif spec.required:
            lines.append(f"- {spec.label} : [À COMPLÉTER]")
    if not lines:
        return ""
    return "INFORMATIONS DONNÉES PAR L'AGENT :\n" + "\n".join(lines)


def render_user(
    template: Template,
    common: CommonText,
    sources: list[SourceBlock],
    request: str,
    values: Mapping[str, str],
    current_draft: str | None = None,
    letter_questions: Sequence[str] = (),
) -> str:
    """The variable part: sources (data), the reminder, the agent's fields, and the request
    last (small models follow best what comes last; a trailing reminder gets copied). The
    header is not shown: the instructions say it is written, and small models copy it. The
    template's optional ``consigne`` (fixed text) closes the message: one narrow order saying
    what to write now, e.g. "the body of the letter only, starting with ..."."""
    parts: list[str] = [common.entete_sources]
    parts.extend(render_source(s) for s in sources)
    parts.append(common.rappel)
    fields = render_fields(template, values)
    if fields:
        parts.append(fields)
    if letter_questions:  # the resident's questions, not the whole letter
        asked = "\n".join(f"- {escape_data(q)}" for q in letter_questions)
        parts.append(f"QUESTIONS DU COURRIER DE L'USAGER :\n{asked}")
    if current_draft is not None:
        parts.append(f"PROJET ACTUEL À RÉVISER :\n{escape_data(current_draft.strip())}")
    parts.append(f"Demande ({template.label}) : {escape_data(request.strip())}")
    if template.consigne and current_draft is None:
        parts.append(template.consigne)  # the narrow task, last: small models follow it best
    return "\n\n".join(parts)


def render_plain(common: CommonText, request: str) -> list[dict[str, str]]:
    """Messages for an answer without retrieval (``ask --no-retrieval``)."""
    return [
        {"role": "system", "content": common.sans_sources},
        {"role": "user", "content": request.strip()},
    ]
