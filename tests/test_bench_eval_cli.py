"""``assistant bench`` runs the benchmark scripts; ``assistant eval --answers [--no-budget]``
measures the answers with and without the context budget."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.cli.tools import (
    BENCHES,
    BenchUsageError,
    bench_command,
)
from assistant.cli.tools import (
    SCRIPTS_DIR as BENCH_SCRIPTS,
)
from assistant.evaluation import AnswerSources, Question, answer_citation_rate

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("ASSISTANT_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- bench ------------------------------------------------------------------------------------


def test_every_benchmark_script_exists_and_answers_help() -> None:
    import subprocess

    for name in BENCHES:
        command = bench_command(name, ["--help"])
        assert Path(command[1]).is_file() and command[0] == sys.executable
    # One of them run for real: its own parser answers (the dispatcher passes the args through).
    done = subprocess.run(bench_command("first-token", ["--help"]), capture_output=True, text=True)
    assert done.returncode == 0 and "--max-tokens" in done.stdout


def test_unknown_benchmark_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(BenchUsageError, match="first-token"):
        bench_command("vitesse", [])
    with pytest.raises(BenchUsageError, match="scripts/"):
        bench_command("ingest", [], scripts_dir=tmp_path)


def test_bench_passes_arguments_exit_code_and_global_options(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = clean_env / "scripts"
    scripts.mkdir()
    out = clean_env / "seen.json"
    (scripts / "bench_drafting.py").write_text(
        "import json, os, sys\n"
        f"open({str(out)!r}, 'w').write(json.dumps("
        "{'args': sys.argv[1:], 'model': os.environ.get('ASSISTANT_CHAT_MODEL')}))\n"
        "sys.exit(3)\n",
        encoding="utf-8",
    )
    monkeypatch.setattr("assistant.cli.tools.SCRIPTS_DIR", scripts)
    result = CliRunner().invoke(
        app,
        ["--chat-model", "petit.gguf", "bench", "drafting", "--max-tokens", "48", "--json"],
    )
    assert result.exit_code == 3, result.output
    seen = json.loads(out.read_text(encoding="utf-8"))
    assert seen == {"args": ["--max-tokens", "48", "--json"], "model": "petit.gguf"}


def test_bench_help_lists_the_benchmarks(clean_env: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    assert all(name in result.output for name in BENCHES)


def test_bench_without_a_name_runs_the_whole_bench_with_its_options(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = clean_env / "scripts"
    scripts.mkdir()
    out = clean_env / "seen.json"
    (scripts / "bench.py").write_text(
        f"import json, sys\nopen({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))\n",
        encoding="utf-8",
    )
    monkeypatch.setattr("assistant.cli.tools.SCRIPTS_DIR", scripts)
    for argv, expected in (
        ([], []),
        (["--json", "b.json", "--runs", "1"], ["--json", "b.json", "--runs", "1"]),
    ):
        result = CliRunner().invoke(app, ["bench", *argv])
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text(encoding="utf-8")) == expected


# --- eval --answers ---------------------------------------------------------------------------


def test_answer_rates_separate_the_sources_given_from_those_cited() -> None:
    questions = [Question(id=x, question=f"q{x}", file=f"{x}.md") for x in "abc"]
    results = {
        "qa": AnswerSources(cited=["a.md"], given=["a.md", "z.md"], prompt_tokens=900),
        "qb": AnswerSources(cited=["z.md"], given=["b.md", "z.md"], prompt_tokens=700),
        "qc": AnswerSources(cited=[], given=["z.md"], prompt_tokens=800, cached_tokens=600),
    }
    out = answer_citation_rate(lambda q: results[q], questions)
    assert out["cites_expected"] == pytest.approx(1 / 3, abs=1e-3)
    assert out["sources_expected"] == pytest.approx(2 / 3, abs=1e-3)
    assert out["median_prompt_tokens"] == 800 and out["median_uncached_tokens"] == 700
    assert [d["given_expected"] for d in out["details"]] == [True, True, False]


def _tiny_index(data: Path) -> None:
    from assistant.config import Settings
    from assistant.schema import Chunk
    from assistant.store import build_index
    from tests.fakes import FakeEmbedder

    emb = FakeEmbedder()
    index = build_index(Settings(data_dir=data))
    index.ensure_collection("essai", embedder=emb.name)
    text = "Le conseil municipal ne délibère valablement que si la majorité est là."
    chunk = Chunk(id="essai:quorum.md:0", text=text, metadata={"source": "quorum.md"})
    index.replace_document("essai", "quorum.md", "h" * 64, [chunk], emb.embed([text]))
    index.close()


@pytest.mark.parametrize(("flags", "budget"), [([], 500), (["--no-budget"], 0)])
def test_eval_answers_with_and_without_the_budget(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], budget: int
) -> None:
    from tests.fakes import FakeEmbedder

    emb = FakeEmbedder()
    monkeypatch.setattr("assistant.embeddings.build_embedder", lambda settings: emb)
    seen: list[Any] = []

    def drafter(settings: Any, collection: str) -> Any:
        seen.append(settings.context_budget)
        return lambda q: AnswerSources(cited=["quorum.md"], given=["quorum.md"], prompt_tokens=9)

    monkeypatch.setattr("assistant.cli.tools._drafter", drafter)
    data = clean_env / "data"
    _tiny_index(data)
    questions = clean_env / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "A", "question": "Quel quorum ?", "file": "quorum.md"}) + "\n", "utf-8"
    )
    (clean_env / "docs").mkdir()
    args = ["--data-dir", str(data), "eval", str(questions), "--corpus", str(clean_env / "docs")]
    args += ["--collection", "essai", "--answers", *flags]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)["answers"]
    assert seen == [budget] and answers["context_budget"] == budget
    assert answers["cites_expected"] == answers["sources_expected"] == 1.0
    text = CliRunner().invoke(app, args)
    assert "budget de contexte : " + (f"{budget} jetons" if budget else "aucun") in text.output


def test_eval_compares_retrieval_variants(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes import FakeEmbedder

    emb = FakeEmbedder()
    monkeypatch.setattr("assistant.embeddings.build_embedder", lambda settings: emb)
    rewrites: list[str] = []

    def rewriter(settings: Any) -> Any:
        def rewrite(question: str) -> str:
            rewrites.append(question)
            return "majorité conseil municipal délibère"

        return rewrite

    monkeypatch.setattr("assistant.cli.tools._rewriter", rewriter)
    data = clean_env / "data"
    _tiny_index(data)
    questions = clean_env / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "A", "question": "Quel quorum ?", "file": "quorum.md"}) + "\n", "utf-8"
    )
    (clean_env / "docs").mkdir()
    args = ["--data-dir", str(data), "eval", str(questions), "--corpus", str(clean_env / "docs")]
    args += ["--collection", "essai", "--compare-modes", "--json"]
    result = CliRunner().invoke(app, [*args, "--variants", "base,rescore,sentence,rewrite"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"base/hybrid", "base/dense", "base/lexical", "rescore/hybrid", "sentence/dense"} <= set(
        report
    )
    assert "rescore/lexical" not in report  # variants change the dense side only
    # One passage, no word shared with the question: only the dense side finds it.
    assert all(r["recall@5"] == 1.0 for key, r in report.items() if not key.endswith("lexical"))
    assert all("seconds_per_question" in r for r in report.values())
    assert rewrites  # the tiny index is weak for "Quel quorum ?": the rewriter was asked
    bad = CliRunner().invoke(app, [*args, "--variants", "magie"])
    assert bad.exit_code != 0 and "Variante inconnue" in str(bad.exception)


def test_bench_table_and_json_keys_hold_with_sections_left_out() -> None:
    """A run limited to some sections still prints its table and keeps the contract's keys."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_all", BENCH_SCRIPTS / "bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures: dict = {"load_average": [1.0, 1.0, 1.0]}
    figures["retrieval"] = {
        "curve": {
            "10000": {
                "p50_ms": 5.0,
                "p95_ms": 9.0,
                "lexical_p95_ms": 2.0,
                "lexical_join_form_p95_ms": 20.0,
                "build_s": 1.0,
            }
        },
    }
    for key, names in bench.REQUIRED_KEYS.items():
        part = figures.setdefault(key, {})
        for name in names:
            part.setdefault(name, None)
    rows = list(bench.rows_for_table(figures))
    assert [r[0] for r in rows] == ["search at 10,000 passages"]
    assert set(bench.REQUIRED_KEYS) <= set(figures)
    assert figures["retrieval"]["p95_ms_100k"] is None


