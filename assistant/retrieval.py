"""Hybrid retrieval: dense search (Chroma) and French lexical search (SQLite FTS5), fused.

The pipeline of :meth:`Retriever.search`:

1. the question is analysed once: its lexical terms (stemmed, stop words dropped, see
   :mod:`assistant.textnorm`) and the legal/administrative references it names
   ("L. 2121-17", "n° 2014/131") as single tokens;
2. dense candidates (the query embedding) and lexical candidates (BM25) are fetched, plus, when
   the question names a reference, the passages holding that exact reference;
3. the ranked lists are fused by weighted reciprocal rank fusion; a passage whose heading *is* the
   named article ("Article L2121-17") is put first;
4. an optional GGUF reranker (llama.cpp rank pooling) reorders the head of the list;
5. duplicates are dropped (the same text ingested twice) and adjacent chunks of one document that
   continue the same article are merged (their overlap removed);
6. each hit gets a relevance in [0, 1] (dense similarity and coverage of the question's terms),
   which the drafting service compares with :data:`ABSTAIN_THRESHOLD` to abstain.

Hand-written fusion: the fixed stack has no hybrid retriever that works over our own FTS5 index
(langchain's EnsembleRetriever needs langchain retrievers and has no reference or neighbour logic).
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from assistant.config import Settings
from assistant.embeddings import Embedder, Vector
from assistant.engine import open_llama
from assistant.errors import (
    AssistantError,
    CollectionNotFoundError,
    ModelNotFoundError,
    StoreError,
)
from assistant.schema import Hit
from assistant.textnorm import fold, lexical_terms

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")

# Calibrated with all-MiniLM-L6-v2 (scripts/bench_retrieval.py calibrate): the best passage of
# 36 out-of-corpus questions (12 questions x 3 corpora) scores at most 0.33; 148 of the 153 dev
# and PIAF-ml questions score above 0.34 (the 5 below are mostly vague PIAF questions).
ABSTAIN_THRESHOLD = 0.34

# A reference token: a code article ("l2121x17", "r2122x1") or a numbered act ("2014x131").
_REFERENCE = re.compile(r"^(?:[a-z]{1,2}\d+(?:x\d+)*|\d+(?:x\d+)+)$")
_SPACES = re.compile(r"\s+")
_LETTER_WORD = re.compile(r"\b[^\W\d_]+\b")

# Words of a *question* that say nothing about its topic (interrogatives, modal verbs); they are
# dropped from the lexical query only (passages keep them). Hand-written: no library of the
# stack ships French question words. Folded forms.
_QUERY_STOP_TEXT = """
    combien comment quand pourquoi quoi lequel laquelle lesquels lesquelles
    peut peuvent pourrait pourraient puis doit doivent devrait devraient faut faudra falloir
    t selon ainsi alors exactement notamment cas
"""
QUERY_STOP_WORDS = frozenset(_QUERY_STOP_TEXT.split())


@runtime_checkable
class SearchIndex(Protocol):
    """What retrieval needs from the index (implemented by :class:`assistant.store.Index`)."""

    def dense_search(
        self, collections: list[str], vector: Vector, k: int, where: dict[str, Any] | None = None
    ) -> list[Hit]: ...

    def lexical_search(
        self, collections: list[str], query: str, k: int, where: dict[str, Any] | None = None
    ) -> list[Hit]: ...

    def neighbours(
        self, collection: str, source: str, chunk_index: int, span: int = 1
    ) -> list[Hit]: ...


# --------------------------------------------------------------------------------------------
# Optional reranker


class Reranker(ABC):
    """Scores (question, passage) pairs; higher is more relevant."""

    name: str = "reranker"

    @abstractmethod
    def score(self, query: str, passages: list[str]) -> list[float]:
        """One score per passage, in the passages' order."""


