"""Limits: request and field length, time per answer, answer tokens, upload size; oversize
input is refused with a French message and nothing is drafted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.drafting import DraftingService, DraftRequest
from assistant.errors import DraftingError
from assistant.prompts import load_templates
from tests.fakes import FakeChatModel, FakeRetriever, make_hit

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
PASSAGE = "Le conseil municipal ne délibère valablement que si la majorité est présente."


def make(settings: Settings, model: FakeChatModel) -> DraftingService:
    retriever = FakeRetriever([make_hit(1, PASSAGE)])
    return DraftingService(settings, model, retriever, load_templates(PROMPTS))


def test_a_too_long_request_or_field_is_refused_in_french(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_request_chars": 200})
    model = FakeChatModel("Réponse [1]")
    svc = make(limited, model)
    with pytest.raises(DraftingError, match=r"Demande trop longue : 201 caractères, au plus 200"):
        list(svc.stream(DraftRequest("x" * 201)))
    with pytest.raises(DraftingError, match=r"Champ « objet » trop long"):
        list(svc.stream(DraftRequest("court", doc_type="courrier", fields={"objet": "y" * 300})))
    assert model.prompts == []  # nothing reached the model
    assert list(svc.stream(DraftRequest("x" * 200)))[-1].draft is not None  # at the limit: ok


def test_the_time_per_answer_is_bounded_and_the_partial_text_kept(settings: Settings) -> None:
    class Slow(FakeChatModel):
        def _stream(self, messages, *, max_tokens, temperature, stats):  # type: ignore[no-untyped-def]
            for piece in super()._stream(
                messages, max_tokens=max_tokens, temperature=temperature, stats=stats
            ):
                time.sleep(0.3)
                yield piece

    limited = settings.model_copy(update={"request_timeout_s": 1.0})
    model = Slow(" ".join(["mot"] * 100))
    started = time.monotonic()
    draft = make(limited, model).draft(DraftRequest("quorum ?"))
    assert time.monotonic() - started < 8
    assert draft.stopped and "mot" in draft.answer
    assert any("temps maximal" in w for w in draft.warnings)
    assert model.produced < 100
    assert not model.gate.busy  # the model is free for the next agent


def test_answer_tokens_are_capped(settings: Settings) -> None:
    model = FakeChatModel(" ".join(["mot"] * 500))
    draft = make(settings.model_copy(update={"max_tokens": 20}), model).draft(
        DraftRequest("quorum ?")
    )
    assert model.produced <= 20 and draft.answer.count("mot") <= 20


def test_upload_size_reaches_the_web_server(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from assistant.ui.app import DocumentFiles, build_app
    from tests.fakes import FakeDraftingService

    limited = settings.model_copy(update={"max_upload_mb": 0.01})
    app = build_app(FakeDraftingService([]), limited, files=DocumentFiles(dict))
    with TestClient(app) as client:
        big = client.post(
            "/gradio_api/upload", files={"files": ("a.pdf", b"%PDF" + b"x" * 20_000)}
        )
        assert big.status_code == 413
        small = client.post("/gradio_api/upload", files={"files": ("a.pdf", b"%PDF-1.4")})
        assert small.status_code == 200
