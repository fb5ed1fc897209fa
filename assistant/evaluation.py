"""Retrieval (and answer) evaluation on question sets.

Two formats are read:

- the project's JSONL (``id``, ``difficulty``, ``type``, ``question``, ``answer``, ``file``,
  ``quote``): a hit is a retrieved chunk of ``file`` that contains ``quote`` once whitespace is
  folded; for a PDF, any chunk of the page(s) holding the quote counts;
- SQuAD JSON (PIAF-ml): each ``context`` becomes a document of its own
  (:func:`write_squad_passages`); a hit is a retrieved chunk of the passage that holds the answer.

Metrics: recall@1/5/10 (a hit among the first k) and MRR (1/rank of the first hit, 0 beyond
``k_max``), overall, by difficulty and by type, with the misses listed. The module never prints;
the CLI renders :class:`EvalReport`.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.embeddings import Embedder
from assistant.errors import AssistantError
from assistant.schema import Hit

KS = (1, 5, 10)
MISS_K = 5  # a question is listed as a miss when nothing among the first MISS_K passages hits
_SPACES = re.compile(r"\s+")
# Typographic variants that PDF extraction and Markdown sources spell differently.
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00a0": " ", "\u202f": " "})


class EvalError(AssistantError):
    """The question file or the corpus cannot be used for an evaluation."""


@dataclass
class Question:
    id: str
    question: str
    file: str  # source of the expected document, relative to the corpus folder
    quote: str | None = None  # a sentence the hit must contain (None: any chunk of ``file``)
    answer: str = ""
    difficulty: str = "?"
    type: str = "?"


@dataclass
class QuestionResult:
    question: Question
    rank: int | None  # 1-based rank of the first hit, None if none within k_max
    top_sources: list[str]


@dataclass
class EvalReport:
    mode: str
    k_max: int
    results: list[QuestionResult] = field(default_factory=list)
    answers: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, **_metrics(self.results, self.k_max)}
        out["by_difficulty"] = {
            key: _metrics(group, self.k_max)
            for key, group in _group(self.results, lambda r: r.question.difficulty).items()
        }
        out["by_type"] = {
            key: _metrics(group, self.k_max)
            for key, group in _group(self.results, lambda r: r.question.type).items()
        }
        out["misses"] = [
            {
                "id": r.question.id,
                "question": r.question.question,
                "expected": r.question.file,
                "rank": r.rank,
                "top_sources": r.top_sources,
            }
            for r in self.results
            if r.rank is None or r.rank > MISS_K
        ]
        if self.answers is not None:
            out["answers"] = self.answers
        return out


def _group(
    results: Sequence[QuestionResult], key: Callable[[QuestionResult], str]
) -> dict[str, list[QuestionResult]]:
    groups: dict[str, list[QuestionResult]] = {}
    for result in results:
        groups.setdefault(key(result), []).append(result)
    return dict(sorted(groups.items()))


def _metrics(results: Sequence[QuestionResult], k_max: int) -> dict[str, Any]:
    n = len(results)
    out: dict[str, Any] = {"questions": n}
    for k in KS:
        found = sum(1 for r in results if r.rank is not None and r.rank <= k)
        out[f"recall@{k}"] = round(found / n, 4) if n else 0.0
    rr = sum(1.0 / r.rank for r in results if r.rank is not None and r.rank <= k_max)
    out["mrr"] = round(rr / n, 4) if n else 0.0
    return out


# --------------------------------------------------------------------------------------------
# Question files


def fold_text(text: str) -> str:
    """Whitespace folded (and typographic apostrophes/spaces unified) for quote matching."""
    return _SPACES.sub(" ", text.translate(_QUOTES)).strip()


def is_squad(path: Path) -> bool:
    return path.suffix.lower() == ".json"


def load_questions(path: Path) -> list[Question]:
    """Questions of a JSONL file (project format) or a SQuAD JSON file (PIAF-ml)."""
    if not path.is_file():
        raise EvalError(f"Fichier de questions introuvable : {path}. Vérifiez le chemin.")
    if is_squad(path):
        return [q for q, _ in _squad_items(path)]
    questions: list[Question] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            questions.append(
                Question(
                    id=str(item.get("id", f"L{n}")),
                    question=item["question"],
                    file=item["file"],
                    quote=item.get("quote") or None,
                    answer=item.get("answer", ""),
                    difficulty=item.get("difficulty", "?"),
                    type=item.get("type", "?"),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise EvalError(
                f"{path}, ligne {n} : question illisible ({err}). Chaque ligne doit être un "
                "objet JSON avec au moins « question » et « file »."
            ) from err
    if not questions:
        raise EvalError(f"{path} ne contient aucune question. Ajoutez-en une par ligne (JSONL).")
    return questions


def _squad_items(path: Path) -> list[tuple[Question, str]]:
    """(question, passage text) pairs; the passage file name is the question's ``file``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise EvalError(
            f"{path} n'est pas au format SQuAD (clé « data » attendue) : {err}. "
            "Donnez un fichier JSONL de questions ou un fichier SQuAD."
        ) from err
    items: list[tuple[Question, str]] = []
    passage_no = 0
    for article in data:
        for paragraph in article.get("paragraphs", []):
            passage_no += 1
            name = f"passage_{passage_no:04d}.txt"
            context = paragraph["context"]
            for qa in paragraph.get("qas", []):
                if qa.get("is_impossible"):
                    continue
                answers = qa.get("answers") or []
                answer = answers[0]["text"] if answers else ""
                items.append(
                    (
                        Question(
                            id=str(qa.get("id") or f"{path.stem}-{len(items) + 1}"),
                            question=qa["question"],
                            file=name,
                            quote=None,  # the passage holding the answer is the target
                            answer=answer,
                            difficulty="piaf",
                            type="squad",
                        ),
                        context,
                    )
                )
    if not items:
        raise EvalError(f"{path} ne contient aucune question SQuAD exploitable.")
    return items


