"""Cost of the drift diagnostics and of budgeted partial reindexing next to the evaluation itself.

Times one evaluation stage of the default config (configs/shapes_finetune.yaml: 3 seen
tasks of 500 test images with 5 captions each, 256 dimensions): embedding the test sets
with the (untrained) default model, the retrieval metrics of reindex and no reindex (what
every run computes), the diagnostics, and the partial-reindexing policies (selection, then
their metrics). Stored embeddings are the current ones with noise. CPU seconds
(process time, so other load on the machine does not count), best of --repeats.

    python scripts/bench_diagnostics.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from torch.utils.data import DataLoader

import ccrbench  # noqa: F401 - fills the registries
from ccrbench.config import load_config
from ccrbench.evaluation.diagnostics import stage_diagnostics
from ccrbench.evaluation.protocol import TaskEmbeddings, concat_tasks, metrics_from_ranks, stage_ranks
from ccrbench.evaluation.reindexing import BudgetedIndexes
from ccrbench.registry import BENCHMARKS
from ccrbench.build import seed_everything
from ccrbench.models.build import model_from_config
from ccrbench.training.template import RetrievalCollate


def embed_test_sets(config_path: str) -> tuple[dict[int, TaskEmbeddings], Callable[[], object]]:
    """Every task's test set embedded by the default (untrained) model, and that embedding as a callable."""
    config = load_config(config_path)
    seed_everything(config.seed)
    benchmark = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)
    model = model_from_config(config.model, benchmark.train_captions).eval()
    collate = RetrievalCollate(model.tokenize)

    def embed() -> dict[int, TaskEmbeddings]:
        out = {}
        with torch.no_grad():
            for exp in benchmark.test_stream:
                parts = []
                for batch in DataLoader(exp.dataset, batch_size=config.eval.batch_size, collate_fn=collate):
                    image, text = model(batch.images, batch.text)
                    parts.append(TaskEmbeddings(image, text, batch.text_to_image))
                out[exp.task_label] = concat_tasks(parts)
        return out

    return embed(), embed


def drifted(emb: TaskEmbeddings, amount: float, g: torch.Generator) -> TaskEmbeddings:
    move = lambda x: F.normalize(x + amount * torch.randn(x.shape, generator=g), dim=1)  # noqa: E731
    return TaskEmbeddings(move(emb.image), move(emb.text), emb.text_to_image)


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/shapes_finetune.yaml")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    current, embed = embed_test_sets(args.config)
    tasks = sorted(current)
    stored = {t: drifted(current[t], 0.3, g) for t in tasks}
    embedding = best_of(args.repeats, embed)

    def metrics(databases):
        return metrics_from_ranks(stage_ranks(current, databases, directions=("i2t", "t2i")))

    base = {"reindex": current, "noreindex": stored}
    ranks = stage_ranks(current, base)
    evaluation = best_of(args.repeats, lambda: metrics(base))
    diagnostics = best_of(args.repeats, lambda: stage_diagnostics(current, stored, ranks["reindex"], directions=("i2t", "t2i")))

    def budgets():
        indexes = BudgetedIndexes(budgets=[0.1, 0.25, 0.5], rules=["oldest_first", "random", "most_drifted_first"])
        for t in tasks:
            indexes.index(t, stored[t], stage=0)
        start = time.process_time()
        indexes.reindex(1, current, tasks)
        return time.process_time() - start, indexes

    select, indexes = min((budgets() for _ in range(args.repeats)), key=lambda x: x[0])
    partial_metrics = best_of(args.repeats, lambda: metrics({**base, **indexes.databases}))
    sizes = ", ".join(f"{tuple(current[t].image.shape)} images / {current[t].text.shape[0]} captions" for t in tasks)
    print(f"{args.config}: {len(tasks)} tasks ({sizes}); {args.threads} thread(s); CPU seconds, best of {args.repeats}")
    print(f"embedding the test sets:                            {embedding:.3f} s")
    print(f"retrieval metrics, reindex + no reindex:            {evaluation:.3f} s")
    whole = embedding + evaluation
    print(f"diagnostics:                                        {diagnostics:.3f} s  ({100 * diagnostics / whole:.0f} % of embedding + metrics)")
    print(f"partial reindexing, 3 budgets x 3 rules, selection: {select:.3f} s")
    print(f"metrics of reindex + no reindex + those 9 policies: {partial_metrics:.3f} s  ({partial_metrics / evaluation:.1f} x)")


if __name__ == "__main__":
    main()
