"""Hybrid retrieval: dense search (Chroma) and French lexical search (SQLite FTS5), fused.

The pipeline of :meth:`Retriever.search`:

1. the question is analysed once: its lexical terms (stemmed, stop words dropped, see
   :mod:`assistant.textnorm`) and the legal/administrative references it names
   ("L. 2121-17", "n° 2014/131") as single tokens;
2. dense candidates (the query embedding, centred: see :func:`query_centre`) and lexical
   candidates (BM25) are fetched, plus, when the question names a reference, the passages
   holding that exact reference;
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

import math
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from assistant.config import Settings
from assistant.embeddings import Embedder, Vector, mismatch_message, same_embedder
from assistant.engine import open_llama
from assistant.errors import (
    AssistantError,
    CollectionNotFoundError,
    EmbedderMismatchError,
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
# Each embedder has its own figures: see :data:`CALIBRATIONS` (scripts/calibrate.py prints them).
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
    # Paraphrase: the dense side re-scores the fused head (its stored vectors, the query's
    # cosine): ``dense_rescore`` passages, score = (1 - w) * fused + w * cosine, both min-max
    # normalised over the head. 0 = off.
    dense_rescore: int = 0
    rescore_weight: float = 0.5
    # Paraphrase: the head is re-scored by the coverage of the question's terms in its best
    # sentence (rather than the passage as a whole); weight of that coverage, 0 = off.
    sentence_weight: float = 0.0
    merge_neighbours: bool = True  # adjacent chunks of the same article become one hit
    max_merged_chars: int = 4000  # never grow a merged hit beyond this
    # Hubness reduction: weight of the query bank's mean embedding taken off each query before
    # the dense search (see :func:`centre_query`); 0 = off.
    centering: float = 0.0


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
    seen: set[str] = set()
    by_source: dict[str, list[str]] = {}
    for hit in hits:
        text = fold_ws(hit.text)
        if text in seen:
            continue
        # Containment is looked for among the same document's kept chunks only (overlapping
        # chunks, merged neighbours): across documents only identical texts are duplicates.
        # Comparing every pair cost 12 ms a search at 100,000 passages.
        same = by_source.setdefault(hit.source, [])
        if len(text) > 80 and any(text in t for t in same):
            continue
        kept.append(hit)
        seen.add(text)
        same.append(text)
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


@dataclass(frozen=True)
class Calibration:
    """What depends on the embedder: its cosine band, the fusion weight, the abstention line.

    ``cosine_floor``/``cosine_ceiling``: the cosine similarity rescaled to [0, 1] for the
    relevance (below the floor: 0, above the ceiling: 1); ``lexical_share``: weight of BM25 in
    the convex fusion; ``abstain_threshold``: relevance below which drafting abstains;
    ``dense_rescore``: how many fused passages the dense side re-scores (0: none);
    ``centering``: weight of the query bank's mean taken off each query before the dense
    search (0: none; the relevance keeps the question's own cosine). Measured by
    ``scripts/calibrate.py`` on the dev questions and PIAF-ml (never held-out data).
    """

    cosine_floor: float
    cosine_ceiling: float
    lexical_share: float
    abstain_threshold: float
    dense_rescore: int = 0
    rescore_weight: float = 0.0
    dense_share: float = 0.7  # share of the rescaled cosine in the relevance, the rest coverage
    centering: float = 0.0


# all-MiniLM-L6-v2 on French: the best passage for an out-of-corpus question scores 0.38-0.57,
# for an answerable one 0.54-0.96 (scripts/bench_retrieval.py calibrate, before issue 11).
MINILM_CALIBRATION = Calibration(
    cosine_floor=0.45, cosine_ceiling=0.75, lexical_share=0.65, abstain_threshold=0.34
)
# multilingual-e5-small: cosines sit in a narrow band (about 0.75-0.9). Printed by
# scripts/calibrate.py on the whole shared corpus (1,695 passages) with the dev questions, the
# 30 paraphrase dev questions and PIAF-ml CRPA and SPF (docs/FIGURES.md, issue 11). Fusion grid
# over centering {0, 0.3, 0.5, 0.7} x lexical share {0.3..0.7}: without centering the mean MRR
# stays within 0.672-0.690 (recall@5 0.777-0.811); centering 0.7 with lexical share 0.3 gives
# MRR 0.694, recall@5 0.869 (paraphrase recall@5 0.50 -> 0.63); the best MRR, 0.706 at
# centering 0.5, is within noise and finds fewer (0.852). Relevance = 0.7 x the question's own
# (uncentred) cosine rescaled over [0.874, 0.900] + 0.3 x term coverage; threshold 0.245
# declines all 80 out-of-corpus searches (max 0.225) and keeps 84.7 % of the answerable
# questions. On the centred cosine instead, the best band kept 80.9 % and declined two
# answerable drafting requests of tests/data (C04, Q01).
# Lexical share 0.3 -> 0.5 (session 29): the questions above do not choose between them (MRR
# dev 0.95 -> 0.88, paraphrase 0.58 -> 0.66, PIAF CRPA 0.699 -> 0.685, SPF 0.962 -> 0.960;
# mean 0.798 -> 0.797), but a drafting request does. Its words name the act or fiche (« CCAS »,
# « Maison pour Tous », « compte rendu ») while e5 puts the code's long chapters near any
# municipal request: at 0.3 a passage only the lexical side finds can score 0.3 at most
# against 0.7 for the dense head, and the act is not shown. MRR of the expected document for
# the request's text (tests/data/drafting_requests.jsonl, 30 requests): 0.79 -> 0.90; the
# held-out files, read after the choice: 0.79 -> 0.90, 0.68 -> 0.90, and 0.40 -> 0.89 on 14
# requests written on documents no request had used. 0.65: paraphrase R@5 0.80 -> 0.67.
# The 80 out-of-corpus searches still score at most 0.225. Figures: docs/eval/drafts.md,
# fifteenth pass.
E5_CALIBRATION = Calibration(
    cosine_floor=0.874,
    cosine_ceiling=0.9,
    lexical_share=0.5,
    abstain_threshold=0.245,
    dense_rescore=0,
    rescore_weight=0.0,
    dense_share=0.7,
    centering=0.7,
)
CALIBRATIONS: dict[str, Calibration] = {
    "all-minilm-l6-v2-f32.gguf": MINILM_CALIBRATION,
    "multilingual-e5-small-q4_0.gguf": E5_CALIBRATION,
}
# Kept for callers of the MiniLM-era names.
COSINE_FLOOR = MINILM_CALIBRATION.cosine_floor
COSINE_CEILING = MINILM_CALIBRATION.cosine_ceiling
DENSE_SHARE = 0.7


def calibration_for(embedder: Embedder | None) -> Calibration:
    """The calibration of an embedder (by model file name); MiniLM's for an unknown one, with
    the e5 figures for any file whose name says e5 (the family shares the cosine band)."""
    name = getattr(embedder, "name", "") or ""
    if name in CALIBRATIONS:
        return CALIBRATIONS[name]
    return E5_CALIBRATION if "e5" in name.lower() else MINILM_CALIBRATION


def relevance_of(
    cosine: float | None,
    coverage: float,
    floor: float = COSINE_FLOOR,
    ceiling: float = COSINE_CEILING,
    dense_share: float = DENSE_SHARE,
) -> float:
    """Relevance in [0, 1]: ``DENSE_SHARE`` of the cosine similarity rescaled over
    [floor, ceiling] (the embedder's band, :class:`Calibration`), the rest from the coverage of
    the question's terms.

    Without a cosine (lexical mode) the coverage alone counts, discounted: term overlap alone
    is weak evidence in a large corpus (an unrelated question still finds most of its words).
    """
    if cosine is None:
        return max(0.0, min(1.0, 0.6 * coverage))
    dense = max(0.0, min(1.0, (cosine - floor) / (ceiling - floor)))
    return max(0.0, min(1.0, dense_share * dense + (1 - dense_share) * coverage))


# --------------------------------------------------------------------------------------------
# Long requests: searched by their questions


_SENTENCE_END = re.compile(r"(?<=[.?!;])\s+|\n\s*\n|\n(?=\s*[-*•\d])")
# Letter formulas that say nothing about the topic (folded prefixes). Hand-written: no library
# of the stack knows French letter conventions.
_FORMULAS = (
    "madame", "monsieur", "bonjour", "je vous prie", "veuillez agreer", "je vous remercie",
    "merci", "cordialement", "dans l'attente", "salutations", "bien a vous", "recevez",
    "objet", "je me permets", "je soussigne",
)  # fmt: skip
LONG_REQUEST_WORDS = 60  # a request longer than this is searched by its parts
MAX_SUBQUERIES = 8


def split_request(text: str, max_parts: int = MAX_SUBQUERIES) -> list[str]:
    """The parts of a long request worth searching for: its questions first, then its other
    sentences that carry at least 4 lexical terms (formulas of politeness dropped), in order.

    A request of at most :data:`LONG_REQUEST_WORDS` words is returned whole (one part).
    Neighbouring short sentences are joined so that each part has some context.
    """
    text = text.strip()
    if len(text.split()) <= LONG_REQUEST_WORDS:
        return [text] if text else []
    sentences = [fold_ws(p) for p in _SENTENCE_END.split(text)]
    questions: list[str] = []
    others: list[str] = []
    pending = ""
    for sentence in sentences:
        if not sentence:
            continue
        folded = fold(sentence)
        if folded.startswith(_FORMULAS) and "?" not in sentence and len(sentence.split()) <= 20:
            continue
        if len(lexical_terms(sentence)) < 4 and "?" not in sentence:
            pending = f"{pending} {sentence}".strip()  # too thin alone: joined to the next
            continue
        part = f"{pending} {sentence}".strip() if pending else sentence
        pending = ""
        (questions if "?" in sentence else others).append(part)
    if pending and len(lexical_terms(pending)) >= 4:
        others.append(pending)
    parts = list(dict.fromkeys(questions + others))  # a repeated sentence is searched once
    return parts[:max_parts] if parts else [fold_ws(text)]


# --------------------------------------------------------------------------------------------
# Hubness reduction by centering
#
# Embedders such as multilingual-e5 put every question in a narrow cone (the mean of 98 unit
# query vectors has norm 0.92), so a short, generic passage ("La commune peut-elle reprendre
# une concession ? Oui, dans 2 cas.") is near *every* question and crowds the top 5 of
# unrelated ones: a "hub". Taking the mean query direction off the query before the dense
# search is the centering of Suzuki et al., "Centering Similarity Measures to Reduce Hubs"
# (EMNLP 2013): the score becomes q.p - w * mean_q.p, i.e. how much closer a passage is to
# this question than to questions in general. Written here because it is a few lines of
# arithmetic on vectors the index already returns; no library of the stack offers it.

QUERY_BANK = Path(__file__).with_name("data") / "query_bank.txt"

_CENTRES: dict[str, Vector] = {}
_CENTRES_LOCK = threading.Lock()


def load_query_bank(path: Path = QUERY_BANK) -> list[str]:
    """The bank's questions (one per line; blank lines and ``#`` comments skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def query_centre(embedder: Embedder) -> Vector:
    """The mean of the unit embeddings of the query bank (:data:`QUERY_BANK`), as a vector of
    the embedder's dimension (not normalised). Embedded in one batch the first time an
    embedder (by its ``identity``) asks for it, then kept for the process: about 0.9 s for the
    98 questions with multilingual-e5-small on 2 cores."""
    key = embedder.identity
    with _CENTRES_LOCK:
        if key not in _CENTRES:
            vectors = embedder.embed_queries(load_query_bank())
            dim = len(vectors[0])
            _CENTRES[key] = [sum(v[i] for v in vectors) / len(vectors) for i in range(dim)]
        return _CENTRES[key]


def centre_query(vector: Sequence[float], centre: Sequence[float], weight: float) -> Vector:
    """``vector - weight * centre``, as a unit vector (``vector`` is a unit query embedding).

    Cosine ranking with the result equals ranking by ``q.p - weight * centre.p`` for unit
    passages ``p``. Raises ``ValueError`` if the dimensions differ."""
    if len(vector) != len(centre):
        raise ValueError(f"dimensions differ: {len(vector)} != {len(centre)}")
    shifted = [a - weight * b for a, b in zip(vector, centre, strict=True)]
    norm = math.sqrt(sum(x * x for x in shifted)) or 1.0
    return [x / norm for x in shifted]


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
    calibration: Calibration = MINILM_CALIBRATION
    # Optional: writes a search query in the documents' vocabulary (e.g. the chat model) when
    # the first retrieval is weak (best relevance below ``rewrite_below``); its hits are fused.
    rewriter: Callable[[str], str] | None = None
    rewrite_below: float = 0.0
    last_rewrite: str | None = field(default=None, repr=False)

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
        [0, 1]. A request longer than :data:`LONG_REQUEST_WORDS` words (a pasted letter) goes to
        :meth:`search_long`.
        """
        if mode not in MODES:
            raise AssistantError(
                f"Mode de recherche inconnu : {mode!r}. Choisissez parmi {', '.join(MODES)}."
            )
        query = query.strip()
        if not query or k <= 0:
            return []
        if len(query.split()) > LONG_REQUEST_WORDS:
            return self.search_long(query, collections, k, doc_types, mode, allowed=allowed)
        hits = self._search_one(query, collections, k, doc_types, mode, allowed=allowed)
        if (
            self.rewriter is not None
            and mode != "lexical"
            and self.relevance(hits) < self.rewrite_below
        ):
            hits = self._with_rewrite(query, hits, collections, k, doc_types, mode, allowed)
        return hits

    def search_long(
        self,
        text: str,
        collections: list[str] | None = None,
        k: int = 6,
        doc_types: list[str] | None = None,
        mode: Mode = "hybrid",
        allowed: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Search a long request (a resident's letter, a long brief) by its parts.

        The text is split into its questions and substantive sentences
        (:func:`split_request`); each part is searched on its own and the ranked lists are
        fused by reciprocal rank fusion (a question weighs twice a plain sentence). A hit's
        ``relevance`` is the best it reached for any part, so relevance does not fall as the
        text grows; ``metadata["subquery"]`` names that part.
        """
        parts = split_request(text)
        if len(parts) <= 1:
            return self._search_one(
                parts[0] if parts else text, collections, k, doc_types, mode, allowed=allowed
            )
        vectors: list[Vector | None] = [None] * len(parts)
        if mode != "lexical" and self.embedder is not None:
            vectors = list(self.embedder.embed_queries(parts))  # one backend call
        lists: list[tuple[list[Hit], float]] = []
        best: dict[str, Hit] = {}
        for part, vector in zip(parts, vectors, strict=True):
            hits = self._search_one(
                part, collections, max(k, 10), doc_types, mode, vector=vector, allowed=allowed
            )
            lists.append((hits, 2.0 if "?" in part else 1.0))
            for hit in hits:
                rel = float(hit.metadata.get("relevance") or 0.0)
                kept = best.get(hit.id)
                if kept is None or rel > float(kept.metadata.get("relevance") or 0.0):
                    hit.metadata["subquery"] = part
                    best[hit.id] = hit
        scores, _by_id, _ranks = rrf(lists, self.config.rrf_k)
        order = sorted(scores, key=lambda i: (-scores[i], i))
        out = [replace(best[i], score=scores[i]) for i in order]
        return drop_duplicates(out)[:k]

    def _with_rewrite(
        self,
        query: str,
        hits: list[Hit],
        collections: list[str] | None,
        k: int,
        doc_types: list[str] | None,
        mode: Mode,
        allowed: Sequence[str] | None = None,
    ) -> list[Hit]:
        """The hits of a rewritten query (the rewriter's), then the first ones."""
        assert self.rewriter is not None
        rewritten = self.rewriter(query).strip()
        self.last_rewrite = rewritten or None
        if not rewritten or fold(rewritten) == fold(query):
            return hits
        second = self._search_one(rewritten, collections, k, doc_types, mode, allowed=allowed)
        # The rewrite is asked for because the first retrieval was weak: its order leads (a
        # rank fusion with the weak list would mostly keep the weak list's head), and the first
        # retrieval's passages fill the rest. A passage found only by the rewritten query cannot
        # raise the relevance above what the agent's own words reached: the abstention decision
        # stays the first retrieval's.
        first = {h.id: h for h in hits}
        ceiling = self.relevance(hits)
        out: list[Hit] = []
        for hit in second:
            if hit.id in first:
                out.append(replace(first[hit.id], score=hit.score))
                continue
            rel = min(float(hit.metadata.get("relevance") or 0.0), ceiling)
            hit.metadata["relevance"] = round(rel, 4)
            hit.metadata["rewritten"] = rewritten
            out.append(hit)
        seen = {h.id for h in out}
        out.extend(h for h in hits if h.id not in seen)
        return drop_duplicates(out)[:k]

    def _search_one(
        self,
        query: str,
        collections: list[str] | None,
        k: int,
        doc_types: list[str] | None,
        mode: Mode,
        vector: Vector | None = None,
        allowed: Sequence[str] | None = None,
    ) -> list[Hit]:
        """One query (see :meth:`search`); ``vector``: its embedding when already computed."""
        cols = list(collections) if collections else list(self.default_collections)
        if allowed is not None:
            cols = restrict_collections(cols, allowed, explicit=bool(collections))
        self._check_collections(cols, dense=mode != "lexical")
        where = _doc_type_filter(doc_types)
        analysis = analyse_query(query)
        cfg = self.config
        n = max(cfg.candidates, 3 * k)

        dense: list[Hit] = []
        lexical: list[Hit] = []
        referenced: list[Hit] = []
        uncentred: Vector | None = None  # the query's own embedding, when centering moved it
        if mode in ("hybrid", "dense"):
            if self.embedder is None:
                raise AssistantError(
                    "La recherche sémantique demande un modèle d'embeddings. Installez-le "
                    "(« assistant models install ») ou utilisez le mode lexical."
                )
            if vector is None:
                vector = self.embedder.embed_query(query)
            if cfg.centering:
                uncentred = vector
                vector = centre_query(vector, query_centre(self.embedder), cfg.centering)
            dense = self.index.dense_search(cols, vector, n, where)
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
        if cfg.dense_rescore and vector is not None and order:
            order = self._dense_rescore(order, scores, by_id, cosine, vector)
        if cfg.sentence_weight and order:
            order = self._sentence_rescore(order, scores, by_id, analysis.terms)

        if self.reranker is not None and order:
            head = order[: cfg.rerank_top]
            rerank = self.reranker.score(query, [by_id[i].text for i in head])
            rerank_of = dict(zip(head, rerank, strict=True))
            head.sort(key=lambda i: (-rerank_of[i], -scores[i]))
            order = head + order[cfg.rerank_top :]

        hits: list[Hit] = []
        # Only the head can be returned (merging looks at 3k hits, duplicates may drop some).
        for hit_id in order[: max(6 * k, 30)]:
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
        if uncentred is not None:
            # The relevance is calibrated on the question's own cosine, whatever ranked.
            own = self._cosines(hits, uncentred)
            for hit in hits:
                hit.metadata["cosine"] = own.get(hit.id, hit.metadata.get("cosine"))
        # A passage outside the dense candidates has a cosine at most the last candidate's.
        bound = min(cosine.values()) if cosine else None
        for hit in hits:
            cov = term_coverage(analysis.terms, f"{hit.heading}\n{hit.text}")
            cos = hit.metadata.get("cosine")
            if not isinstance(cos, float):
                cos = bound
            hit.metadata["coverage"] = round(cov, 4)
            hit.metadata["relevance_cosine"] = cos  # what the relevance used (calibration)
            cal = self.calibration
            rel = relevance_of(cos, cov, cal.cosine_floor, cal.cosine_ceiling, cal.dense_share)
            hit.metadata["relevance"] = round(rel, 4)
        return hits

    def _cosines(self, hits: list[Hit], vector: Vector) -> dict[str, float]:
        """``vector``'s cosine with each hit, from the passages' stored vectors (one fetch per
        collection, about 2 ms for 6 passages among 100,000); empty when the index cannot
        return vectors."""
        fetch = getattr(self.index, "vectors", None)
        if fetch is None:
            return {}
        by_col: dict[str, list[str]] = {}
        for hit in hits:
            by_col.setdefault(hit.collection, []).append(hit.id)
        out: dict[str, float] = {}
        for col, ids in by_col.items():
            for hit_id, vec in fetch(col, ids).items():
                out[hit_id] = sum(a * b for a, b in zip(vec, vector, strict=False))
        return out

    def _dense_rescore(
        self,
        order: list[str],
        scores: dict[str, float],
        by_id: dict[str, Hit],
        cosine: dict[str, float],
        vector: Vector,
    ) -> list[str]:
        """Re-score the fused head with the dense side: passages the dense search did not
        return get their real cosine from their stored vectors (fetched, not re-embedded)."""
        cfg = self.config
        head = order[: cfg.dense_rescore]
        missing = [by_id[i] for i in head if i not in cosine]
        if missing:
            cosine.update(self._cosines(missing, vector))
        floor = min(cosine.values()) if cosine else 0.0
        cos = {i: cosine.get(i, floor) for i in head}
        fused = {i: scores[i] for i in head}
        cos_n, fused_n = _normalise(cos), _normalise(fused)
        w = cfg.rescore_weight
        for i in head:
            scores[i] = (1 - w) * fused_n[i] + w * cos_n[i] + 10.0  # the head stays first
        head.sort(key=lambda i: (-scores[i], i))
        return head + order[cfg.dense_rescore :]

    def _sentence_rescore(
        self,
        order: list[str],
        scores: dict[str, float],
        by_id: dict[str, Hit],
        terms: Sequence[str],
    ) -> list[str]:
        """Re-score the fused head by the coverage of the question in the passage's best
        sentence (a passage that says it in one sentence beats one that scatters the words)."""
        cfg = self.config
        head = order[: max(cfg.rerank_top, 10)]
        fused_n = _normalise({i: scores[i] for i in head})
        for i in head:
            best = max(
                (term_coverage(terms, s) for s in split_sentences(by_id[i].text)), default=0.0
            )
            scores[i] = fused_n[i] + cfg.sentence_weight * best + 10.0
        head.sort(key=lambda i: (-scores[i], i))
        return head + order[len(head) :]

    def _check_collections(self, cols: list[str], dense: bool = True) -> None:
        """Refuse unknown collections, and (for a dense search) collections whose vectors come
        from another embedder than ours (:class:`EmbedderMismatchError`, with the fix)."""
        has = getattr(self.index, "has_collection", None)
        if has is None:
            return
        missing = [c for c in cols if not has(c)]
        if missing:
            raise CollectionNotFoundError(
                f"Collection inconnue : {', '.join(missing)}. Listez-les avec « assistant ingest "
                "--list » ou créez-la avec « assistant ingest DOSSIER --collection NOM »."
            )
        recorded = getattr(self.index, "collection_embedder", None)
        if not dense or recorded is None or self.embedder is None:
            return
        identity = self.embedder.identity
        for col in cols:
            stored = recorded(col)
            if stored and not same_embedder(stored, identity):
                raise EmbedderMismatchError(mismatch_message(col, stored, identity))

    def warm_up(self) -> None:
        """Embed the query bank now when centering is on (:func:`query_centre`, about 0.9 s
        with e5 on 2 cores), so that a server's first search does not wait for it."""
        if self.config.centering and self.embedder is not None:
            query_centre(self.embedder)

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


def _normalise(values: dict[str, float]) -> dict[str, float]:
    """Min-max normalisation to [0, 1] (all equal: 1)."""
    if not values:
        return {}
    low, high = min(values.values()), max(values.values())
    span = high - low
    return {i: (v - low) / span if span > 0 else 1.0 for i, v in values.items()}


_SENTENCES = re.compile(r"(?<=[.?!;:])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Sentences (and list items, lines) of a passage, whitespace folded, empty ones dropped."""
    return [fold_ws(p) for p in _SENTENCES.split(text) if p.strip()]


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
    calibration = calibration_for(embedder)
    config = RetrievalConfig(
        lexical_share=calibration.lexical_share,
        dense_rescore=calibration.dense_rescore,
        rescore_weight=calibration.rescore_weight,
        centering=calibration.centering,
    )
    threshold = settings.abstain_threshold or calibration.abstain_threshold
    return Retriever(
        index=index,
        embedder=embedder,
        default_collections=[settings.default_collection],
        reranker=reranker,
        config=config,
        abstain_threshold=threshold,
        calibration=calibration,
    )


__all__ = [
    "ABSTAIN_THRESHOLD",
    "CALIBRATIONS",
    "LONG_REQUEST_WORDS",
    "MODES",
    "QUERY_BANK",
    "Calibration",
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
    "calibration_for",
    "centre_query",
    "drop_duplicates",
    "fold_ws",
    "load_query_bank",
    "merge_adjacent",
    "query_centre",
    "relevance_of",
    "restrict_collections",
    "rrf",
    "split_request",
    "split_sentences",
    "term_coverage",
]
