from collections import Counter

import pytest
import torch

from ccrbench.registry import STRATEGIES
from ccrbench.strategies.replay import ReplayCollate, even_split, reservoir_update, task_balanced_update
from tests.training.test_template import tiny_strategy


def task_items(task, n=30):
    """Fake training items (image, caption, image_id, task); image ids are unique over tasks."""
    return [(torch.zeros(1), f"caption {i}", task * 1000 + i, task) for i in range(n)]


def reservoir_over_tasks(capacity, tasks=3, n=30):
    memory, seen = [], 0
    for t in range(tasks):
        memory = reservoir_update(memory, seen, task_items(t, n), capacity)
        seen += n
    return memory


def test_reservoir_keeps_exactly_memory_size_items_each_equally_likely():
    torch.manual_seed(0)
    assert len(reservoir_update([], 0, task_items(0, 4), 10)) == 4  # not full yet: everything is kept
    trials = 2000
    counts = Counter()
    for _ in range(trials):
        memory = reservoir_over_tasks(capacity=10)
        ids = [m[2] for m in memory]
        assert len(ids) == 10 and len(set(ids)) == 10
        counts.update(ids)
    assert len(counts) == 90
    assert all(abs(c / trials - 10 / 90) < 0.04 for c in counts.values())  # inclusion 1/9 for every item, old or new
    per_task = Counter(i // 1000 for i in counts.elements())
    assert all(abs(per_task[t] / (10 * trials) - 1 / 3) < 0.02 for t in range(3))


def test_even_split_gives_the_remainder_to_the_earliest_tasks():
    assert even_split(10, [2, 0, 1]) == {0: 4, 1: 3, 2: 3}
    assert even_split(10, [5]) == {5: 10}


def test_task_balanced_memory_splits_evenly_across_tasks():
    torch.manual_seed(0)
    memory = task_balanced_update([], task_items(0), 0, 10)
    assert Counter(m[-1] for m in memory) == {0: 10}
    after_two = task_balanced_update(memory, task_items(1), 1, 10)
    assert Counter(m[-1] for m in after_two) == {0: 5, 1: 5}
    assert [m for m in after_two if m[-1] == 0] == memory[:5]  # old tasks shrink, never resample
    after_three = task_balanced_update(after_two, task_items(2), 2, 10)
    assert Counter(m[-1] for m in after_three) == {0: 4, 1: 3, 2: 3}
    assert len({m[2] for m in after_three}) == 10  # drawn without replacement
    assert len(task_balanced_update([], task_items(0, n=4), 0, 10)) == 4  # a small task gives what it has


@pytest.mark.parametrize("policy", ["reservoir", "task_balanced"])
def test_memory_is_deterministic_given_the_torch_seed(policy):
    def fill(seed):
        torch.manual_seed(seed)
        if policy == "reservoir":
            return [m[2] for m in reservoir_over_tasks(capacity=10)]
        return [m[2] for m in task_balanced_update(task_balanced_update([], task_items(0), 0, 10), task_items(1), 1, 10)]

    assert fill(0) == fill(0) != fill(1)


def test_replay_collate_appends_memory_items_without_replacement():
    torch.manual_seed(0)
    seen = []
    collate = ReplayCollate(seen.extend, task_items(0, n=5), per_batch=3)
    collate(task_items(1, n=4))
    assert [m[-1] for m in seen] == [1] * 4 + [0] * 3 and len({m[2] for m in seen[4:]}) == 3
    seen.clear()
    ReplayCollate(seen.extend, task_items(0, n=2), per_batch=3)(task_items(1, n=4))
    assert len(seen) == 6  # a memory smaller than per_batch is replayed whole


@pytest.mark.parametrize("policy", ["reservoir", "task_balanced"])
def test_batches_of_later_tasks_mix_in_old_task_pairs(policy):
    bm, strategy, _ = tiny_strategy()
    plugin = STRATEGIES.build("replay", {"memory_size": 20, "policy": policy, "replay_per_batch": 4})
    strategy.plugins.insert(0, plugin)
    batches = []
    original = strategy.training_epoch

    def spy_epoch(**kwargs):
        batches.extend((strategy.clock.train_exp_counter, b.task_ids.tolist()) for b in strategy.dataloader)
        return original(**kwargs)

    strategy.training_epoch = spy_epoch
    strategy.train(bm.train_stream[0])
    assert len(plugin.memory) == 20 and {m[-1] for m in plugin.memory} == {0}
    strategy.train(bm.train_stream[1])
    first, second = [t for e, t in batches if e == 0], [t for e, t in batches if e == 1]
    assert first and all(tasks == [0] * 16 for tasks in first)  # nothing to replay during the first task
    assert second and all(tasks == [1] * 16 + [0] * 4 for tasks in second)  # every batch mixes tasks
    assert len(plugin.memory) == 20 and {m[-1] for m in plugin.memory} == {0, 1}