class LocalReranker(Reranker):
    """A GGUF cross-encoder (e.g. bge-reranker) run by llama.cpp with rank pooling.

    The pair is tokenised as llama.cpp's server does for rerankers:
    ``[BOS] query [EOS] [SEP] passage [EOS]``; the score is the first value of the pooled output.
    """

    def __init__(self, settings: Settings, llama: Any | None = None) -> None:
        path = settings.reranker_model_path
        self.name = path.name if path else "reranker"
        self._lock = threading.Lock()
        if llama is not None:
            self._llama = llama
            return
        if path is None or not path.is_file():
            raise ModelNotFoundError(
                f"Modèle de reclassement introuvable : {path}. Placez un GGUF de reranker dans "
                "le dossier des modèles ou retirez le réglage reranker_model."
            )
        import llama_cpp

        try:
            self._llama = open_llama(
                settings,
                model_path=str(path),
                embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_RANK,
                n_ctx=1024,
                n_batch=1024,
                n_ubatch=1024,
                n_threads=settings.threads,
                n_threads_batch=settings.threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as err:
            raise AssistantError(
                f"llama.cpp n'a pas pu charger le reranker {path.name} ({err}). Vérifiez que c'est "
                "un modèle de reclassement GGUF, ou retirez le réglage reranker_model."
            ) from err

    def _pair_tokens(self, query: str, passage: str) -> list[int]:
        llama = self._llama
        q = llama.tokenize(query.encode("utf-8"), add_bos=True, special=False)
        p = llama.tokenize(passage.encode("utf-8"), add_bos=False, special=False)
        eos = llama.token_eos()
        try:  # BERT-style rerankers separate the pair with [SEP]; others have none (-1)
            sep = int(llama._model.token_sep())
        except (AttributeError, TypeError):
            sep = -1
        middle = [eos] + ([sep] if sep >= 0 else [])
        budget = max(16, int(llama.n_ctx()) - len(q) - len(middle) - 1)
        return q + middle + p[:budget] + [eos]

    def score(self, query: str, passages: list[str]) -> list[float]:
        import llama_cpp

        scores: list[float] = []
        with self._lock:
            llama = self._llama
            for passage in passages:
                tokens = self._pair_tokens(query, passage)
                llama.reset()
                llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llama.ctx), True)
                batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
                try:
                    batch.n_tokens = len(tokens)
                    for i, tok in enumerate(tokens):
                        batch.token[i] = tok
                        batch.pos[i] = i
                        batch.n_seq_id[i] = 1
                        batch.seq_id[i][0] = 0
                        batch.logits[i] = 1 if i == len(tokens) - 1 else 0
                    if llama_cpp.llama_decode(llama.ctx, batch) != 0:
                        raise AssistantError(
                            "Le reranker n'a pas pu évaluer un passage. Retirez le réglage "
                            "reranker_model pour continuer sans reclassement."
                        )
                    out = llama_cpp.llama_get_embeddings_seq(llama.ctx, 0)
                    scores.append(float(out[0]))
                finally:
                    llama_cpp.llama_batch_free(batch)
        return scores


def build_reranker(settings: Settings) -> Reranker | None:
    """The reranker named by ``settings.reranker_model``, or ``None`` (the default)."""
    if not settings.reranker_model:
        return None
    return LocalReranker(settings)


# --------------------------------------------------------------------------------------------
# Query analysis, fusion, merging


@dataclass(frozen=True)
class QueryAnalysis:
    """The question as the lexical side sees it."""

    text: str
    lexical: str  # the text sent to the lexical index (question words dropped)
    terms: tuple[str, ...]  # distinct lexical terms, in order
    references: tuple[str, ...]  # the reference tokens among them ("l2121x17", "2014x131")


def lexical_query(text: str) -> str:
    """The question without its question words (see :data:`QUERY_STOP_WORDS`).

    (Measured and dropped: expanding acronyms such as CGCT into their long form added generic
    terms that pushed the right passage down.)"""

    def drop(match: re.Match[str]) -> str:
        return " " if fold(match.group(0)) in QUERY_STOP_WORDS else match.group(0)

    return _LETTER_WORD.sub(drop, text)


def reference_variants(token: str) -> list[str]:
    """The token, and for an article number typed without its code prefix ("article 2121-17",
    token ``2121x17``) the prefixed forms a code article can take (``l2121x17``, ``r2121x17``,
    ``d2121x17``). Years ("2014-131" is a deliberation number) get no prefix."""
    first = token.split("x", 1)[0]
    if first.isdigit() and "x" in token and 3 <= len(first) <= 4 and not 1900 <= int(first) <= 2099:
        return [token, *(p + token for p in ("l", "r", "d"))]
    return [token]


