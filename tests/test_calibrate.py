"""scripts/calibrate.py: the relevance band and threshold chosen from measured features."""

from __future__ import annotations

import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

import calibrate


def test_threshold_declines_every_out_of_corpus_question() -> None:
    # e5-like: answerable questions' best passages sit at 0.86-0.90, off-corpus ones at 0.78-0.83.
    inside = [[(0.86 + 0.01 * (i % 5), 0.4), (0.80, 0.1)] for i in range(20)]
    outside = [[(0.78 + 0.01 * (i % 6), 0.2)] for i in range(12)]
    result = calibrate.calibrate_relevance(inside, outside)
    assert result["max_out_of_corpus"] < result["abstain_threshold"]
    assert result["accepted_in_corpus"] == 1.0
    assert result["cosine_floor"] < result["cosine_ceiling"]


def test_overlapping_sets_keep_off_corpus_declined_at_some_cost() -> None:
    inside = [[(0.80, 0.0)], [(0.90, 1.0)], [(0.88, 0.5)]]
    outside = [[(0.85, 0.2)]]
    result = calibrate.calibrate_relevance(inside, outside)
    assert result["max_out_of_corpus"] < result["abstain_threshold"]
    assert 0.0 < result["accepted_in_corpus"] < 1.0
