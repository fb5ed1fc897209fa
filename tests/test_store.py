"""The index with real Chroma (PersistentClient in a temp dir) and the real SQLite FTS5 file."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.errors import CollectionNotFoundError, StoreError
from assistant.schema import Chunk
from assistant.store import Index, build_index
from tests.fakes import FakeEmbedder


def make_chunks(
    collection: str, source: str, texts: list[str], doc_hash: str = "h" * 64
) -> list[Chunk]:
    chunks = []
    for i, text in enumerate(texts):
        meta = {
            "collection": collection,
            "source": source,
            "title": source.rsplit("/", 1)[-1],
            "heading": f"Article {i + 1}",
            "doc_hash": doc_hash,
            "chunk_index": i,
            "doc_type": "deliberation",
            "char_count": len(text),
            "page": i + 1,
        }
        chunks.append(
            Chunk(id=f"{collection}:{source}:{doc_hash[:12]}:{i}", text=text, metadata=meta)
        )
    return chunks


def put(
    index: Index, emb: FakeEmbedder, collection: str, source: str, texts: list[str], doc_hash: str
) -> None:
    chunks = make_chunks(collection, source, texts, doc_hash)
    index.replace_document(
        collection,
        source,
        doc_hash,
        chunks,
        emb.embed([c.text for c in chunks]),
        title=source,
        pages=len(texts),
    )


@pytest.fixture
def index(settings: Settings) -> Index:
    idx = build_index(settings)
    idx.ensure_collection("mairie", embedder=FakeEmbedder.name)
    return idx


@pytest.fixture
def emb() -> FakeEmbedder:
    return FakeEmbedder()


def test_replace_document_writes_both_indexes(index: Index, emb: FakeEmbedder) -> None:
    put(
        index,
        emb,
        "mairie",
        "delib/a.pdf",
        ["Vote du budget primitif", "Tarifs de la cantine"],
        "a" * 64,
    )
    ids = index.chunk_ids("mairie", "delib/a.pdf")
    assert sorted(ids["chroma"]) == sorted(ids["lexical"]) and len(ids["chroma"]) == 2
    record = index.documents("mairie")["delib/a.pdf"]
    assert (record.status, record.chunks, record.pages) == ("ready", 2, 2)


def test_changed_document_replaces_old_chunks_everywhere(index: Index, emb: FakeEmbedder) -> None:
    put(
        index, emb, "mairie", "a.md", ["ancien texte sur les cimetières", "deux", "trois"], "a" * 64
    )
    put(index, emb, "mairie", "a.md", ["nouveau texte sur la voirie"], "b" * 64)
    ids = index.chunk_ids("mairie", "a.md")
    assert ids["chroma"] == ids["lexical"] == ["mairie:a.md:bbbbbbbbbbbb:0"]
    assert index.lexical_search(["mairie"], "cimetière", 5) == []
    assert [h.source for h in index.lexical_search(["mairie"], "voirie", 5)] == ["a.md"]


def test_lexical_search_french_folding_and_references(index: Index, emb: FakeEmbedder) -> None:
    put(
        index,
        emb,
        "mairie",
        "cgct.md",
        ["Vu l'article L. 2121-17 du code", "Élection du maire"],
        "c" * 64,
    )
    put(index, emb, "mairie", "autre.md", ["Vu l'article L. 2121-18 du code"], "d" * 64)
    hits = index.lexical_search(["mairie"], "L2121-17", 5)
    assert [(h.source, h.page) for h in hits] == [("cgct.md", 1)]
    hits = index.lexical_search(["mairie"], "ELECTIONS maires", 5)
    assert hits and hits[0].text == "Élection du maire" and hits[0].score > 0
    assert hits[0].heading == "Article 2" and hits[0].collection == "mairie"


def test_dense_search_scores_are_cosine_similarities(index: Index, emb: FakeEmbedder) -> None:
    put(
        index,
        emb,
        "mairie",
        "a.md",
        ["budget primitif de la commune", "cantine scolaire tarifs"],
        "a" * 64,
    )
    hits = index.dense_search(["mairie"], emb.embed_query("budget primitif de la commune"), 2)
    assert hits[0].text == "budget primitif de la commune"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].score > hits[1].score


def test_filters_apply_to_both_searches(index: Index, emb: FakeEmbedder) -> None:
    put(index, emb, "mairie", "a.md", ["marché public de voirie"], "a" * 64)
    put(index, emb, "mairie", "b.md", ["marché public de voirie"], "b" * 64)
    where = {"source": "b.md"}
    assert [h.source for h in index.lexical_search(["mairie"], "voirie", 5, where)] == ["b.md"]
    vector = emb.embed_query("voirie")
    assert [h.source for h in index.dense_search(["mairie"], vector, 5, where)] == ["b.md"]
    multi = {"source": {"$in": ["a.md"]}, "page": 1}
    assert [h.source for h in index.lexical_search(["mairie"], "voirie", 5, multi)] == ["a.md"]
    assert [h.source for h in index.dense_search(["mairie"], vector, 5, multi)] == ["a.md"]
    with pytest.raises(StoreError, match="Filtre inconnu"):
        index.lexical_search(["mairie"], "voirie", 5, {"nope": 1})


def test_remove_document_and_neighbours(index: Index, emb: FakeEmbedder) -> None:
    put(index, emb, "mairie", "a.md", ["un", "deux", "trois", "quatre"], "a" * 64)
    assert [h.text for h in index.neighbours("mairie", "a.md", 1)] == ["un", "deux", "trois"]
    first = index.chunk_ids("mairie", "a.md")["lexical"][:2]
    assert [h.text for h in index.get_chunks(list(reversed(first)))] == ["deux", "un"]
    index.remove_document("mairie", "a.md")
    assert index.chunk_ids("mairie") == {"chroma": [], "lexical": []}
    assert index.documents("mairie") == {}


def test_pending_document_is_invisible_then_repaired(index: Index, emb: FakeEmbedder) -> None:
    put(index, emb, "mairie", "a.md", ["subvention aux associations"], "a" * 64)
    # Simulate a crash after step 3 of a new version: pending row, new vectors in Chroma.
    new = make_chunks("mairie", "a.md", ["subvention nouvelle version", "suite"], "b" * 64)
    index._db.execute(
        "UPDATE documents SET status='pending', doc_hash=? WHERE source='a.md'", ("b" * 64,)
    )
    index._chroma("mairie").upsert(
        ids=[c.id for c in new],
        embeddings=emb.embed([c.text for c in new]),
        metadatas=[c.metadata for c in new],
    )
    assert index.lexical_search(["mairie"], "subvention", 5) == []
    assert index.dense_search(["mairie"], emb.embed_query("subvention"), 5) == []
    assert index.repair("mairie") == ["a.md"]
    assert index.chunk_ids("mairie") == {"chroma": [], "lexical": []}
    assert "a.md" not in index.documents("mairie")


def test_collections_listing_and_drop(settings: Settings, index: Index, emb: FakeEmbedder) -> None:
    index.ensure_collection("rh", embedder=emb.name)
    put(index, emb, "mairie", "a.md", ["un", "deux"], "a" * 64)
    put(index, emb, "rh", "b.md", ["trois"], "b" * 64)
    index.mark_synced("rh", "/srv/rh")
    infos = {c.name: c for c in index.collections()}
    assert (infos["mairie"].documents, infos["mairie"].chunks) == (1, 2)
    assert infos["rh"].last_sync and infos["rh"].folder == "/srv/rh"
    # Persistence: a new Index on the same files sees the same data (no rebuild in memory).
    again = build_index(settings)
    assert [h.source for h in again.lexical_search(["rh"], "trois", 5)] == ["b.md"]
    again.drop_collection("rh")
    assert [c.name for c in again.collections()] == ["mairie"]
    assert again.lexical_search(["rh"], "trois", 5) == []
    with pytest.raises(CollectionNotFoundError):
        again.drop_collection("rh")


def test_other_embedder_is_refused_and_names_are_checked(index: Index) -> None:
    assert index.ensure_collection("mairie", embedder="another-model") is False
    with pytest.raises(StoreError, match="Nom de collection invalide"):
        index.ensure_collection("état civil", embedder="x")


def test_chroma_never_gets_a_default_embedder(index: Index) -> None:
    col = index._chroma("mairie", create=True)
    assert col._embedding_function is None


def test_corrupt_lexical_file_gives_a_french_fix(tmp_path: Path) -> None:
    bad = tmp_path / "lexical.sqlite3"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="Supprimez ce fichier"):
        Index(client=None, lexical_path=bad)


def _join_form(index: Index, collections: list[str], query: str, k: int, where: dict | None):
    """The former lexical query (bm25 over the join, one statement): the reference."""
    from assistant.store import BM25_WEIGHTS, _sql_where
    from assistant.textnorm import match_terms, query_terms

    extra, params = _sql_where(where)
    marks = ",".join("?" * len(collections))
    sql = (
        "SELECT c.id, bm25(chunks_fts, ?, ?) AS rank "
        "FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
        "JOIN documents d ON d.collection = c.collection AND d.source = c.source "
        f"AND d.status = 'ready' WHERE chunks_fts MATCH ? AND c.collection IN ({marks}){extra} "
        "ORDER BY rank, c.rowid LIMIT ?"
    )
    # Same expression as lexical_search: the terms found in more than half the passages are
    # left out (see test_terms_in_most_passages_are_left_out_of_the_match).
    terms = query_terms(query)
    kept = index._informative_terms(terms)
    rows = index._query(sql, [*BM25_WEIGHTS, match_terms(kept), *collections, *params, k])
    if not rows and kept != terms:  # nothing: every term (as lexical_search does)
        rows = index._query(sql, [*BM25_WEIGHTS, match_terms(terms), *collections, *params, k])
    return [(r["id"], -r["rank"]) for r in rows]


def test_lexical_search_returns_what_the_join_form_returned(
    index: Index, emb: FakeEmbedder
) -> None:
    """The two-step query (FTS5 top-N, then join and filter, widening when filters reject
    candidates) gives the same hits and scores as bm25 over the join, filters included."""
    import random

    rng = random.Random(3)
    words = [
        *("conseil", "municipal", "budget", "cantine", "voirie", "marché", "subvention"),
        *("association", "école", "maire", "délibération", "quorum", "séance", "convocation"),
        *("tarif", "eau", "assainissement", "urbanisme", "permis"),
    ]
    index.ensure_collection("autre", embedder=FakeEmbedder.name)
    for d in range(12):
        texts = [" ".join(rng.choices(words, k=rng.randint(3, 25))) for _ in range(25)]
        put(index, emb, "mairie" if d % 3 else "autre", f"doc{d}.md", texts, f"{d:064d}")
    # A document half-written (pending) must stay invisible in both forms.
    index._db.execute("UPDATE documents SET status='pending' WHERE source='doc4.md'")
    cases: list[tuple[list[str], dict | None, int]] = [
        (["mairie"], None, 5),
        (["mairie", "autre"], None, 40),
        (["mairie"], {"source": "doc7.md"}, 3),  # rare filter: the candidate window widens
        (["autre"], {"doc_type": "deliberation", "page": {"$gte": 20}}, 4),
        (["mairie"], {"source": "doc4.md"}, 5),  # only a pending document: nothing
    ]
    for collections, where, k in cases:
        for query in ("budget de la cantine", "quorum", "permis urbanisme eau", "maire séance"):
            new = [(h.id, h.score) for h in index.lexical_search(collections, query, k, where)]
            old = _join_form(index, collections, query, k, where)
            assert [s for _, s in new] == pytest.approx([s for _, s in old], abs=1e-9)
            # Same hits, except for the order among equal scores at the cut.
            last = old[-1][1] if old else 0.0
            assert {i for i, s in new if s > last + 1e-9} == {i for i, s in old if s > last + 1e-9}
            if where and where.get("source") == "doc4.md":
                assert new == []


def test_terms_in_most_passages_are_left_out_of_the_match(
    index: Index, emb: FakeEmbedder
) -> None:
    """A term found in more than half the passages has a bm25 IDF of ~0: it is not scored (the
    slow part at 100,000 passages), the order of the hits stays that of the full query, and
    the counts follow the index as it changes."""
    from assistant.store import BM25_WEIGHTS
    from assistant.textnorm import match_query, query_terms

    texts = [f"La commune gère le service numéro {i}." for i in range(10)]
    texts[3] = "La commune fait enlever le véhicule : mise en fourrière et frais de garde."
    texts[7] = "La commune fixe le tarif de la fourrière, la fourrière municipale."
    put(index, emb, "mairie", "a.md", texts, "a" * 64)
    terms = query_terms("commune fourrière")
    assert terms[0] == "commun" and len(terms) == 2
    assert index._informative_terms(terms) == [terms[1]]
    def full_query(k: int) -> list[str]:
        rows = index._query(
            "SELECT c.id FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
            "WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts, ?, ?), c.rowid LIMIT ?",
            [match_query("commune fourrière"), *BM25_WEIGHTS, k],
        )
        return [r["id"] for r in rows]

    hits = index.lexical_search(["mairie"], "commune fourrière", 2)
    assert [h.id for h in hits] == full_query(2)
    # The passages holding only "commune" (IDF ~0) are not returned beside those...
    assert len(index.lexical_search(["mairie"], "commune fourrière", 5)) == 2
    # ...but when nothing else matches, every term is searched.
    only_common = index.lexical_search(["mairie"], "commune numérotée", 3)
    assert len(only_common) == 3
    # Every term that common: all are kept (nothing better to rank by).
    both_common = query_terms("commune numéro")
    assert len(both_common) == 2
    assert index._informative_terms(both_common) == both_common
    # The index changes (a new generation): "commune" is no longer in most passages.
    others = [f"Le département gère la route {i}." for i in range(30)]
    put(index, emb, "mairie", "b.md", others, "b" * 64)
    assert index._informative_terms(terms) == terms


def test_when_only_common_terms_match_the_least_common_one_is_searched(
    index: Index, emb: FakeEmbedder
) -> None:
    """Every term of the query that matches is in most passages (weights ~0): the fallback
    searches the least common of them only (one posting list, not all), so a passage holding
    only the most common term is not among the hits."""
    texts = [f"La commune gère le service numéro {i}." for i in range(6)]
    texts += ["La commune tient le registre.", "La commune vote le budget.", "La commune élit."]
    texts += ["Le service technique répare la route.", "Le service des eaux relève les compteurs."]
    put(index, emb, "mairie", "a.md", texts, "c" * 64)
    hits = index.lexical_search(["mairie"], "commune service numérotée", 10)
    assert hits and all("service" in h.text for h in hits)
    assert len(hits) == 8  # the passages holding « service »