def analyse_query(text: str) -> QueryAnalysis:
    lexical = lexical_query(text)
    seen: dict[str, None] = {}
    for term in lexical_terms(lexical):
        seen.setdefault(term, None)
    terms = tuple(seen)
    refs: dict[str, None] = {}
    for term in terms:
        if _REFERENCE.match(term) and any(c.isdigit() for c in term):
            for variant in reference_variants(term):
                refs.setdefault(variant, None)
    return QueryAnalysis(text=text, lexical=lexical, terms=terms, references=tuple(refs))


@dataclass
class RetrievalConfig:
    """Knobs of the fusion; the defaults are the measured best (scripts/bench_retrieval.py)."""

    candidates: int = 40  # candidates fetched from each ranked list
    rrf_k: int = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    reference_weight: float = 1.0  # the list of passages holding a named reference
    heading_bonus: float = 1.0  # a passage headed by the named article comes first
    # Measured on the dev questions and PIAF-ml (153 questions) with all-MiniLM-L6-v2: convex
    # fusion at 0.65 beats RRF (MRR 0.68/0.64/0.96 vs 0.59/0.60/0.89 on dev/CRPA/SPF).
    fusion: Literal["rrf", "convex"] = "convex"
    lexical_share: float = 0.65  # convex fusion: weight of the lexical score, dense the rest
    rerank_top: int = 20  # how many fused candidates the reranker (if any) reorders
    merge_neighbours: bool = True  # adjacent chunks of the same article become one hit
    max_merged_chars: int = 4000  # never grow a merged hit beyond this


def fold_ws(text: str) -> str:
    """Whitespace runs folded to one space, ends stripped."""
    return _SPACES.sub(" ", text).strip()


def _chunk_index(hit: Hit) -> int | None:
    value = hit.metadata.get("chunk_index")
    return int(value) if isinstance(value, int | float) else None


def _overlap(left: str, right: str, limit: int = 1500) -> int:
    """Length of the longest suffix of ``left`` that is a prefix of ``right`` (chunk overlap)."""
    best = 0
    upto = min(len(left), len(right), limit)
    for size in range(upto, 0, -1):
        if left.endswith(right[:size]):
            best = size
            break
    return best


def _same_article(a: Hit, b: Hit) -> bool:
    # Chunks continue the same article when they share the heading path; untitled chunks of a
    # document (no heading) continue each other too.
    return (a.heading or "") == (b.heading or "")


def merge_adjacent(hits: list[Hit], max_chars: int = 4000) -> list[Hit]:
    """Merge hits that are consecutive chunks of one document and of the same article.

    The merged hit takes the best rank among its parts; its text is the parts in document order,
    the overlap between consecutive chunks removed. ``metadata["chunk_ids"]`` lists the parts,
    ``metadata["pages"]`` their pages.
    """
    groups: list[list[Hit]] = []
    for hit in hits:
        idx = _chunk_index(hit)
        placed = False
        if idx is not None:
            for group in groups:
                head = group[0]
                if head.source != hit.source or head.collection != hit.collection:
                    continue
                indices = [_chunk_index(h) for h in group]
                if any(i is not None and abs(i - idx) == 1 for i in indices) and _same_article(
                    head, hit
                ):
                    size = sum(len(h.text) for h in group) + len(hit.text)
                    if size <= max_chars:
                        group.append(hit)
                        placed = True
                        break
        if not placed:
            groups.append([hit])
    out: list[Hit] = []
    for group in groups:
        if len(group) == 1:
            out.append(group[0])
            continue
        ordered = sorted(group, key=lambda h: _chunk_index(h) or 0)
        text = ordered[0].text
        for nxt in ordered[1:]:
            text += ("" if (cut := _overlap(text, nxt.text)) else "\n") + nxt.text[cut:]
        best = group[0]  # the group's first member is its best-ranked hit
        pages = sorted({h.page for h in ordered if h.page is not None})
        metadata = dict(best.metadata)
        metadata["chunk_ids"] = [h.id for h in ordered]
        metadata["pages"] = pages
        metadata["chunk_index"] = _chunk_index(ordered[0])
        out.append(
            replace(
                best,
                text=text,
                page=ordered[0].page if ordered[0].page is not None else best.page,
                metadata=metadata,
            )
        )
    return out


