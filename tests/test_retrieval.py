"""Hybrid retrieval: fusion, references, filters, de-duplication, neighbour merging, relevance.

Uses the real index (Chroma in a temp dir + SQLite FTS5) with the bag-of-words FakeEmbedder.
"""

from __future__ import annotations

from typing import Any

import pytest

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.retrieval import (
    ABSTAIN_THRESHOLD,
    Reranker,
    Retriever,
    analyse_query,
    build_retriever,
    drop_duplicates,
    merge_adjacent,
    relevance_of,
    rrf,
    term_coverage,
)
from assistant.schema import Chunk, Hit
from assistant.store import Index, build_index
from tests.fakes import FakeEmbedder


def hit(
    id_: str,
    text: str = "",
    source: str = "a.md",
    index: int = 0,
    heading: str = "",
    page: int | None = None,
) -> Hit:
    return Hit(
        id=id_,
        text=text or f"texte {id_}",
        source=source,
        page=page,
        heading=heading,
        title=source,
        collection="c",
        score=0.0,
        metadata={"chunk_index": index},
    )


# --- pure functions ------------------------------------------------------------------------------


def test_rrf_rewards_agreement_between_lists() -> None:
    a, b, c = hit("a"), hit("b"), hit("c")
    scores, by_id, ranks = rrf([([a, b], 1.0), ([c, b], 1.0)], k=60)
    assert max(scores, key=scores.__getitem__) == "b"  # second in both beats first in one
    assert ranks[0] == {"a": 1, "b": 2} and ranks[1] == {"c": 1, "b": 2}
    assert set(by_id) == {"a", "b", "c"}


def test_rrf_weights_scale_a_list() -> None:
    a, c = hit("a"), hit("c")
    scores, _, _ = rrf([([a], 1.0), ([c], 2.0)], k=60)
    assert scores["c"] == pytest.approx(2 * scores["a"])


def test_analyse_query_finds_references_in_any_spelling() -> None:
    for text in ("article L2121-17 du CGCT", "l'article L. 2121-17", "art. l.2121-17"):
        assert "l2121x17" in analyse_query(text).references, text
    q = analyse_query("délibération n° 2014/131 du conseil")
    assert "2014x131" in q.references
    assert "conseil" in q.terms and "du" not in q.terms  # stop words dropped


def test_merge_adjacent_joins_one_article_and_removes_the_overlap() -> None:
    first = hit(
        "a1", "Le conseil se réunit. Il délibère à la majorité", index=3, heading="Art. 1", page=2
    )
    second = hit("a2", "à la majorité des suffrages exprimés.", index=4, heading="Art. 1", page=3)
    other = hit("b", "Autre document", source="b.md", index=4, heading="Art. 1")
    merged = merge_adjacent([second, other, first])
    assert [h.source for h in merged] == ["a.md", "b.md"]
    text = merged[0].text
    assert text == "Le conseil se réunit. Il délibère à la majorité des suffrages exprimés."
    assert merged[0].metadata["chunk_ids"] == ["a1", "a2"]
    assert merged[0].metadata["pages"] == [2, 3] and merged[0].page == 2
    assert merged[0].id == "a2"  # the best-ranked part gives the id


def test_merge_adjacent_keeps_different_articles_and_far_chunks_apart() -> None:
    hits = [
        hit("x1", "fin de l'article 1", index=1, heading="Art. 1"),
        hit("x2", "début de l'article 2", index=2, heading="Art. 2"),
        hit("x9", "plus loin", index=9, heading="Art. 1"),
    ]
    assert [h.id for h in merge_adjacent(hits)] == ["x1", "x2", "x9"]


def test_merge_adjacent_respects_the_size_cap() -> None:
    hits = [hit("a", "x" * 300, index=0), hit("b", "y" * 300, index=1)]
    assert len(merge_adjacent(hits, max_chars=500)) == 2
    assert len(merge_adjacent(hits, max_chars=700)) == 1


