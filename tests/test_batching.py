"""Length-aware batching: the grouping is the cheapest there is, and changes no prediction."""

import itertools
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackport.inference.batching import length_groups
from stackport.inference.predictor import OnnxPredictor
from tests.helpers import tiny_onnx_model


def cost(groups: list[list[int]], lengths: list[int], run_cost: int) -> int:
    return sum(run_cost + len(rows) * max(lengths[row] for row in rows) for rows in groups)


def cheapest_cost(lengths: list[int], run_cost: int) -> int:
    """The least cost over every way to cut the sorted rows into consecutive groups."""
    order = sorted(range(len(lengths)), key=lambda row: lengths[row])
    best = None
    for cuts in itertools.product((False, True), repeat=len(order) - 1):
        groups, current = [], [order[0]]
        for row, cut in zip(order[1:], cuts, strict=True):
            if cut:
                groups.append(current)
                current = []
            current.append(row)
        groups.append(current)
        best = min(best or cost(groups, lengths, run_cost), cost(groups, lengths, run_cost))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_groups_are_the_cheapest_cut_of_the_sorted_rows(seed):
    generator = random.Random(seed)
    lengths = [generator.randint(3, 128) for _ in range(generator.randint(1, 9))]
    run_cost = generator.choice([0, 16, 64, 512])

    groups = length_groups(lengths, run_cost)

    assert sorted(row for rows in groups for row in rows) == list(range(len(lengths)))
    assert cost(groups, lengths, run_cost) == cheapest_cost(lengths, run_cost)


def test_a_long_row_among_short_ones_runs_alone():
    lengths = [20] * 31 + [128]

    assert length_groups(lengths, 64) == [list(range(31)), [31]]
    # Cutting saves 31 x 108 padded tokens; a run costing more than that keeps one batch.
    assert length_groups(lengths, 31 * 108 + 1) == [list(range(32))]


def test_rows_of_one_length_run_as_one_batch():
    assert length_groups([40] * 16, 1) == [list(range(16))]
    assert length_groups([], 64) == []


@pytest.mark.parametrize("task", ["classification", "ner"])
def test_grouped_rows_give_the_logits_of_one_padded_batch(
    task, tiny_bert_path: Path, bbc_slice: pd.DataFrame, tmp_path
):
    labels = ["B-PER", "I-PER", "O"] if task == "ner" else sorted(bbc_slice["label"].unique())
    predictor = OnnxPredictor(tiny_onnx_model(tiny_bert_path, labels, tmp_path, task=task))
    articles = bbc_slice["text"].tolist()
    texts = [" ".join(article.split()[: 3 + 9 * index]) for index, article in enumerate(articles)]
    batch = predictor.encode_for_prediction(texts[:12])
    lengths = batch.inputs["attention_mask"].sum(axis=1)
    assert len(length_groups(lengths.tolist())) > 1  # rows of several lengths: several runs

    grouped = predictor.run_rows(batch.inputs)
    whole = predictor.session.run(None, batch.inputs)[0]

    if task == "ner":  # token logits: only the real tokens count
        real = batch.inputs["attention_mask"].astype(bool)
        np.testing.assert_allclose(grouped[real], whole[real], atol=1e-4)
    else:
        np.testing.assert_allclose(grouped, whole, atol=1e-4)
