"""The CLI in-process: commands exist, help is French, domain errors become messages + codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app, main

COMMANDS = ["models", "ingest", "search", "ask", "serve", "eval", "bench", "doctor"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_every_command_is_listed(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(runner: CliRunner, name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip()) > 40


def test_bad_setting_is_refused_with_its_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSISTANT_THREADS", "zéro")
    with pytest.raises(SystemExit) as info:
        main(["doctor"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "ASSISTANT_THREADS" in err
    assert "Traceback" not in err


def test_missing_model_says_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSISTANT_MODELS_DIR", str(tmp_path / "vide"))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as info:
        main(["ask", "--no-retrieval", "Bonjour"])
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert "assistant models install" in err
    assert "Traceback" not in err
