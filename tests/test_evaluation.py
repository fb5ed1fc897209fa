"""Evaluation: question formats, hit rule (quote, PDF page), metrics, misses, the CLI command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.evaluation import (
    EvalError,
    Question,
    QuoteLocator,
    answer_citation_rate,
    evaluate,
    fold_text,
    is_hit,
    load_questions,
    write_squad_passages,
)
from assistant.schema import Hit


def hit(source: str, text: str, page: int | None = None, **meta: object) -> Hit:
    return Hit(
        id=f"{source}:{page}:{text[:10]}",
        text=text,
        source=source,
        page=page,
        heading="",
        title=source,
        collection="c",
        score=0.0,
        metadata=dict(meta),
    )


QUOTE = (
    "Le conseil municipal ne délibère valablement que lorsque la majorité de ses membres "
    "est présente."
)


def test_hit_needs_the_file_and_the_quote_after_whitespace_folding() -> None:
    q = Question(id="Q", question="quorum ?", file="lois/cgct.md", quote=QUOTE)
    folded = QUOTE.replace("délibère ", "délibère\n  ").replace("présente", "présente")
    assert is_hit(hit("lois/cgct.md", "Article L2121-17. " + folded + " Suite."), q, set())
    assert not is_hit(hit("lois/autre.md", QUOTE), q, set())
    assert not is_hit(hit("lois/cgct.md", "Le conseil municipal se réunit."), q, set())


def test_pdf_page_holding_the_quote_counts() -> None:
    q = Question(id="Q", question="taux ?", file="d/a.pdf", quote="taux de 22,49 %")
    assert is_hit(hit("d/a.pdf", "autre passage de la page", page=3), q, {3})
    assert not is_hit(hit("d/a.pdf", "autre passage", page=4), q, {3})
    # a merged hit spanning pages 2-3 counts too
    assert is_hit(hit("d/a.pdf", "début", page=2, pages=[2, 3]), q, {3})


def test_fold_text_unifies_spaces_and_apostrophes() -> None:
    assert fold_text("l\u2019article\u00a0 L. 2121-17\n") == "l'article L. 2121-17"


def test_quote_locator_finds_pdf_pages(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_blank_page(width=200, height=200)
    (tmp_path / "vide.pdf").write_bytes(b"")
    with (tmp_path / "blank.pdf").open("wb") as fh:
        writer.write(fh)
    locator = QuoteLocator(tmp_path)
    q = Question(id="Q", question="?", file="blank.pdf", quote="absent")
    assert locator.pages(q) == set()  # blank pages hold no text
    md = Question(id="Q", question="?", file="a.md", quote="x")
    assert locator.pages(md) == set()  # only PDFs have pages
    broken = Question(id="Q", question="?", file="vide.pdf", quote="x")
    assert locator.pages(broken) == set()  # unreadable: no page, no crash


def _questions() -> list[Question]:
    return [
        Question(
            id="A", question="qa", file="a.md", quote="alpha", difficulty="facile", type="article"
        ),
        Question(
            id="B", question="qb", file="b.md", quote="beta", difficulty="moyenne", type="fait"
        ),
        Question(
            id="C", question="qc", file="c.md", quote="gamma", difficulty="moyenne", type="fait"
        ),
    ]


def test_metrics_ranks_and_misses() -> None:
    results = {
        # A found first, B found 3rd, C found 7th (a miss at 5 but inside 10)
        "qa": [hit("a.md", "alpha")],
        "qb": [hit("x.md", "beta"), hit("b.md", "autre"), hit("b.md", "la beta ici")],
        "qc": [hit("x.md", "n")] * 6 + [hit("c.md", "gamma")],
    }
    report = evaluate(lambda q: results[q], _questions()).as_json()
    assert report["questions"] == 3
    assert report["recall@1"] == pytest.approx(1 / 3, abs=1e-3)
    assert report["recall@5"] == pytest.approx(2 / 3, abs=1e-3)
    assert report["recall@10"] == 1.0
    assert report["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 3, abs=1e-3)
    assert report["by_type"]["fait"]["questions"] == 2
    assert report["by_difficulty"]["facile"]["recall@1"] == 1.0
    assert [m["id"] for m in report["misses"]] == ["C"]
    assert report["misses"][0]["rank"] == 7 and report["misses"][0]["top_sources"][0] == "x.md"


def test_load_jsonl_and_reject_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "q.jsonl"
    good.write_text(
        json.dumps({"id": "Q1", "question": "?", "file": "a.md", "quote": "x", "type": "fait"})
        + "\n\n",
        encoding="utf-8",
    )
    [q] = load_questions(good)
    assert (q.id, q.file, q.type, q.difficulty) == ("Q1", "a.md", "fait", "?")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "sans fichier"}\n', encoding="utf-8")
    with pytest.raises(EvalError, match="ligne 1"):
        load_questions(bad)
    with pytest.raises(EvalError, match="introuvable"):
        load_questions(tmp_path / "absent.jsonl")


SQUAD = {
    "version": "1",
    "data": [
        {
            "title": "Qu'est-ce que l'open data ?",
            "paragraphs": [
                {
                    "context": "L'open data consiste à publier les données.",
                    "qas": [
                        {
                            "id": "x1",
                            "question": "Qu'est-ce que l'open data ?",
                            "answers": [{"text": "publier les données", "answer_start": 22}],
                        },
                        {
                            "id": "x2",
                            "question": "Impossible ?",
                            "answers": [],
                            "is_impossible": True,
                        },
                    ],
                },
                {
                    "context": "Le RGPD protège les données personnelles.",
                    "qas": [
                        {"question": "Que protège le RGPD ?", "answers": [{"text": "les données"}]}
                    ],
                },
            ],
        }
    ],
}


def test_squad_passages_become_documents(tmp_path: Path) -> None:
    path = tmp_path / "piaf.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    questions = load_questions(path)
    assert [q.file for q in questions] == ["passage_0001.txt", "passage_0002.txt"]
    assert questions[0].answer == "publier les données" and questions[0].quote is None
    folder = tmp_path / "passages"
    assert write_squad_passages(path, folder) == 2
    text = (folder / "passage_0001.txt").read_text(encoding="utf-8")
    assert text == SQUAD["data"][0]["paragraphs"][0]["context"]  # type: ignore[index]
    assert "Qu'est-ce" not in text  # the title (often the question itself) is not written
    mtime = (folder / "passage_0001.txt").stat().st_mtime_ns
    write_squad_passages(path, folder)
    assert (folder / "passage_0001.txt").stat().st_mtime_ns == mtime  # unchanged: not rewritten
    # passage level: any chunk of the passage counts
    assert is_hit(hit("passage_0002.txt", "Le RGPD"), questions[1], set())


def test_answer_citation_rate() -> None:
    cited = {"qa": ["a.md", "z.md"], "qb": ["z.md"], "qc": []}
    out = answer_citation_rate(lambda q: cited[q], _questions())
    assert out["cites_expected"] == pytest.approx(1 / 3, abs=1e-3)
    assert [d["cited_expected"] for d in out["details"]] == [True, False, False]


# --- the command, on a collection already indexed (FakeEmbedder in place of the model) ---------


def test_eval_command_reports_all_modes_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from assistant.cli import app
    from assistant.config import Settings
    from assistant.schema import Chunk
    from assistant.store import build_index
    from tests.fakes import FakeEmbedder

    for key in [k for k in __import__("os").environ if k.startswith("ASSISTANT_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    emb = FakeEmbedder()
    monkeypatch.setattr("assistant.embeddings.build_embedder", lambda settings: emb)
    data = tmp_path / "data"
    index = build_index(Settings(data_dir=data))
    index.ensure_collection("essai", embedder=emb.name)
    docs = {
        "quorum.md": "Le conseil municipal ne délibère valablement que si la majorité est là.",
        "buvette.md": "Le maire accorde au plus cinq autorisations de buvette temporaire par an.",
    }
    for source, text in docs.items():
        chunk = Chunk(
            id=f"essai:{source}:0", text=text, metadata={"source": source, "chunk_index": 0}
        )
        index.replace_document("essai", source, "h" * 64, [chunk], emb.embed([text]))
    index.close()
    questions = tmp_path / "q.jsonl"
    lines = [
        {
            "id": "A",
            "question": "Quel quorum pour délibérer ?",
            "file": "quorum.md",
            "quote": "ne délibère valablement",
            "difficulty": "facile",
            "type": "article",
        },
        {
            "id": "B",
            "question": "Combien de buvettes temporaires par an ?",
            "file": "buvette.md",
            "quote": "cinq autorisations",
            "difficulty": "moyenne",
            "type": "fait",
        },
    ]
    questions.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "utf-8")
    (tmp_path / "docs").mkdir()
    args = [
        "--data-dir",
        str(data),
        "eval",
        str(questions),
        "--corpus",
        str(tmp_path / "docs"),
        "--collection",
        "essai",
        "--compare-modes",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"hybrid", "dense", "lexical"}
    for mode in ("hybrid", "lexical"):
        got = report[mode]
        assert got["questions"] == 2 and got["recall@1"] == 1.0 and got["mrr"] == 1.0
        assert set(got["by_type"]) == {"article", "fait"} and got["misses"] == []


def test_eval_command_needs_a_corpus_for_jsonl(tmp_path: Path) -> None:
    from assistant.cli import main

    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "?", "file": "a.md"}\n', "utf-8")
    with pytest.raises(SystemExit) as info:
        main(["eval", str(questions)])
    assert info.value.code == 2