def write_squad_passages(path: Path, folder: Path) -> int:
    """Write each context of a SQuAD file as ``passage_NNNN.txt`` in ``folder`` (the title is
    not written: in PIAF-ml it is often the question itself). Returns the number of files.
    Unchanged files are left alone so that a re-ingestion has nothing to do."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for question, context in _squad_items(path):
        written[question.file] = context
    for name, context in written.items():
        target = folder / name
        if not target.is_file() or target.read_text(encoding="utf-8") != context:
            target.write_text(context, encoding="utf-8")
    return len(written)


# --------------------------------------------------------------------------------------------
# Matching


class QuoteLocator:
    """Finds the PDF page(s) holding a quote (pypdf text, as the question files were written)."""

    def __init__(self, corpus: Path | None) -> None:
        self.corpus = corpus
        self._pages: dict[str, list[str]] = {}

    def _pdf_pages(self, file: str) -> list[str]:
        if file not in self._pages:
            pages: list[str] = []
            if self.corpus is not None and (self.corpus / file).is_file():
                from pypdf import PdfReader

                try:
                    reader = PdfReader(str(self.corpus / file))
                    pages = [fold_text(p.extract_text() or "") for p in reader.pages]
                except Exception:
                    pages = []
            self._pages[file] = pages
        return self._pages[file]

    def pages(self, question: Question) -> set[int]:
        """1-based pages holding the quote (both pages when it straddles two)."""
        if not question.quote or not question.file.lower().endswith(".pdf"):
            return set()
        quote = fold_text(question.quote)
        pages = self._pdf_pages(question.file)
        found = {i + 1 for i, text in enumerate(pages) if quote in text}
        if not found:
            for i in range(len(pages) - 1):
                if quote in f"{pages[i]} {pages[i + 1]}":
                    found |= {i + 1, i + 2}
        return found


def is_hit(hit: Hit, question: Question, quote_pages: set[int]) -> bool:
    """A chunk of the expected file that holds the quote (or lies on the quote's PDF page)."""
    if hit.source != question.file:
        return False
    if not question.quote:
        return True
    if fold_text(question.quote) in fold_text(hit.text):
        return True
    pages = hit.metadata.get("pages") or ([hit.page] if hit.page is not None else [])
    return bool(quote_pages & {int(p) for p in pages})


SearchFn = Callable[[str], list[Hit]]


def evaluate(
    search: SearchFn,
    questions: Iterable[Question],
    *,
    mode: str = "hybrid",
    corpus: Path | None = None,
    k_max: int = 10,
) -> EvalReport:
    """Run ``search`` (which returns at least ``k_max`` hits when it can) on each question."""
    locator = QuoteLocator(corpus)
    report = EvalReport(mode=mode, k_max=k_max)
    for question in questions:
        hits = search(question.question)[:k_max]
        pages = locator.pages(question)
        rank = next(
            (i for i, hit in enumerate(hits, start=1) if is_hit(hit, question, pages)), None
        )
        top: list[str] = []
        for hit in hits[:MISS_K]:
            label = hit.source + (f" p.{hit.page}" if hit.page is not None else "")
            top.append(label)
        report.results.append(QuestionResult(question=question, rank=rank, top_sources=top))
    return report


class CachedQueries(Embedder):
    """Wraps an embedder so that a question embedded once is not embedded again (evaluations
    run the same questions through several modes and variants; the embedder is deterministic).
    Passages and batches go straight to the wrapped embedder (its prefixes and NFKC apply)."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.name = embedder.name
        self.fingerprint = embedder.fingerprint
        self._cache: dict[str, list[float]] = {}

    def embed_batch(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_batch(texts)

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        return self.inner.embed(texts, batch_size)

    def embed_query(self, text: str) -> list[float]:
        if text not in self._cache:
            self._cache[text] = self.inner.embed_query(text)
        return self._cache[text]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.embed_queries(missing), strict=True))
        return [self._cache[t] for t in texts]


# Retrieval variants measured by ``assistant eval --variants`` (issue 11: closing the vocabulary
# gap of paraphrases). Each maps a configured retriever to a changed copy.
VARIANTS: dict[str, str] = {
    "base": "réglages calibrés de l'embedder (fusion convexe)",
    "rrf": "fusion par rang réciproque simple (RRF) au lieu de la fusion convexe",
    "rescore": "la partie dense re-note les 20 premiers passages fusionnés (cosinus stockés)",
    "sentence": "les 20 premiers passages re-notés par leur meilleure phrase",
    "rewrite": "le modèle de conversation reformule la question si la recherche est faible",
}


def variant_retriever(
    retriever: Any, name: str, rewriter: Callable[[str], str] | None = None
) -> Any:
    """A copy of ``retriever`` configured as variant ``name`` (see :data:`VARIANTS`).

    ``rewrite`` needs ``rewriter`` (question -> search query, e.g. the chat model). Raises
    :class:`EvalError` for an unknown variant.
    """
    from dataclasses import replace

    if name not in VARIANTS:
        raise EvalError(f"Variante inconnue : {name}. Choisissez parmi : {', '.join(VARIANTS)}.")
    cfg = retriever.config
    if name == "rrf":
        return replace(retriever, config=replace(cfg, fusion="rrf"))
    if name == "rescore":
        return replace(retriever, config=replace(cfg, dense_rescore=20, rescore_weight=0.5))
    if name == "sentence":
        return replace(retriever, config=replace(cfg, sentence_weight=0.5))
    if name == "rewrite":
        if rewriter is None:
            raise EvalError("La variante « rewrite » demande le modèle de conversation.")
        return replace(
            retriever, rewriter=rewriter, rewrite_below=retriever.abstain_threshold + 0.15
        )
    return retriever


@dataclass
class AnswerSources:
    """What one drafted answer used: the sources it cites, those it was given, and the prompt
    figures llama.cpp measured."""

    cited: list[str]
    given: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    cached_tokens: int = 0


def answer_citation_rate(
    draft_sources: Callable[[str], Sequence[str] | AnswerSources], questions: Sequence[Question]
) -> dict[str, Any]:
    """How often the drafted answer cites the expected document (``cites_expected``) and how
    often that document was among the sources given to the model (``sources_expected``).

    ``draft_sources(question)`` drafts an answer and returns the sources it cites (or an
    :class:`AnswerSources`, which also gives the sources sent and the prompt figures).
    """
    cited = 0
    given = 0
    tokens: list[tuple[int, int]] = []
    details = []
    for question in questions:
        result = draft_sources(question.question)
        answer = result if isinstance(result, AnswerSources) else AnswerSources(list(result))
        ok = question.file in answer.cited
        in_context = ok or question.file in answer.given
        cited += ok
        given += in_context
        if answer.prompt_tokens:
            tokens.append((answer.prompt_tokens, answer.cached_tokens))
        details.append(
            {
                "id": question.id,
                "cited_expected": ok,
                "given_expected": in_context,
                "cited": answer.cited,
            }
        )
    n = len(questions)
    out: dict[str, Any] = {
        "questions": n,
        "cites_expected": round(cited / n, 4) if n else 0.0,
        "sources_expected": round(given / n, 4) if n else 0.0,
    }
    if tokens:
        out["median_prompt_tokens"] = statistics.median(p for p, _ in tokens)
        out["median_uncached_tokens"] = statistics.median(p - c for p, c in tokens)
    out["details"] = details
    return out


# --------------------------------------------------------------------------------------------
# Drafts: ``assistant eval drafts FILE``


@dataclass
class DraftCase:
    """One drafting request of an evaluation file (JSONL, one object a line): ``id``, ``type``
    (a template name), ``request``, ``fields`` (dict), ``letter`` (a resident's pasted letter,
    optional), ``expected`` (corpus-relative paths, any of which cited counts), ``facts`` (a
    list of facts, each a list of alternative spellings; a fact is stated when one of them is
    in the draft, case and accents folded), ``off_corpus`` (true: the draft must be declined)."""

    id: str
    type: str
    request: str
    fields: dict[str, str] = field(default_factory=dict)
    letter: str = ""
    expected: list[str] = field(default_factory=list)
    facts: list[list[str]] = field(default_factory=list)
    off_corpus: bool = False


def load_draft_cases(path: Path) -> list[DraftCase]:
    """The requests of a drafting evaluation file; raises :class:`EvalError` in French."""
    if not path.is_file():
        raise EvalError(f"Fichier de demandes introuvable : {path}. Vérifiez le chemin.")
    cases: list[DraftCase] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            facts = [[f] if isinstance(f, str) else list(f) for f in item.get("facts", [])]
            cases.append(
                DraftCase(
                    id=str(item.get("id", f"L{n}")),
                    type=str(item.get("type", "question")),
                    request=str(item["request"]),
                    fields={str(k): str(v) for k, v in (item.get("fields") or {}).items()},
                    letter=str(item.get("letter", "")),
                    expected=[str(e) for e in item.get("expected", [])],
                    facts=facts,
                    off_corpus=bool(item.get("off_corpus", False)),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise EvalError(
                f"{path}, ligne {n} : demande illisible ({err}). Chaque ligne doit être un objet "
                "JSON avec au moins « request » (voir tests/data/drafting_requests.jsonl)."
            ) from err
    if not cases:
        raise EvalError(f"{path} ne contient aucune demande. Ajoutez-en une par ligne (JSONL).")
    return cases


@dataclass
class DraftOutcome:
    """What one draft produced, as the evaluation needs it (independent of the service's
    version): the final text, the sources cited and shown (``(file, text)``), timings."""

    answer: str
    cited: list[tuple[str, str]]
    shown: list[tuple[str, str]]
    abstained: bool
    stopped: bool = False
    first_words_s: float | None = None  # first visible word of the model's part
    total_s: float = 0.0
    cut: bool = False  # the model reached its token limit
    by_n: dict[int, str] = field(default_factory=dict)  # source number -> title and text shown
    frame: str = ""  # header and footer written by the program from the template (not checked)


# Prompt markup, JSON or Markdown left in a draft.
_MARKUP = re.compile(
    r"<<[^<>\n]{0,300}>>|<<|>>|‹‹|››|\bFIN SOURCE\b|\bSOURCE\s+\d|\*\*|^#{1,6}\s|"
    r"\"texte\"|\"paragraphes\"|\{\s*\"|\[\[",
    re.MULTILINE,
)
_ARTICLE_HEADING = re.compile(r"^\s*Article\s+\d+(?:er)?\s*:", re.MULTILINE)
_CITE_MARK = re.compile(r"\[(\d{1,3})\]")


def _fold_all(text: str) -> str:
    from assistant.verify import _fold

    return " ".join(_fold(text).split())


def score_draft(case: DraftCase, outcome: DraftOutcome) -> dict[str, Any]:
    """The measures of one draft. Figures are checked paragraph by paragraph against the
    sources the paragraph cites (all cited sources when it cites none) and what the agent wrote;
    a paragraph carrying an « à vérifier » mark is not counted as showing them unmarked."""
    from assistant.verify import (
        MARK_PATTERN,
        contact_keys,
        contacts,
        copied_share,
        figure_keys,
        figures,
        supported,
        unmarked_paragraphs,
    )

    answer = outcome.answer
    agent = [case.request, case.letter, *case.fields.values(), outcome.frame]
    shown_texts = [t for _, t in outcome.shown]
    # Citation marks [n] in the text are the draft's source numbers.
    by_mark = outcome.by_n or {n: text for n, (_, text) in enumerate(outcome.shown, start=1)}
    unsupported: list[str] = []
    for paragraph in unmarked_paragraphs(_ARTICLE_HEADING.sub(" ", answer)):
        numbers = [int(n) for n in _CITE_MARK.findall(paragraph)]
        allowed = [by_mark[n] for n in numbers if n in by_mark] or [t for _, t in outcome.cited]
        keys = figure_keys([*allowed, *agent])
        unsupported += [w for w, k in figures(paragraph) if not supported(k, keys)]
    given = contact_keys([*shown_texts, *agent])
    stray = [c for c in contacts(MARK_PATTERN.sub(" ", answer)) if _contact_key_of(c) not in given]
    folded = _fold_all(answer)
    stated = sum(1 for fact in case.facts if any(_fold_all(alt) in folded for alt in fact))
    cited_files = [f for f, _ in outcome.cited]
    expected_cited = any(
        any(
            c == e or c.endswith("/" + e.rsplit("/", 1)[-1]) or c == e.rsplit("/", 1)[-1]
            for c in cited_files
        )
        for e in case.expected
    )
    body_end = answer.rstrip()
    return {
        "id": case.id,
        "type": case.type,
        "off_corpus": case.off_corpus,
        "declined": outcome.abstained,
        "markup": len(_MARKUP.findall(answer)),
        "stray_contacts": stray,
        "unsupported_figures": unsupported,
        "marks": len(MARK_PATTERN.findall(answer)),
        "copied_share": round(copied_share(answer, shown_texts), 3) if shown_texts else 0.0,
        "facts": [stated, len(case.facts)],
        "expected_cited": expected_cited,
        "complete": not outcome.stopped and not outcome.cut and bool(body_end),
        "first_words_s": outcome.first_words_s,
        "total_s": round(outcome.total_s, 2),
    }


def _contact_key_of(value: str) -> str:
    from assistant.verify import _contact_key

    return _contact_key(value)


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def summarise_drafts(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per type (and ``toutes``): drafts, markup left, stray contacts, unsupported figures shown
    unmarked, mean copied share, facts stated / expected, expected source cited, complete,
    off-corpus declined, median first-word and total time."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["type"], []).append(row)
    groups = dict(sorted(groups.items()))
    groups["toutes"] = list(rows)
    out: dict[str, dict[str, Any]] = {}
    for key, group in groups.items():
        in_corpus = [r for r in group if not r["off_corpus"]]
        off = [r for r in group if r["off_corpus"]]
        answered = [r for r in in_corpus if not r["declined"]]
        out[key] = {
            "drafts": len(group),
            "markup": sum(r["markup"] for r in group),
            "stray_contacts": sum(len(r["stray_contacts"]) for r in group),
            "unsupported_figures": sum(len(r["unsupported_figures"]) for r in group),
            "marks": sum(r["marks"] for r in group),
            "copied_share": round(statistics.mean(r["copied_share"] for r in answered), 3)
            if answered
            else 0.0,
            "facts": [sum(r["facts"][0] for r in in_corpus), sum(r["facts"][1] for r in in_corpus)],
            "expected_cited": [sum(r["expected_cited"] for r in in_corpus), len(in_corpus)],
            "complete": [sum(r["complete"] for r in in_corpus), len(in_corpus)],
            "declined_off_corpus": [sum(r["declined"] for r in off), len(off)],
            "declined_in_corpus": sum(r["declined"] for r in in_corpus),
            "first_words_s": _median(
                [r["first_words_s"] for r in group if r["first_words_s"] is not None]
            ),
            "total_s": _median([r["total_s"] for r in group]),
        }
    return out


def run_draft_case(service: Any, case: DraftCase, collections: list[str]) -> DraftOutcome:
    """Draft ``case`` with a drafting service (anything with ``stream(DraftRequest)`` yielding
    the service's events) and time it. A service without a separate letter input gets the
    letter appended to the request (as an agent would paste it)."""
    import dataclasses
    import time

    from assistant.drafting import DraftRequest, source_texts

    names = {f.name for f in dataclasses.fields(DraftRequest)}
    kwargs: dict[str, Any] = {
        "request": case.request,
        "doc_type": case.type,
        "fields": dict(case.fields),
        "collections": collections,
        "user": "evaluation",
    }
    if case.letter:
        if "letter" in names:
            kwargs["letter"] = case.letter
        else:
            kwargs["request"] = f"{case.request}\n\n{case.letter}"
    request = DraftRequest(**kwargs)
    start = time.monotonic()
    stamps: list[tuple[float, str]] = []
    text = ""
    final = None
    for event in service.stream(request):
        if event.kind == "token":
            text += event.text
            stamps.append((time.monotonic() - start, text))
        elif event.kind == "done":
            final = event.draft
    total = time.monotonic() - start
    if final is None:
        raise EvalError(f"La demande {case.id} n'a pas produit de brouillon.")
    header = (getattr(final, "header", "") or "").strip()
    first = next(
        (t for t, seen in stamps if len(seen.strip()) > len(header) + 1 and seen.strip() != header),
        None,
    )
    shown = [(c.source, c.text) for c in final.sources]
    cited = [(c.source, c.text) for c in final.citations]
    tokens = int(final.timings.get("completion_tokens") or 0)
    template = service.templates.get(case.type)
    limit = min(template.max_tokens, service.settings.max_tokens)
    return DraftOutcome(
        answer=final.answer,
        cited=cited,
        shown=shown,
        abstained=bool(final.abstained),
        stopped=bool(final.stopped),
        first_words_s=None if first is None else round(first, 2),
        total_s=total,
        cut=tokens >= limit,
        by_n=source_texts(final.sources),
        frame="\n".join([getattr(final, "header", ""), getattr(final, "footer", "")]),
    )


__all__ = [
    "VARIANTS",
    "AnswerSources",
    "CachedQueries",
    "DraftCase",
    "DraftOutcome",
    "EvalError",
    "EvalReport",
    "Question",
    "QuestionResult",
    "QuoteLocator",
    "answer_citation_rate",
    "evaluate",
    "fold_text",
    "is_hit",
    "is_squad",
    "load_draft_cases",
    "load_questions",
    "run_draft_case",
    "score_draft",
    "summarise_drafts",
    "variant_retriever",
    "write_squad_passages",
]