def drop_duplicates(hits: list[Hit]) -> list[Hit]:
    """Drop hits whose text (whitespace folded) repeats a better-ranked hit: the same passage
    ingested twice, or a chunk contained in a better one."""
    kept: list[Hit] = []
    texts: list[str] = []
    for hit in hits:
        text = fold_ws(hit.text)
        if any(text == t or (len(text) > 80 and text in t) for t in texts):
            continue
        kept.append(hit)
        texts.append(text)
    return kept


def rrf(
    ranked_lists: Sequence[tuple[list[Hit], float]], k: int = 60
) -> tuple[dict[str, float], dict[str, Hit], list[dict[str, int]]]:
    """Weighted reciprocal rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1.

    Returns scores by id, one representative hit by id, and each list's ranks by id.
    """
    scores: dict[str, float] = {}
    by_id: dict[str, Hit] = {}
    ranks: list[dict[str, int]] = []
    for hits, weight in ranked_lists:
        rank_of: dict[str, int] = {}
        for rank, hit in enumerate(hits, start=1):
            if hit.id in rank_of:
                continue
            rank_of[hit.id] = rank
            by_id.setdefault(hit.id, hit)
            scores[hit.id] = scores.get(hit.id, 0.0) + weight / (k + rank)
        ranks.append(rank_of)
    return scores, by_id, ranks


def _min_max(hits: list[Hit]) -> dict[str, float]:
    if not hits:
        return {}
    values = [h.score for h in hits]
    low, high = min(values), max(values)
    span = high - low
    return {h.id: (h.score - low) / span if span > 0 else 1.0 for h in hits}


def convex_fusion(
    dense: list[Hit], lexical: list[Hit], referenced: list[Hit], cfg: RetrievalConfig
) -> dict[str, float]:
    """Convex combination of min-max normalised scores (Bruch et al. 2023):
    ``a * lexical + (1 - a) * dense``, plus ``reference_weight`` / 2 for a passage holding a
    named reference. A passage missing from a list gets 0 for it."""
    a = cfg.lexical_share
    lex, den, ref = _min_max(lexical), _min_max(dense), _min_max(referenced)
    ids = set(lex) | set(den) | set(ref)
    return {
        i: a * lex.get(i, 0.0)
        + (1 - a) * den.get(i, 0.0)
        + cfg.reference_weight * 0.5 * (1.0 if i in ref else 0.0)
        for i in ids
    }


# --------------------------------------------------------------------------------------------
# Relevance (for abstention)


def term_coverage(query_terms: Sequence[str], text: str) -> float:
    """Share of the question's terms found in ``text`` (references and long terms weigh more)."""
    if not query_terms:
        return 0.0
    present = set(lexical_terms(text))
    total = got = 0.0
    for term in query_terms:
        weight = 2.0 if _REFERENCE.match(term) else (1.0 if len(term) > 3 else 0.5)
        total += weight
        if term in present:
            got += weight
    return got / total if total else 0.0


# Cosine range of all-MiniLM-L6-v2 on French: the best passage for an out-of-corpus question
# scores 0.38-0.57, for an answerable one 0.54-0.96 (dev questions, PIAF-ml; see
# scripts/bench_retrieval.py calibrate). Another embedder needs its own abstain_threshold.
COSINE_FLOOR = 0.45
COSINE_CEILING = 0.75
DENSE_SHARE = 0.7


def relevance_of(cosine: float | None, coverage: float) -> float:
    """Relevance in [0, 1]: ``DENSE_SHARE`` of the cosine similarity rescaled over
    [COSINE_FLOOR, COSINE_CEILING], the rest from the coverage of the question's terms.

    Without a cosine (lexical mode) the coverage alone counts, discounted: term overlap alone
    is weak evidence in a large corpus (an unrelated question still finds most of its words).
    """
    if cosine is None:
        return max(0.0, min(1.0, 0.6 * coverage))
    dense = max(0.0, min(1.0, (cosine - COSINE_FLOOR) / (COSINE_CEILING - COSINE_FLOOR)))
    return max(0.0, min(1.0, DENSE_SHARE * dense + (1 - DENSE_SHARE) * coverage))


# --------------------------------------------------------------------------------------------
# The retriever