def test_drop_duplicates_keeps_the_better_ranked_copy() -> None:
    text = "Le conseil municipal règle par ses délibérations les affaires de la commune. " * 2
    hits = [
        hit("a", text, source="a.pdf"),
        hit("b", text.replace(" ", "  "), source="copie.pdf"),
        hit("c"),
    ]
    assert [h.id for h in drop_duplicates(hits)] == ["a", "c"]


def test_relevance_grows_with_similarity_and_coverage() -> None:
    assert relevance_of(0.7, 1.0) > relevance_of(0.4, 1.0) > relevance_of(0.4, 0.0)
    assert relevance_of(-1.0, 0.0) >= 0.0 and relevance_of(2.0, 2.0) <= 1.0
    assert term_coverage(analyse_query("quorum du conseil").terms, "Le quorum du Conseil.") == 1.0
    assert term_coverage(analyse_query("tarte tatin").terms, "Le quorum du conseil.") == 0.0


# --- the retriever on a real index ---------------------------------------------------------------

DOCS: dict[str, list[tuple[str, str, str]]] = {
    # source: [(heading, text, doc_type)]
    "lois/cgct.md": [
        (
            "Article L2121-17",
            "Le conseil municipal ne délibère valablement que lorsque la "
            "majorité de ses membres en exercice est présente.",
            "loi",
        ),
        (
            "Article L2121-18",
            "Les séances des conseils municipaux sont publiques. Voir aussi "
            "l'article L. 2121-17 pour le quorum.",
            "loi",
        ),
        (
            "Article L2121-20",
            "En application de l'article L. 2121-17, le quorum prévu à "
            "l'article L2121-17 s'apprécie à l'ouverture de la séance (article L. 2121-17).",
            "loi",
        ),
        ("Article L2122-7", "Le maire est élu au scrutin secret et à la majorité absolue.", "loi"),
    ],
    "delib/2014-131.pdf": [
        (
            "",
            "Délibération n° 2014/131 : le conseil fixe le nombre des adjoints au maire à vingt.",
            "deliberation",
        ),
    ],
    "fiches/buvette.md": [
        (
            "Buvette temporaire",
            "Une association peut ouvrir une buvette temporaire lors d'une "
            "manifestation, avec l'autorisation du maire, dans la limite de cinq par an.",
            "fiche",
        ),
        (
            "Buvette temporaire",
            "Les boissons des groupes un et trois seulement peuvent y être vendues.",
            "fiche",
        ),
    ],
}


def _index(
    settings: Settings, emb: FakeEmbedder, collection: str = "mairie", docs: Any = None
) -> Index:
    index = build_index(settings)
    index.ensure_collection(collection, embedder=emb.name)
    for source, parts in (docs or DOCS).items():
        chunks = [
            Chunk(
                id=f"{collection}:{source}:{i}",
                text=text,
                metadata={
                    "source": source,
                    "heading": heading,
                    "title": source,
                    "chunk_index": i,
                    "doc_type": doc_type,
                    "page": 1 if source.endswith(".pdf") else None,
                },
            )
            for i, (heading, text, doc_type) in enumerate(parts)
        ]
        chunks = [
            Chunk(c.id, c.text, {k: v for k, v in c.metadata.items() if v is not None})
            for c in chunks
        ]
        index.replace_document(
            collection, source, "h" * 64, chunks, emb.embed([c.text for c in chunks]), title=source
        )
    return index


@pytest.fixture
def retriever(settings: Settings) -> Retriever:
    emb = FakeEmbedder()
    return build_retriever(
        settings.model_copy(update={"default_collection": "mairie"}),
        index=_index(settings, emb),
        embedder=emb,
    )


def test_named_article_comes_first_in_every_spelling(retriever: Retriever) -> None:
    for query in ("Que dit l'article L. 2121-17 ?", "article L2121-17 du CGCT", "l2121-17"):
        hits = retriever.search(query, k=3)
        assert hits[0].heading == "Article L2121-17", query
        assert hits[0].metadata["reference_rank"] is not None


def test_numbered_act_is_found_by_its_number(retriever: Retriever) -> None:
    hits = retriever.search("délibération n°2014-131", k=2)
    assert hits[0].source == "delib/2014-131.pdf"