def test_synthetic_passages_are_as_long_as_the_chunkers() -> None:
    """The bench's synthetic index stands for a real one: its passages keep to the chunker's
    limit (six whole sentences made them 2,800 characters, over twice the limit, and the
    lexical search at 100,000 passages looked slower than it is)."""
    import importlib.util
    import random

    from assistant.chunking import MAX_CHARS

    spec = importlib.util.spec_from_file_location("bench_all", BENCH_SCRIPTS / "bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    pool = ["Le conseil municipal délibère sur les affaires de la commune"] * 5 + ["x" * 1500]
    rng = random.Random(1)
    lengths = [len(bench.synthetic_text(rng, pool)) for _ in range(300)]
    assert max(lengths) <= MAX_CHARS
    assert 300 < sum(lengths) / len(lengths) < MAX_CHARS


def test_prefix_reuse_skips_pairs_where_a_draft_abstained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A draft that abstains calls no model: its figures would be the previous draft's, and the
    'warm' request after it would run cold. Such pairs are left out of the prefix-reuse
    figure (they once pulled the median to the 0.5 target and over it)."""
    import argparse
    import importlib.util
    from types import SimpleNamespace

    import assistant.drafting as drafting
    from assistant.config import Settings

    spec = importlib.util.spec_from_file_location("bench_prefix", BENCH_SCRIPTS / "bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    class FakeLlama:
        def __init__(self) -> None:
            self.cached = False  # whether the template's prefix is in the context

        def reset(self) -> None:
            self.cached = False

    class FakeService:
        """Drafts 'q1', 'q2', 'q4' (first token 10 s cold, 3 s after another draft); 'q3'
        abstains."""

        def __init__(self) -> None:
            self.chat_model = SimpleNamespace(llama=FakeLlama(), last_stats=None)

        def draft(self, request: Any) -> Any:
            llama = self.chat_model.llama
            if request.request == "q3":
                return SimpleNamespace(abstained=True, prompt=None)
            first = 3.0 if llama.cached else 10.0
            llama.cached = True
            self.chat_model.last_stats = SimpleNamespace(
                first_token_s=first, prompt_tokens=900, cached_tokens=550 if first < 5 else 0
            )
            return SimpleNamespace(abstained=False, prompt=[{"role": "user", "content": "…"}])

    monkeypatch.setattr(drafting, "build_service", lambda settings: FakeService())
    monkeypatch.setattr(bench, "questions", lambda path, files=None: ["q1", "q2", "q3", "q4"])
    monkeypatch.setattr(bench, "question_files", lambda path: [])
    args = argparse.Namespace(
        questions=tmp_path / "q.jsonl", ingest_files=20, runs=3, max_tokens=48
    )
    out: dict[str, Any] = {}
    bench.bench_drafting(args, Settings(data_dir=tmp_path), out, {"prefix_reuse"})
    pr = out["prefix_reuse"]
    # Pairs (q1, q2) and (q3, q4) in turn: the second always abstains at q3 and is skipped.
    assert len(pr["runs"]) == 3
    assert all(r["cold_first_token_s"] == 10.0 for r in pr["runs"])
    assert all(r["warm_first_token_s"] == 3.0 for r in pr["runs"])
    assert pr["ratio"] == 0.3
