"""The engine: build options chosen from the CPU, and the self-test in a child process.

The crash, hang and garbage cases use real child processes made to fail on purpose (a real
SIGSEGV through ctypes): the point is that the caller survives and reports in French. The slow
tests run the real llama.cpp with the small test models.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest

from assistant import engine
from assistant.config import Settings

REPO = Path(__file__).resolve().parent.parent


def _install_engine_module():
    spec = importlib.util.spec_from_file_location(
        "install_engine", REPO / "scripts" / "install_engine.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAPPHIRE_RAPIDS = frozenset({
    "fpu", "sse", "sse2", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2",
    "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512vbmi", "avx512_vnni", "avx512_bf16",
    "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
})


def test_build_options_never_native_and_amx_off_by_default() -> None:
    ie = _install_engine_module()
    args = ie.cmake_args(SAPPHIRE_RAPIDS)
    assert "-DGGML_NATIVE=OFF" in args
    for option in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert f"-D{option}=OFF" in args
    for option in ("GGML_AVX2", "GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI",
                   "GGML_AVX512_BF16", "GGML_AVX_VNNI", "GGML_FMA", "GGML_F16C"):
        assert f"-D{option}=ON" in args
    # AMX only when explicitly allowed, and only when the CPU has it.
    assert "-DGGML_AMX_INT8=ON" in ie.cmake_args(SAPPHIRE_RAPIDS, allow_amx=True)
    assert "-DGGML_AMX_INT8=OFF" in ie.cmake_args(frozenset({"avx2"}), allow_amx=True)


def test_build_options_follow_the_cpu() -> None:
    ie = _install_engine_module()
    old_server = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"})
    args = ie.cmake_args(old_server)
    assert "-DGGML_AVX2=ON" in args and "-DGGML_AVX512=OFF" in args
    portable = ie.cmake_args(SAPPHIRE_RAPIDS, portable=True)
    assert "-DGGML_AVX512=OFF" in portable and "-DGGML_AVX2=ON" in portable
    assert ie.cmake_args(SAPPHIRE_RAPIDS, machine="aarch64") == ["-DGGML_NATIVE=OFF"]
    # A different set of options is a different build (never a stale cached wheel).
    native = ie.cmake_args(SAPPHIRE_RAPIDS)
    assert ie.build_key("0.3.36", native) != ie.build_key("0.3.36", portable)
    assert ie.build_key("0.3.36", native) == ie.build_key("0.3.36", list(native))
    assert ie.build_key("0.3.36", native) != ie.build_key("0.3.37", native)


def test_cpu_flags_are_read_from_cpuinfo() -> None:
    ie = _install_engine_module()
    text = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu avx2 amx_tile\n\n"
    assert ie.cpu_flags(text) == frozenset({"fpu", "avx2", "amx_tile"})
    assert ie.cpu_flags("nothing here") == frozenset()


CRASH = "import ctypes; ctypes.string_at(0)"  # a real SIGSEGV in native code


def _child(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body), encoding="utf-8")
    return script


def test_crashing_engine_is_reported_not_propagated(settings: Settings) -> None:
    result = engine.run_self_test(
        settings, command=lambda extra: [sys.executable, "-c", CRASH], timeout=60
    )
    assert not result.ok
    assert [a.outcome for a in result.attempts] == ["crash", "crash"]  # auto: both modes tried
    assert "SIGSEGV" in result.attempts[0].detail
    assert "a planté" in result.message
    assert "install_engine.py" in result.message  # the fix is in the message
    saved = json.loads((settings.data_dir / engine.CACHE_NAME).read_text(encoding="utf-8"))
    assert saved["ok"] is False


def test_crash_with_extra_buffers_falls_back_and_is_remembered(
    settings: Settings, tmp_path: Path
) -> None:
    script = _child(tmp_path, f"""
        import json, sys
        if sys.argv[1] == "on":
            {CRASH}
        print(json.dumps({{"ok": True, "report": {{"extra_buffers": False}}}}))
    """)
    result = engine.run_self_test(
        settings,
        command=lambda extra: [sys.executable, str(script), "on" if extra else "off"],
        timeout=60,
    )
    assert result.ok and result.extra_buffers is False
    assert [a.outcome for a in result.attempts] == ["crash", "ok"]
    assert "désactivés" in result.message
    # From now on, every Llama(...) of the project opens without the extra buffers.
    assert engine.resolve_extra_buffers(settings) is False
    # An explicit setting wins over the remembered verdict.
    assert engine.resolve_extra_buffers(settings.model_copy(update={"extra_buffers": "on"}))


def test_hang_and_garbage_are_reported(settings: Settings, tmp_path: Path) -> None:
    hang = _child(tmp_path, "import time; time.sleep(60)")
    result = engine.run_self_test(
        settings.model_copy(update={"extra_buffers": "off"}),
        command=lambda extra: [sys.executable, str(hang)], timeout=2, save=False,
    )
    assert not result.ok and result.attempts[0].outcome == "hang"
    assert "ne répond plus" in result.message

    garbage = _child(tmp_path, """
        import json
        print(json.dumps({"ok": False, "outcome": "garbage", "detail": "logits non finis"}))
    """)
    result = engine.run_self_test(
        settings.model_copy(update={"extra_buffers": "on"}),
        command=lambda extra: [sys.executable, str(garbage)], timeout=30, save=False,
    )
    assert not result.ok and result.attempts[0].outcome == "garbage"
    assert "aberrantes" in result.message


def test_ensure_engine_raises_a_french_error_and_caches_success(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "chat.gguf"
    model.write_bytes(b"GGUF")
    s = settings.model_copy(update={"models_dir": tmp_path, "chat_model": "chat.gguf"})
    monkeypatch.setattr(engine, "child_command", lambda st, extra: [sys.executable, "-c", CRASH])
    with pytest.raises(engine.EngineError, match="a planté"):
        engine.ensure_engine(s)

    ok = _child(tmp_path, 'import json; print(json.dumps({"ok": True, "report": {}}))')
    calls: list[bool] = []

    def ok_command(st: Settings, extra: bool) -> list[str]:
        calls.append(extra)
        return [sys.executable, str(ok)]

    monkeypatch.setattr(engine, "child_command", ok_command)
    assert engine.ensure_engine(s).ok  # type: ignore[union-attr]
    assert engine.ensure_engine(s).ok  # type: ignore[union-attr]
    assert calls == [True]  # the second call used the cached verdict
    # A changed model file is a new engine build: tested again.
    model.write_bytes(b"GGUF v2")
    engine.ensure_engine(s)
    assert calls == [True, True]
    # Server backend: nothing local to prove.
    assert engine.ensure_engine(s.model_copy(update={"llm_backend": "server",
                                                     "llm_url": "http://127.0.0.1:9/v1"})) is None


SMOL = "smollm2-135m-instruct-q4_1.gguf"
MINILM = "all-minilm-l6-v2-f32.gguf"


@pytest.mark.slow
def test_real_engine_passes_the_self_test(settings: Settings, require_model_file) -> None:
    require_model_file(SMOL)
    require_model_file(MINILM)
    s = settings.model_copy(update={"chat_model": SMOL, "embedding_model": MINILM})
    result = engine.run_self_test(s)
    assert result.ok, result.message
    report = result.report
    assert report["prompt_tokens"] > 8 and report["generated_tokens_per_s"] > 0
    assert report["embedding_dim"] == 384
    assert report["buffers"], "llama.cpp's buffer report was not read"


@pytest.mark.slow
def test_extra_buffers_off_is_a_working_setting(settings: Settings, require_model_file) -> None:
    """The documented work-around (extra_buffers = "off") really opens and runs the model."""
    require_model_file(SMOL)
    import llama_cpp.llama_cpp as binding

    from assistant.llm import LocalChatModel

    s = settings.model_copy(update={"chat_model": SMOL, "extra_buffers": "off"})
    assert engine.resolve_extra_buffers(s) is False
    with engine._model_params(False):
        assert binding.llama_model_default_params().use_extra_bufts is False
    assert binding.llama_model_default_params().use_extra_bufts is True  # restored after
    model = LocalChatModel(s)
    text = model.complete([{"role": "user", "content": "Bonjour"}], max_tokens=4)
    assert isinstance(text, str)
    result = engine.run_self_test(s, save=False)
    assert result.ok and result.extra_buffers is False
    assert not any("REPACK" in b for b in result.report["buffers"])