def test_accents_and_case_do_not_matter(retriever: Retriever) -> None:
    a = retriever.search("DELIBERE VALABLEMENT MAJORITE", k=1, mode="lexical")
    b = retriever.search("délibère valablement majorité", k=1, mode="lexical")
    assert a and [h.id for h in a] == [h.id for h in b]
    assert "valablement" in a[0].text


def test_modes_fill_their_own_ranks(retriever: Retriever) -> None:
    dense = retriever.search("buvette association", k=3, mode="dense")
    lexical = retriever.search("buvette association", k=3, mode="lexical")
    assert all(h.metadata["lexical_rank"] is None for h in dense)
    assert all(h.metadata["dense_rank"] is None for h in lexical)
    hybrid = retriever.search("buvette association", k=3)
    assert hybrid[0].metadata["dense_rank"] is not None
    assert hybrid[0].metadata["lexical_rank"] is not None
    with pytest.raises(AssistantError):
        retriever.search("buvette", mode="semantique")  # type: ignore[arg-type]


def test_doc_type_filter(retriever: Retriever) -> None:
    hits = retriever.search("maire conseil", k=10, doc_types=["deliberation"])
    assert hits and {h.source for h in hits} == {"delib/2014-131.pdf"}
    hits = retriever.search("maire conseil", k=10, doc_types=["deliberation", "fiche"])
    assert {h.metadata["doc_type"] for h in hits} <= {"deliberation", "fiche"}


def test_collection_filter(settings: Settings) -> None:
    emb = FakeEmbedder()
    index = _index(settings, emb)
    _index(
        settings, emb, "urbanisme", {"pc.md": [("", "Le permis de construire du maire", "fiche")]}
    )
    r = build_retriever(settings, index=index, embedder=emb)
    assert {h.collection for h in r.search("maire", collections=["urbanisme"], k=5)} == {
        "urbanisme"
    }
    both = {h.collection for h in r.search("maire", collections=["urbanisme", "mairie"], k=10)}
    assert both == {"urbanisme", "mairie"}


def test_consecutive_chunks_of_one_article_are_merged(retriever: Retriever) -> None:
    hits = retriever.search("buvette temporaire boissons association", k=4)
    buvette = [h for h in hits if h.source == "fiches/buvette.md"]
    assert len(buvette) == 1
    assert "cinq par an" in buvette[0].text and "groupes un et trois" in buvette[0].text


def test_relevance_separates_in_and_out_of_corpus(retriever: Retriever) -> None:
    inside = retriever.search("Quel quorum pour que le conseil municipal délibère valablement ?")
    outside = retriever.search("Recette de la tarte tatin caramélisée")
    assert retriever.relevance(inside) > retriever.relevance(outside)
    assert not retriever.should_abstain(inside)
    assert retriever.should_abstain(outside)
    assert all(0.0 <= h.metadata["relevance"] <= 1.0 for h in inside + outside)


def test_abstain_threshold_setting_overrides_the_default(settings: Settings) -> None:
    emb = FakeEmbedder()
    index = _index(settings, emb)
    assert (
        build_retriever(settings, index=index, embedder=emb).abstain_threshold == ABSTAIN_THRESHOLD
    )
    custom = settings.model_copy(update={"abstain_threshold": 0.9})
    assert build_retriever(custom, index=index, embedder=emb).abstain_threshold == 0.9


class ReverseReranker(Reranker):
    """Prefers the passages the fusion liked least (to see that its order wins)."""

    name = "reverse"

    def __init__(self) -> None:
        self.calls = 0

    def score(self, query: str, passages: list[str]) -> list[float]:
        self.calls += 1
        return [float(i) for i in range(len(passages))]


def test_reranker_reorders_the_head(settings: Settings) -> None:
    emb = FakeEmbedder()
    index = _index(settings, emb)
    plain = build_retriever(settings, index=index, embedder=emb)
    plain.config.merge_neighbours = False
    reranker = ReverseReranker()
    reranked = build_retriever(settings, index=index, embedder=emb, reranker=reranker)
    reranked.config.merge_neighbours = False
    query = "maire conseil majorité"
    a = plain.search(query, collections=["mairie"], k=10)
    b = reranked.search(query, collections=["mairie"], k=10)
    assert reranker.calls == 1
    assert [h.id for h in b] == [h.id for h in reversed(a)]


