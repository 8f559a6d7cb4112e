"""Retrieval examples for TensorBoard: a few queries of every seen task with their top results,
drawn as cards (PIL; hits green, misses red) and written as text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torchvision.transforms.functional import pil_to_tensor, to_pil_image

from ccrbench.evaluation.protocol import TaskEmbeddings

_FONT = ImageFont.load_default(size=14)
_LINE = 18  # pixels per text line
_HIT, _MISS = (0, 140, 0), (200, 0, 0)


def _picture(image: Tensor, size: int) -> Image.Image:
    """A [3, H, W] tensor in [0, 1] as a PIL image `size` pixels high."""
    pil = to_pil_image(image.detach().float().clamp(0, 1).cpu())
    return pil.resize((round(pil.width * size / pil.height), size), Image.NEAREST)


def _wrap(text: str, width: int) -> list[str]:
    """`text` in lines at most `width` pixels wide (words kept whole)."""
    lines = [""]
    for word in text.split():
        candidate = f"{lines[-1]} {word}".strip()
        if _FONT.getlength(candidate) <= width or not lines[-1]:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def i2t_card(image: Tensor, results: Sequence[tuple[bool, str]], *, size: int = 128, width: int = 480) -> Tensor:
    """The query image above its ranked captions, hits green, misses red: [3, H, W] uint8."""
    blocks = [(hit, _wrap(f"{rank}. {'HIT' if hit else 'miss'}: {caption}", width - 8)) for rank, (hit, caption) in enumerate(results, 1)]
    card = Image.new("RGB", (width, size + 8 + _LINE * sum(len(lines) for _, lines in blocks)), "white")
    card.paste(_picture(image, size), (0, 0))
    draw = ImageDraw.Draw(card)
    y = size + 4
    for hit, lines in blocks:
        for line in lines:
            draw.text((4, y), line, fill=_HIT if hit else _MISS, font=_FONT)
            y += _LINE
    return pil_to_tensor(card)


def t2i_card(caption: str, images: Sequence[Tensor], hits: Sequence[bool], *, size: int = 80) -> Tensor:
    """The query caption above its ranked images, each framed and labelled green (hit) or red (miss): [3, H, W] uint8."""
    frame, gap = 4, 6
    tiles = [_picture(image, size) for image in images]
    width = max(sum(t.width + 2 * frame + gap for t in tiles), 320)
    lines = _wrap(caption, width - 8)
    top = _LINE * len(lines) + 4
    card = Image.new("RGB", (width, top + size + 2 * frame + _LINE + 2), "white")
    draw = ImageDraw.Draw(card)
    for row, line in enumerate(lines):
        draw.text((4, 2 + row * _LINE), line, fill="black", font=_FONT)
    x = 0
    for rank, (tile, hit) in enumerate(zip(tiles, hits), 1):
        colour = _HIT if hit else _MISS
        draw.rectangle((x, top, x + tile.width + 2 * frame - 1, top + size + 2 * frame - 1), fill=colour)
        card.paste(tile, (x + frame, top + frame))
        draw.text((x + frame, top + size + 2 * frame), f"{rank}. {'HIT' if hit else 'miss'}", fill=colour, font=_FONT)
        x += tile.width + 2 * frame + gap
    return pil_to_tensor(card)


def _caption(dataset: Any, emb: TaskEmbeddings, row: int) -> str:
    """The text of caption row `row` (rows follow the dataset's images and their captions in order)."""
    image = int(emb.text_to_image[row])
    first = int(torch.nonzero(emb.text_to_image == image)[0])
    return dataset[image][1][row - first]


def log_examples(writer: SummaryWriter, dataset: Any, emb: TaskEmbeddings, *, step: int, tag: str, queries: int = 3, top: int = 5) -> None:
    """Logs the same first `queries` images and captions of a task with their top results:
    as images (query image with its ranked captions; query caption above its ranked
    images; hits green, misses red) when the dataset holds pictures ([3, H, W]), and as text.

    Args:
        writer: where to log.
        dataset: the indexed test dataset, items (image, captions, image_id, task).
        emb: its embeddings with the current encoders (caption rows in dataset order).
        step: the number of tasks learned.
        tag: TensorBoard tag prefix.
        queries: how many image and caption queries.
        top: results shown per query.
    """
    for q in range(min(queries, emb.image.shape[0])):
        image, captions, image_id, _ = dataset[q]
        pictures = image.ndim == 3
        best = (emb.text @ emb.image[q]).topk(min(top, emb.text.shape[0])).indices.tolist()  # caption rows
        results = [(int(emb.text_to_image[j]) == q, _caption(dataset, emb, j)) for j in best]
        if pictures:
            writer.add_image(f"{tag}/i2t_query{q}", i2t_card(image, results), step)
        lines = [f"{'✔' if hit else '✘'} {caption}" for hit, caption in results]
        writer.add_text(f"{tag}/i2t_query{q}", f"image {image_id}:  \n" + "  \n".join(lines), step)
        row = int(torch.nonzero(emb.text_to_image == q)[0])
        best = (emb.image @ emb.text[row]).topk(min(top, emb.image.shape[0])).indices.tolist()  # image rows
        if pictures:
            writer.add_image(f"{tag}/t2i_query{q}", t2i_card(captions[0], [dataset[i][0] for i in best], [i == q for i in best]), step)
        marks = " ".join(("✔" if i == q else "✘") + f" image {dataset[i][2]}" for i in best)
        writer.add_text(f"{tag}/t2i_query{q}", f"{captions[0]}  \nresults, left to right: {marks}", step)
