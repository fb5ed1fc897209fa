"""The context budget: uncached prompt tokens per request never exceed it (fake model, then the
real SmolLM2 whose figures llama.cpp measures), the naive context used for comparison, and the
token accounting of the chat models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.drafting import NAIVE_TOP_K, Draft, DraftingService, DraftRequest
from assistant.errors import ConfigError
from assistant.llm import MESSAGE_MARKUP_TOKENS, ChatModel, GenerationStats, Message
from assistant.prompts import Templates, load_templates
from tests.fakes import FakeChatModel, FakeRetriever, make_hit

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
QUORUM = (
    "Le conseil municipal ne délibère valablement que lorsque la majorité de ses membres en "
    "exercice est présente."
)


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates(PROMPTS)


def long_passage(i: int, sentences: int = 80) -> str:
    """A long chunk (~1,500 tokens) with the matching sentence in the middle."""
    before = " ".join(
        f"La délibération n° {i}-{k} porte sur l'entretien de la voirie communale."
        for k in range(sentences // 2)
    )
    after = " ".join(
        f"Le marché n° {i}-{k} concerne les espaces verts du quartier."
        for k in range(sentences // 2)
    )
    return f"{before} {QUORUM} {after}"


def long_hits(n: int = 8, first: int = 1) -> list:  # type: ignore[type-arg]
    return [
        make_hit(i, long_passage(i), relevance=0.9 - i / 100, page=i + 2)
        for i in range(first, first + n)
    ]


def uncached(draft: Draft) -> int:
    """Prompt tokens the model really evaluated (its own figures, not the service's plan)."""
    t = draft.timings
    return int(t["prompt_tokens"]) - int(t["cached_tokens"])


# --- fast: the fake model reports prompt/cached tokens as llama.cpp does ---------------------


@pytest.mark.parametrize("budget", [300, 800, 1500])
def test_uncached_prompt_tokens_never_exceed_the_budget(
    settings: Settings, templates: Templates, budget: int
) -> None:
    model = FakeChatModel("Oui [1].")
    svc = DraftingService(
        settings.model_copy(update={"context_budget": budget}),
        model,
        FakeRetriever(long_hits()),
        templates,
    )
    first = svc.draft(DraftRequest("Quel est le quorum du conseil municipal ?"))
    second = svc.draft(DraftRequest("Quand le conseil municipal délibère-t-il valablement ?"))
    # The first request also pays the fixed part once; from then on it is cached.
    assert (
        uncached(first) > first.timings["context_tokens"]
        and budget >= first.timings["context_tokens"]
    )
    assert uncached(second) <= second.timings["context_tokens"] <= budget
    assert second.timings["budget_tokens"] == budget
    # Evidence, not documents: each source is cut to the sentences bearing on the question
    # (far below the passage), never dropped for size alone, and each keeps its page.
    assert len(second.sources) >= 2
    # The same sentence in several passages is shown once (the first), not once per source.
    assert QUORUM in second.sources[0].text
    assert sum(QUORUM in c.text for c in second.sources) == 1
    assert all("[…]" in c.text for c in second.sources)
    assert all(len(c.text) < len(long_passage(c.n)) // 3 for c in second.sources)
    assert [c.page for c in second.sources] == [c.n + 2 for c in second.sources]


def test_a_type_with_its_own_budget_keeps_to_it(settings: Settings, templates: Templates) -> None:
    model = FakeChatModel("Projet [1].")
    svc = DraftingService(settings, model, FakeRetriever(long_hits()), templates)
    request = DraftRequest(
        "Délibération sur le quorum", doc_type="deliberation", fields={"objet": "Quorum"}
    )
    svc.draft(request)
    draft = svc.draft(request)
    budget = templates.get("deliberation").budget_tokens
    assert budget and draft.timings["budget_tokens"] == budget
    assert uncached(draft) <= draft.timings["context_tokens"] <= budget


def test_no_budget_is_the_naive_context_of_whole_passages(
    settings: Settings, templates: Templates
) -> None:
    model = FakeChatModel("Oui [1].")
    hits = long_hits()
    svc = DraftingService(
        settings.model_copy(update={"context_budget": 0, "n_ctx": 32768}),
        model,
        FakeRetriever(hits),
        templates,
    )
    draft = svc.draft(DraftRequest("Quel est le quorum du conseil municipal ?"))
    assert [c.text for c in draft.sources] == [h.text for h in hits[:NAIVE_TOP_K]]
    assert draft.timings["budget_tokens"] == 0
    assert draft.timings["context_tokens"] > 5 * 800
    # Every type's budget is off, not only the question's.
    letter = svc.draft(DraftRequest("Courrier", doc_type="courrier", fields={"objet": "Quorum"}))
    assert len(letter.sources) == NAIVE_TOP_K and letter.timings["budget_tokens"] == 0


def test_no_budget_still_fits_the_context_window(settings: Settings, templates: Templates) -> None:
    model = FakeChatModel("Oui [1].")
    svc = DraftingService(
        settings.model_copy(update={"context_budget": 0, "n_ctx": 4096}),
        model,
        FakeRetriever(long_hits()),
        templates,
    )
    draft = svc.draft(DraftRequest("Quel est le quorum du conseil municipal ?"))
    assert 0 < len(draft.sources) < NAIVE_TOP_K  # whole passages, as many as the window holds
    prompt = model.count_prompt_tokens(draft.prompt)
    assert prompt + draft.timings["completion_tokens"] <= 4096


def test_a_budget_below_100_is_refused_but_0_turns_it_off(settings: Settings) -> None:
    from assistant.config import load_settings

    assert settings.model_copy(update={"context_budget": 0}).context_budget == 0
    with pytest.raises(ConfigError, match="context_budget"):
        load_settings(context_budget=50)


# --- token accounting of a chat model without its real tokens (server, fakes) -----------------


class _Estimating(ChatModel):
    """A backend that cannot tokenize: only the base-class estimates are used."""

    def _stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        stats: GenerationStats,
    ) -> Iterator[str]:
        yield "x"


def test_estimated_uncached_tokens_count_the_new_messages_and_their_markup() -> None:
    model = _Estimating()
    system = {"role": "system", "content": "s" * 300}
    user = {"role": "user", "content": "u" * 90}
    assert model.count_prompt_tokens([system, user]) == 100 + 30 + 3 * MESSAGE_MARKUP_TOKENS
    assert model.uncached_tokens([system, user], [system]) == 30 + 2 * MESSAGE_MARKUP_TOKENS
    other = {"role": "system", "content": "t" * 300}
    assert model.uncached_tokens([system, user], [other]) == model.count_prompt_tokens(
        [system, user]
    )


# --- slow: the real SmolLM2 through llama.cpp, whose own counters give the figures ------------


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> ChatModel:
    from assistant.config import TEST_CHAT_MODEL
    from assistant.drafting import enable_prompt_cache
    from assistant.llm import LocalChatModel
    from tests.conftest import MODELS_DIR, require_model

    require_model(TEST_CHAT_MODEL)
    model = LocalChatModel(
        Settings(
            data_dir=tmp_path_factory.mktemp("data"),
            models_dir=MODELS_DIR,
            chat_model=TEST_CHAT_MODEL,
            threads=2,
            n_ctx=4096,
        )
    )
    enable_prompt_cache(model, capacity_bytes=512 << 20)
    return model


def real_settings(small_model: ChatModel, tmp_path: Path, **update: object) -> Settings:
    from assistant.config import TEST_CHAT_MODEL
    from tests.conftest import MODELS_DIR

    return Settings(
        data_dir=tmp_path,
        models_dir=MODELS_DIR,
        chat_model=TEST_CHAT_MODEL,
        threads=2,
        max_tokens=16,
        temperature=0.0,
        **update,  # type: ignore[arg-type]
    )


@pytest.mark.slow
def test_real_model_predicted_uncached_tokens_match_llama_cpp(small_model: ChatModel) -> None:
    system = {"role": "system", "content": "Tu es l'assistant d'une mairie. " * 20}
    first = [system, {"role": "user", "content": "Que fait un maire ? " * 5}]
    second = [system, {"role": "user", "content": "Quel est le rôle du conseil municipal ? " * 5}]
    stats = GenerationStats()
    small_model.complete(first, max_tokens=4, temperature=0.0, stats=stats)
    assert stats.prompt_tokens == small_model.count_prompt_tokens(first)
    predicted = small_model.uncached_tokens(second, first)
    stats = GenerationStats()
    small_model.complete(second, max_tokens=4, temperature=0.0, stats=stats)
    assert stats.prompt_tokens - stats.cached_tokens == predicted


@pytest.mark.slow
@pytest.mark.parametrize("budget", [600, 800])
def test_real_model_evaluates_no_more_than_the_budget(
    small_model: ChatModel, templates: Templates, tmp_path: Path, budget: int
) -> None:
    retriever = FakeRetriever(long_hits())
    svc = DraftingService(
        real_settings(small_model, tmp_path, context_budget=budget),
        small_model,
        retriever,
        templates,
    )
    svc.draft(DraftRequest("Quel est le quorum du conseil municipal ?"))
    retriever.hits = long_hits(first=20)  # other passages: the variable part is all new
    draft = svc.draft(DraftRequest("Quand le conseil municipal délibère-t-il valablement ?"))
    # The quorum sentence, in every passage, is shown once (the first source).
    assert draft.sources and QUORUM in draft.sources[0].text
    # (The other passages repeat it: their evidence is short, the budget need not be filled.)
    assert 0 < uncached(draft) <= draft.timings["context_tokens"] <= budget, (
        draft.timings
    )
    # Switching type and back: the question's fixed part comes from the state cache.
    svc.draft(DraftRequest("Courrier", doc_type="courrier", fields={"objet": "Quorum"}))
    retriever.hits = long_hits(first=40)
    back = svc.draft(DraftRequest("Le conseil municipal peut-il délibérer sans quorum ?"))
    assert uncached(back) <= budget, back.timings


@pytest.mark.slow
def test_real_model_naive_context_reads_far_more(
    small_model: ChatModel, templates: Templates, tmp_path: Path
) -> None:
    retriever = FakeRetriever([make_hit(i, long_passage(i, 16)) for i in range(1, 9)])
    svc = DraftingService(
        real_settings(small_model, tmp_path, context_budget=0),
        small_model,
        retriever,
        templates,
    )
    svc.draft(DraftRequest("Quel est le quorum du conseil municipal ?"))
    retriever.hits = [make_hit(i, long_passage(i, 16)) for i in range(20, 28)]
    draft = svc.draft(DraftRequest("Quand le conseil municipal délibère-t-il valablement ?"))
    assert len(draft.sources) == NAIVE_TOP_K
    assert uncached(draft) > 800, draft.timings


def test_naive_context_takes_the_passages_as_retrieved_unfiltered(
    settings: Settings, templates: Templates
) -> None:
    hits = [make_hit(1, QUORUM, relevance=0.9)]
    hits += [make_hit(i, f"Passage faible numéro {i}.", relevance=0.1) for i in range(2, 8)]
    budgeted = DraftingService(settings, FakeChatModel("Oui [1]."), FakeRetriever(hits), templates)
    naive = DraftingService(
        settings.model_copy(update={"context_budget": 0}),
        FakeChatModel("Oui [1]."),
        FakeRetriever(hits),
        templates,
    )
    request = DraftRequest("Quel est le quorum du conseil municipal ?")
    assert [c.source for c in budgeted.draft(request).sources] == ["doc1.pdf"]
    assert len(naive.draft(request).sources) == NAIVE_TOP_K
    # Abstention does not depend on the budget: nothing relevant, no model call either way.
    weak = FakeRetriever(hits[1:])
    naive.retriever = weak
    calls = len(naive.chat_model.prompts)  # type: ignore[attr-defined]
    assert naive.draft(request).abstained
    assert len(naive.chat_model.prompts) == calls  # type: ignore[attr-defined]