def test_empty_query_returns_nothing(retriever: Retriever) -> None:
    assert retriever.search("   ") == []
    assert retriever.relevance([]) == 0.0


def test_article_number_without_code_prefix_finds_the_article(retriever: Retriever) -> None:
    assert "l2121x17" in analyse_query("article 2121-17").references
    assert analyse_query("délibération 2014-131").references == ("2014x131",)  # a year: no prefix
    hits = retriever.search("Que prévoit l'article 2121-17 ?", k=2)
    assert hits[0].heading == "Article L2121-17"


def test_unknown_collection_is_refused_with_the_fix(retriever: Retriever) -> None:
    from assistant.errors import CollectionNotFoundError

    with pytest.raises(CollectionNotFoundError, match="assistant ingest"):
        retriever.search("maire", collections=["inconnue"])


def test_convex_fusion_weighs_normalised_scores() -> None:
    from assistant.retrieval import RetrievalConfig, convex_fusion

    def scored(id_: str, score: float) -> Hit:
        h = hit(id_)
        h.score = score
        return h

    lexical = [scored("lex", 12.0), scored("both", 6.0), scored("low", 2.0)]
    dense = [scored("den", 0.8), scored("both", 0.7), scored("low2", 0.4)]
    s = convex_fusion(dense, lexical, [], RetrievalConfig(lexical_share=0.65))
    assert s["lex"] == pytest.approx(0.65) and s["den"] == pytest.approx(0.35)
    assert s["both"] == pytest.approx(0.65 * 0.4 + 0.35 * 0.75)
    assert s["low"] == 0.0 and s["low2"] == 0.0
    assert max(s, key=s.__getitem__) == "lex"
    s = convex_fusion(dense, lexical, [scored("both", 1.0)], RetrievalConfig(lexical_share=0.65))
    assert max(s, key=s.__getitem__) == "both"  # holding the named reference lifts it


# --- issue 11: per-embedder calibration, long requests, paraphrase re-scoring -----------------


def test_each_embedder_has_its_calibration(settings: Settings) -> None:
    from assistant.retrieval import (
        CALIBRATIONS,
        E5_CALIBRATION,
        MINILM_CALIBRATION,
        calibration_for,
    )

    class E5Like(FakeEmbedder):
        name = "multilingual-e5-small-q4_0.gguf"

    assert calibration_for(E5Like()) is E5_CALIBRATION
    assert calibration_for(FakeEmbedder()) is MINILM_CALIBRATION
    assert set(CALIBRATIONS) >= {"multilingual-e5-small-q4_0.gguf", "all-minilm-l6-v2-f32.gguf"}
    # e5 cosines sit high: a cosine that is strong for MiniLM is weak for e5.
    e5 = E5_CALIBRATION
    assert relevance_of(0.78, 0.0, e5.cosine_floor, e5.cosine_ceiling) < relevance_of(0.78, 0.0)
    emb = E5Like()
    retriever = build_retriever(settings, index=_index(settings, emb), embedder=emb)
    assert retriever.calibration is e5 and retriever.abstain_threshold == e5.abstain_threshold
    assert retriever.config.lexical_share == e5.lexical_share


def test_split_request_keeps_questions_and_drops_formulas() -> None:
    from assistant.retrieval import LONG_REQUEST_WORDS, split_request

    short = "Quel quorum pour le conseil municipal ?"
    assert split_request(short) == [short]
    letter = (
        "Madame, Monsieur le Maire,\n\n"
        + "Nous habitons la commune depuis longtemps et tenons à nos habitudes de quartier. " * 6
        + "Mon association voudrait ouvrir une buvette temporaire lors de la fête du village. "
        "Combien de buvettes le maire peut-il autoriser par an ? "
        "Quelles boissons pourrons-nous vendre ?\n\n"
        "Je vous prie d'agréer, Monsieur le Maire, mes salutations distinguées."
    )
    assert len(letter.split()) > LONG_REQUEST_WORDS
    parts = split_request(letter)
    assert parts[0].endswith("Combien de buvettes le maire peut-il autoriser par an ?")
    assert parts[1] == "Quelles boissons pourrons-nous vendre ?"
    assert not any("agréer" in p or p.startswith("Madame") for p in parts)
    assert any("buvette temporaire" in p for p in parts[2:])
    assert len(split_request(letter, max_parts=2)) == 2


