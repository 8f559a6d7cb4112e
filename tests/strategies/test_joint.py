import torch

from ccrbench.registry import STRATEGIES
from ccrbench.strategies.joint_no_ctnp import TaskBatchSampler
from tests.training.test_template import tiny_strategy


def test_task_batch_sampler_never_mixes_tasks_and_covers_everything():
    labels = [0] * 10 + [1] * 7 + [2] * 5
    sampler = TaskBatchSampler(labels, batch_size=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3 + 2 + 2
    assert sorted(i for b in batches for i in b) == list(range(len(labels)))
    assert all(len({labels[i] for i in b}) == 1 for b in batches)


def test_task_batch_sampler_interleaves_tasks_anew_every_epoch():
    labels = [0] * 40 + [1] * 40
    sampler = TaskBatchSampler(labels, batch_size=4)
    torch.manual_seed(0)
    first, second = ([labels[b[0]] for b in sampler] for _ in range(2))
    assert sum(a != b for a, b in zip(first, first[1:])) > 1  # not one task after the other (one switch)
    assert first != second  # each epoch draws its own interleaving


def test_joint_no_ctnp_batches_hold_one_task():
    bm, strategy, _ = tiny_strategy()
    plugin = STRATEGIES.build("joint_no_ctnp", {})
    strategy.plugins.insert(0, plugin)
    seen = []
    (merged,) = plugin.training_experiences(list(bm.train_stream))
    assert sorted(merged.task_labels) == [0, 1, 2]
    original = strategy.training_epoch

    def spy_epoch(**kwargs):
        for batch in strategy.dataloader:
            seen.append(set(batch.task_ids.tolist()))
        return original(**kwargs)

    strategy.training_epoch = spy_epoch
    strategy.train(merged)
    assert seen and all(len(tasks) == 1 for tasks in seen)
    assert set().union(*seen) == {0, 1, 2}


def test_joint_batches_mix_tasks():
    bm, strategy, _ = tiny_strategy()
    (merged,) = STRATEGIES.build("joint", {}).training_experiences(list(bm.train_stream))
    strategy.experience, strategy.adapted_dataset = merged, merged.dataset
    strategy.make_train_dataloader()
    torch.manual_seed(0)
    assert any(len(set(b.task_ids.tolist())) > 1 for b in strategy.dataloader)
