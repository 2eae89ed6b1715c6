"""Length-aware batching: the rows of a batch run in groups of similar length.

A batch is padded to its longest row, so one long text makes every short text of the batch
cost as much as it does. Sorting the rows by token count and cutting the sorted order into
groups, each padded to its own longest row, removes most of that padding; each group is one
more session run, which has a fixed cost. `length_groups` cuts where the padding saved is worth
more than a run: it minimizes, over every way to cut the sorted rows into consecutive groups,
the padded tokens of all groups plus `run_cost_tokens` per group (dynamic programming over the
cut points, exact).
"""

from __future__ import annotations

from collections.abc import Sequence

# What one more session run costs, in padded tokens of compute: MiniLM-L6's fixed cost per run
# (session dispatch, the classifier head, small-tensor kernels), fitted by benchmarks/batching.py
# on one thread of an EPYC core, is about as much as 8 (fp32) to 13 (dynamic int8) more
# tokens of a batch (docs/benchmarks.md).
RUN_COST_TOKENS = 12


def length_groups(
    lengths: Sequence[int], run_cost_tokens: int = RUN_COST_TOKENS
) -> list[list[int]]:
    """Row indices grouped so that the padded tokens plus `run_cost_tokens` per group are least.

    Args:
        lengths: Each row's token count (without padding).
        run_cost_tokens: The fixed cost of one session run, in padded tokens.

    Returns:
        Groups of row indices, each sorted by length, the groups in increasing length; every
        row is in exactly one group. No rows give no groups.
    """
    order = sorted(range(len(lengths)), key=lambda row: lengths[row])
    sorted_lengths = [lengths[row] for row in order]
    rows = len(order)
    # cost[end]: the least cost of the first `end` sorted rows; start[end]: its last group's start.
    cost = [0] + [0] * rows
    start = [0] * (rows + 1)
    for end in range(1, rows + 1):
        longest = sorted_lengths[end - 1]  # the longest row of any group ending here
        cost[end], start[end] = min(
            (cost[first] + run_cost_tokens + (end - first) * longest, first) for first in range(end)
        )
    groups = []
    end = rows
    while end > 0:
        groups.append(order[start[end] : end])
        end = start[end]
    return groups[::-1]