def test_a_long_request_is_searched_by_its_questions(retriever: Retriever) -> None:
    question = "Combien de buvettes temporaires le maire peut-il autoriser par an ?"
    filler = (
        "Notre association de parents d'élèves organise chaque année plusieurs animations pour "
        "financer les sorties scolaires des enfants de l'école primaire. "
    )
    letter = "Madame, Monsieur le Maire,\n\n" + filler * 12 + question + "\n\n" + filler * 12
    assert len(letter.split()) > 400
    short = retriever.search(question, k=3)
    long = retriever.search(letter, k=3)
    assert short[0].source == long[0].source == "fiches/buvette.md"
    # Relevance does not fall with the request's length (the best part counts).
    assert retriever.relevance(long) >= retriever.relevance(short) - 1e-9
    assert question in long[0].metadata["subquery"]
    # One backend call embeds all the parts.
    emb = retriever.embedder
    assert isinstance(emb, FakeEmbedder)
    emb.calls.clear()
    retriever.search(letter, k=3)
    assert emb.calls == [len(split_request_parts(letter))]


def split_request_parts(text: str) -> list[str]:
    from assistant.retrieval import split_request

    return split_request(text)


def test_dense_rescore_and_best_sentence_reorder_only_the_head(retriever: Retriever) -> None:
    from dataclasses import replace

    query = "Quelles boissons peut-on vendre à une buvette temporaire ?"
    base = retriever.search(query, k=5)
    rescored = replace(
        retriever, config=replace(retriever.config, dense_rescore=3, rescore_weight=0.5)
    ).search(query, k=5)
    sentence = replace(retriever, config=replace(retriever.config, sentence_weight=0.5)).search(
        query, k=5
    )
    for hits in (rescored, sentence):
        assert {h.id for h in hits} == {h.id for h in base}  # the same passages, reordered
        assert hits[0].source == "fiches/buvette.md"
        assert all(0.0 <= h.metadata["relevance"] <= 1.0 for h in hits)


def test_vectors_of_passages_outside_the_dense_list_are_fetched(settings: Settings) -> None:
    emb = FakeEmbedder()
    index = _index(settings, emb)
    ids = ["mairie:lois/cgct.md:0", "mairie:fiches/buvette.md:1", "mairie:absent:9"]
    got = index.vectors("mairie", ids)
    assert set(got) == set(ids[:2]) and len(got[ids[0]]) == emb.dim
    # A passage found by two parts of a long request is named twice: Chroma refuses that.
    assert index.vectors("mairie", ids + ids[:1]) == got


def test_weak_retrieval_asks_the_rewriter_once(retriever: Retriever) -> None:
    from dataclasses import replace

    asked: list[str] = []

    def rewriter(question: str) -> str:
        asked.append(question)
        return "buvette temporaire association autorisation du maire"

    weak = "Le comité des fêtes veut servir à boire au bal, combien de fois ?"
    chosen = replace(retriever, rewriter=rewriter, rewrite_below=0.99)
    hits = chosen.search(weak, k=3)
    assert asked == [weak] and chosen.last_rewrite
    assert hits[0].source == "fiches/buvette.md"
    strong = replace(retriever, rewriter=rewriter, rewrite_below=0.0)
    strong.search(weak, k=3)
    assert asked == [weak]  # not asked when the first retrieval is strong enough


# --- hubness reduction by centering ---------------------------------------------------------


