"""assistant doctor: each check finds real problems and gives the fix; exit code 1 on failure."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.cli.doctor import (
    check_data_dir,
    check_memory,
    check_model,
    check_python,
    check_threads,
    estimate_model_memory,
    mem_available,
)
from assistant.config import Settings
from assistant.models import ModelEntry


def write_gguf(
    path: Path,
    arch: str = "qwen2",
    pooling: int | None = None,
    layers: int = 4,
    kv_heads: int = 2,
    padding: int = 0,
) -> None:
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    writer.add_block_count(layers)
    writer.add_embedding_length(256)
    writer.add_head_count(8)
    writer.add_head_count_kv(kv_heads)
    if pooling is not None:
        writer.add_pooling_type(gguf.PoolingType(pooling))
    writer.add_token_list([f"t{i}" for i in range(100)])
    writer.add_tensor("token_embd.weight", np.zeros((16 + padding, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("ASSISTANT_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("ASSISTANT_MODELS_DIR", str(models))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    return models


def test_python_check() -> None:
    assert check_python((3, 11)).status == "ok"
    old = check_python((3, 9))
    assert old.status == "fail" and "3.11" in old.fix


def test_missing_chat_model_fails_with_the_install_command(env: Path) -> None:
    write_gguf(env / "all-minilm-l6-v2-f32.gguf", "bert", pooling=1)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "ÉCHEC" in result.output and "Chat model present" in result.output
    assert "assistant models install" in result.output
    assert "Verdict" in result.output


def test_doctor_json_lists_every_check(env: Path) -> None:
    result = CliRunner().invoke(app, ["doctor", "--json"])
    report = json.loads(result.output)
    ids = {c["id"] for c in report["checks"]}
    assert {
        "python",
        "llama_cpp",
        "model_chat_model",
        "model_embedding_model",
        "data_dir",
        "memory",
        "threads",
    } <= ids
    assert report["ok"] is False and result.exit_code == 1
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert failed and all(c["fix"] for c in failed)


def test_dropped_in_models_pass_and_wrong_roles_fail(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    write_gguf(models / "mistral-7b.gguf", "llama")
    write_gguf(models / "e5.gguf", "bert", pooling=1)
    good = Settings(
        models_dir=models,
        data_dir=tmp_path / "d",
        chat_model="mistral-7b.gguf",
        embedding_model="e5.gguf",
    )
    assert check_model(good, "rédaction").status == "ok"
    assert "hors catalogue" in check_model(good, "rédaction").detail
    assert check_model(good, "embeddings").status == "ok"
    swapped = Settings(
        models_dir=models,
        data_dir=tmp_path / "d",
        chat_model="e5.gguf",
        embedding_model="mistral-7b.gguf",
    )
    chat = check_model(swapped, "rédaction")
    assert chat.status == "fail" and "embeddings" in chat.detail and "chat_model" in chat.fix
    assert check_model(swapped, "embeddings").status == "fail"


def test_corrupted_catalogue_model_fails(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    path = models / "cat.gguf"
    write_gguf(path)
    entry = ModelEntry(
        filename="cat.gguf",
        title="cat",
        role="conversation",
        sets=("default",),
        sources=(),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )
    settings = Settings(models_dir=models, data_dir=tmp_path / "d", chat_model="cat.gguf")
    assert check_model(settings, "rédaction", (entry,)).status == "ok"
    with path.open("r+b") as handle:
        handle.seek(-1, 2)
        handle.write(b"\x01")
    os.utime(path, ns=(5, 5))
    broken = check_model(settings, "rédaction", (entry,))
    assert broken.status == "fail" and "assistant models install" in broken.fix


def test_memory_check_compares_meminfo_with_model_needs(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    write_gguf(models / "chat.gguf", layers=28, kv_heads=2)
    size, kv, _compute = estimate_model_memory(models / "chat.gguf", n_ctx=4096, n_batch=512)
    # 28 layers x 4096 positions x 2 KV heads x (32 + 32) dims x 2 bytes (f16)
    assert kv == 28 * 4096 * 2 * 64 * 2
    assert size == (models / "chat.gguf").stat().st_size
    settings = Settings(models_dir=models, data_dir=tmp_path / "d", chat_model="chat.gguf")
    low, high = tmp_path / "low", tmp_path / "high"
    low.write_text("MemTotal: 4000000 kB\nMemAvailable:  200000 kB\n")
    high.write_text("MemTotal: 64000000 kB\nMemAvailable: 60000000 kB\n")
    assert mem_available(low) == 200000 * 1024
    short = check_memory(settings, low)
    assert short.status == "fail" and "n_ctx" in short.fix
    assert check_memory(settings, high).status == "ok"
    # A larger context needs more memory for the same model.
    bigger = Settings(
        models_dir=models, data_dir=tmp_path / "d", chat_model="chat.gguf", n_ctx=131072
    )
    mid = tmp_path / "mid"
    mid.write_text("MemAvailable: 1200000 kB\n")
    assert check_memory(settings, mid).status == "ok"
    assert check_memory(bigger, mid).status == "fail"


def test_data_dir_not_writable(tmp_path: Path) -> None:
    assert check_data_dir(Settings(data_dir=tmp_path / "new", models_dir=tmp_path)).status == "ok"
    # /proc refuses new files even to root (file permissions would not stop root).
    settings = Settings(data_dir=Path("/proc/assistant-data"), models_dir=tmp_path)
    result = check_data_dir(settings)
    assert result.status == "fail" and "data_dir" in result.fix and "/proc" in result.detail


def test_file_as_data_dir_fails(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    settings = Settings(data_dir=tmp_path / "afile", models_dir=tmp_path)
    assert check_data_dir(settings).status == "fail"


def test_threads_beyond_cores_warns(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path, threads=cores + 4)
    check = check_threads(settings)
    assert check.status == "warn" and str(cores) in check.fix
    assert check_threads(Settings(data_dir=tmp_path, models_dir=tmp_path, threads=1)).status == "ok"


def test_settings_option_lists_settings(env: Path) -> None:
    result = CliRunner().invoke(app, ["doctor", "--settings"])
    assert "pip_args" in result.output and "models_dir" in result.output