@dataclass
class Retriever:
    """Hybrid search over the index. Build it with :func:`build_retriever`."""

    index: SearchIndex
    embedder: Embedder | None
    default_collections: list[str]
    reranker: Reranker | None = None
    config: RetrievalConfig = field(default_factory=RetrievalConfig)
    abstain_threshold: float = ABSTAIN_THRESHOLD

    # -- public ---------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        collections: list[str] | None = None,
        k: int = 6,
        doc_types: list[str] | None = None,
        mode: Mode = "hybrid",
        allowed: Sequence[str] | None = None,
    ) -> list[Hit]:
        """The ``k`` best passages for ``query``, best first.

        ``collections``: where to search (``None``: the default collection). ``doc_types``:
        keep only these document types. ``allowed``: the collections the user may read
        (``None``: no restriction; see :func:`assistant.auth.readable_collections`): both index
        queries only ever touch these; asking for another raises ``AccessDeniedError``.
        ``Hit.score`` is the fused score; ``metadata`` gets ``dense_rank`` / ``lexical_rank``
        (``None`` when absent from that list), ``cosine``, ``coverage`` and ``relevance`` in
        [0, 1].
        """
        if mode not in MODES:
            raise AssistantError(
                f"Mode de recherche inconnu : {mode!r}. Choisissez parmi {', '.join(MODES)}."
            )
        query = query.strip()
        if not query or k <= 0:
            return []
        cols = list(collections) if collections else list(self.default_collections)
        if allowed is not None:
            cols = restrict_collections(cols, allowed, explicit=bool(collections))
        self._check_collections(cols)
        where = _doc_type_filter(doc_types)
        analysis = analyse_query(query)
        cfg = self.config
        n = max(cfg.candidates, 3 * k)

        dense: list[Hit] = []
        lexical: list[Hit] = []
        referenced: list[Hit] = []
        if mode in ("hybrid", "dense"):
            if self.embedder is None:
                raise AssistantError(
                    "La recherche sémantique demande un modèle d'embeddings. Installez-le "
                    "(« assistant models install ») ou utilisez le mode lexical."
                )
            dense = self.index.dense_search(cols, self.embedder.embed_query(query), n, where)
        if mode in ("hybrid", "lexical") and analysis.terms:
            lexical = self.index.lexical_search(cols, analysis.lexical, n, where)
            if analysis.references:
                referenced = self.index.lexical_search(
                    cols, " ".join(analysis.references), n, where
                )

        lists: list[tuple[list[Hit], float]] = [
            (dense, cfg.dense_weight),
            (lexical, cfg.lexical_weight),
            (referenced, cfg.reference_weight),
        ]
        scores, by_id, (dense_rank, lexical_rank, ref_rank) = rrf(lists, cfg.rrf_k)
        unit = 1.0 / cfg.rrf_k  # the score of a first rank in one list
        if cfg.fusion == "convex":
            scores = convex_fusion(dense, lexical, referenced, cfg)
            unit = 1.0
        cosine = {h.id: h.score for h in dense}
        if analysis.references:
            refs = set(analysis.references)
            for hit_id, hit in by_id.items():
                if refs & set(lexical_terms(hit.heading or "")):
                    scores[hit_id] += cfg.heading_bonus * unit
        order = sorted(scores, key=lambda i: (-scores[i], i))

        if self.reranker is not None and order:
            head = order[: cfg.rerank_top]
            rerank = self.reranker.score(query, [by_id[i].text for i in head])
            rerank_of = dict(zip(head, rerank, strict=True))
            head.sort(key=lambda i: (-rerank_of[i], -scores[i]))
            order = head + order[cfg.rerank_top :]

        hits: list[Hit] = []
        for hit_id in order:
            hit = by_id[hit_id]
            meta = dict(hit.metadata)
            meta["dense_rank"] = dense_rank.get(hit_id)
            meta["lexical_rank"] = lexical_rank.get(hit_id)
            meta["reference_rank"] = ref_rank.get(hit_id)
            meta["cosine"] = cosine.get(hit_id)
            hits.append(replace(hit, score=scores[hit_id], metadata=meta))

        hits = drop_duplicates(hits)
        if cfg.merge_neighbours:
            hits = merge_adjacent(hits[: 3 * k], cfg.max_merged_chars)
        hits = hits[:k]
        # A passage outside the dense candidates has a cosine at most the last candidate's.
        bound = min(cosine.values()) if cosine else None
        for hit in hits:
            cov = term_coverage(analysis.terms, f"{hit.heading}\n{hit.text}")
            cos = hit.metadata.get("cosine")
            if not isinstance(cos, float):
                cos = bound
            hit.metadata["coverage"] = round(cov, 4)
            hit.metadata["relevance"] = round(relevance_of(cos, cov), 4)
        return hits

    def _check_collections(self, cols: list[str]) -> None:
        has = getattr(self.index, "has_collection", None)
        if has is None:
            return
        missing = [c for c in cols if not has(c)]
        if missing:
            raise CollectionNotFoundError(
                f"Collection inconnue : {', '.join(missing)}. Listez-les avec « assistant ingest "
                "--list » ou créez-la avec « assistant ingest DOSSIER --collection NOM »."
            )

    def relevance(self, hits: Sequence[Hit]) -> float:
        """How well the best of ``hits`` answers the question, in [0, 1] (0 when none)."""
        values = [h.metadata.get("relevance") for h in hits]
        return max((float(v) for v in values if isinstance(v, int | float)), default=0.0)

    def should_abstain(self, hits: Sequence[Hit]) -> bool:
        """True when even the best passage is too weak to ground an answer."""
        return self.relevance(hits) < self.abstain_threshold