def test_centring_ranks_by_similarity_to_the_query_minus_to_questions_in_general() -> None:
    from assistant.retrieval import centre_query

    query = [0.6, 0.8, 0.0]
    centre = [0.0, 0.9, 0.3]
    hub, specific = [0.0, 1.0, 0.0], [0.8, 0.0, 0.6]  # unit passages
    dot = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert dot(query, hub) > dot(query, specific)  # raw cosine: the hub wins
    shifted = centre_query(query, centre, 1.0)
    assert dot(shifted, shifted) == pytest.approx(1.0)
    assert dot(shifted, specific) > dot(shifted, hub)  # centred: the specific passage wins
    # the ranking is that of q.p - w * centre.p, whatever the weight
    for w in (0.3, 0.5, 1.0):
        shifted = centre_query(query, centre, w)
        expected = [dot(query, p) - w * dot(centre, p) for p in (hub, specific)]
        got = [dot(shifted, p) for p in (hub, specific)]
        assert (expected[0] > expected[1]) == (got[0] > got[1])
    assert centre_query(query, centre, 0.0) == pytest.approx(query)
    with pytest.raises(ValueError):
        centre_query(query, [1.0, 0.0], 0.5)


def test_query_centre_embeds_the_bank_once_per_embedder() -> None:
    from assistant.retrieval import load_query_bank, query_centre

    bank = load_query_bank()
    assert len(bank) >= 50 and all(q.endswith("?") for q in bank)
    emb = FakeEmbedder(dim=32)
    emb.fingerprint = "centre-test"  # a fresh identity: the process cache is keyed by it
    first = query_centre(emb)
    assert emb.calls == [len(bank)]  # one batch of the whole bank
    assert query_centre(emb) is first and emb.calls == [len(bank)]  # then kept
    vectors = emb.embed_queries(bank)
    assert first == pytest.approx([sum(v[i] for v in vectors) / len(bank) for i in range(32)])


def test_a_centred_retriever_searches_chroma_with_the_centred_query(
    retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from assistant.retrieval import centre_query, query_centre

    seen: list[list[float]] = []
    original = retriever.index.dense_search

    def spy(cols, vector, k, where=None):  # type: ignore[no-untyped-def]
        seen.append(list(vector))
        return original(cols, vector, k, where)

    monkeypatch.setattr(retriever.index, "dense_search", spy)
    query = "Quelles boissons peut-on vendre à une buvette temporaire ?"
    assert retriever.embedder is not None
    raw = retriever.embedder.embed_query(query)
    retriever.search(query, k=3)
    assert seen[-1] == pytest.approx(raw)  # off by default (the fake's calibration)
    centred = replace(retriever, config=replace(retriever.config, centering=0.5))
    hits = centred.search(query, k=3)
    expected = centre_query(raw, query_centre(retriever.embedder), 0.5)
    assert seen[-1] == pytest.approx(expected)
    assert hits and all(0.0 <= h.metadata["relevance"] <= 1.0 for h in hits)


def test_relevance_of_a_centred_search_uses_the_question_s_own_cosine(
    retriever: Retriever,
) -> None:
    """Centering changes the ranking, not the relevance's scale: the cosine it is calibrated
    on is the question's own, read from the stored vectors."""
    from dataclasses import replace

    query = "Quelles boissons peut-on vendre à une buvette temporaire ?"
    assert retriever.embedder is not None
    raw = retriever.embedder.embed_query(query)
    centred = replace(retriever, config=replace(retriever.config, centering=0.7))
    hits = centred.search(query, k=3)
    stored = retriever.index.vectors("mairie", [h.id for h in hits])  # type: ignore[attr-defined]
    for hit in hits:
        own = sum(a * b for a, b in zip(stored[hit.id], raw, strict=True))
        assert hit.metadata["cosine"] == pytest.approx(own)
        assert hit.metadata["relevance_cosine"] == pytest.approx(own)


def test_warm_up_embeds_the_query_bank_before_the_first_search(retriever: Retriever) -> None:
    from dataclasses import replace

    from assistant.retrieval import load_query_bank

    emb = retriever.embedder
    assert isinstance(emb, FakeEmbedder)
    emb.fingerprint = "warm-up-test"  # a fresh identity: the process cache is keyed by it
    before = len(emb.calls)
    retriever.warm_up()  # centering off (the fake's calibration): nothing to prepare
    assert len(emb.calls) == before
    replace(retriever, config=replace(retriever.config, centering=0.5)).warm_up()
    assert emb.calls[before:] == [len(load_query_bank())]
