"""TensorBoard extras beside Avalanche's scalar logging: hyper-parameters and retrieval examples."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid

from ccrbench.evaluation.protocol import ALL_TASKS, AVERAGE, TaskEmbeddings


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become strings (the hparams plugin takes scalars)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def log_hparams(writer: SummaryWriter, config: dict[str, Any], final: dict[str, Any], ks: tuple[int, ...]) -> None:
    """Writes the run's config and final known/unknown-task recalls for the HPARAMS tab."""
    metrics = {
        f"hparam/{policy}/{scope}/{key}": value
        for policy, scopes in final.items()
        for scope in (AVERAGE, ALL_TASKS)
        for key, value in scopes[scope].items()
        if key.endswith(tuple(f"_r{k}" for k in ks)) or key == "rsum"
    }
    writer.add_hparams(flatten(config), metrics, run_name=".")


def _caption(dataset: Any, emb: TaskEmbeddings, row: int) -> str:
    """The text of caption row `row` (rows follow the dataset's images and their captions in order)."""
    image = int(emb.text_to_image[row])
    first = int(torch.nonzero(emb.text_to_image == image)[0])
    return dataset[image][1][row - first]


def log_examples(writer: SummaryWriter, dataset: Any, emb: TaskEmbeddings, *, step: int, tag: str, queries: int = 3, top: int = 5) -> None:
    """Logs a few queries with their top results: images with their best captions, captions
    with a grid of their best images (correct results marked). Images are logged only when
    the dataset holds pictures ([3, H, W]), not precomputed features.

    Args:
        writer: where to log.
        dataset: the indexed test dataset, items (image, captions, image_id, task).
        emb: its embeddings with the current encoders (caption rows in dataset order).
        step: the stage.
        tag: TensorBoard tag prefix.
        queries: how many image and caption queries.
        top: results shown per query.
    """
    for q in range(min(queries, emb.image.shape[0])):
        image, captions, image_id, _ = dataset[q]
        pictures = image.ndim == 3
        best = (emb.text @ emb.image[q]).topk(min(top, emb.text.shape[0])).indices.tolist()  # caption rows
        lines = [f"{'✔' if int(emb.text_to_image[j]) == q else '✘'} {_caption(dataset, emb, j)}" for j in best]
        if pictures:
            writer.add_image(f"{tag}/i2t_query{q}", image, step)
        writer.add_text(f"{tag}/i2t_query{q}", f"image {image_id}:  \n" + "  \n".join(lines), step)
        row = int(torch.nonzero(emb.text_to_image == q)[0])
        best = (emb.image @ emb.text[row]).topk(min(top, emb.image.shape[0])).indices.tolist()  # image rows
        if pictures:
            writer.add_image(f"{tag}/t2i_query{q}", make_grid(torch.stack([dataset[i][0] for i in best]), nrow=len(best)), step)
        marks = " ".join(("✔" if i == q else "✘") + f" image {dataset[i][2]}" for i in best)
        writer.add_text(f"{tag}/t2i_query{q}", f"{captions[0]}  \nresults, left to right: {marks}", step)