def restrict_collections(
    wanted: Sequence[str], allowed: Sequence[str], *, explicit: bool
) -> list[str]:
    """``wanted`` within ``allowed``. Explicitly named collections outside it are refused (the
    message is the same for a forbidden and an unknown name: it tells nothing about what
    exists); the default collection, when not allowed, gives way to all allowed ones.

    Raises :class:`~assistant.auth.AccessDeniedError`."""
    from assistant.auth import AccessDeniedError

    permitted = set(allowed)
    refused = [c for c in wanted if c not in permitted]
    if refused and explicit:
        raise AccessDeniedError(
            f"Collection inconnue ou non autorisée pour votre compte : {', '.join(refused)}. "
            "Choisissez parmi les collections proposées, ou demandez l'accès au service "
            "informatique."
        )
    cols = [c for c in wanted if c in permitted] or sorted(permitted)
    if not cols:
        raise AccessDeniedError(
            "Aucune collection de documents n'est ouverte à votre compte. Demandez au service "
            "informatique de vous ajouter au groupe de votre service."
        )
    return cols


def _doc_type_filter(doc_types: list[str] | None) -> dict[str, Any] | None:
    if not doc_types:
        return None
    if len(doc_types) == 1:
        return {"doc_type": doc_types[0]}
    return {"doc_type": {"$in": list(doc_types)}}


def build_retriever(
    settings: Settings,
    index: SearchIndex | None = None,
    embedder: Embedder | None = None,
    reranker: Reranker | None = None,
) -> Retriever:
    """The one factory of the retriever; ready components can be injected (tests, the UI)."""
    if index is None:
        from assistant.store import build_index

        index = build_index(settings)
    if embedder is None:
        from assistant.embeddings import build_embedder

        embedder = build_embedder(settings)
    if reranker is None:
        reranker = build_reranker(settings)
    if not isinstance(index, SearchIndex):  # pragma: no cover - a wiring mistake
        raise StoreError(
            "L'index fourni ne permet pas la recherche. Reconstruisez-le (assistant ingest)."
        )
    threshold = settings.abstain_threshold or ABSTAIN_THRESHOLD
    return Retriever(
        index=index,
        embedder=embedder,
        default_collections=[settings.default_collection],
        reranker=reranker,
        abstain_threshold=threshold,
    )


__all__ = [
    "ABSTAIN_THRESHOLD",
    "MODES",
    "LocalReranker",
    "Mode",
    "QueryAnalysis",
    "Reranker",
    "RetrievalConfig",
    "Retriever",
    "SearchIndex",
    "analyse_query",
    "build_reranker",
    "build_retriever",
    "drop_duplicates",
    "fold_ws",
    "merge_adjacent",
    "relevance_of",
    "restrict_collections",
    "rrf",
    "term_coverage",
]
