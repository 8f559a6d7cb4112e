"""The retrieval training template on Avalanche's SupervisedTemplate.

Batches are `RetrievalBatch`es (images, tokenised captions, caption->image links,
image ids, task ids) built by `RetrievalCollate`; the forward pass runs both
branches and the criterion is a retrieval loss. Avalanche 0.6.0 pitfalls handled
here: its train loader ignores collate functions, `_unpack_minibatch` calls `.to()`
on every element, `update_optimizer` silently adds parameters, and the default
evaluator assumes classification (the runner always passes its own).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from avalanche.training.templates import SupervisedTemplate
from torch import Tensor
from torch.utils.data import DataLoader

from ccrbench.models.text import TokenBatch


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class RetrievalBatch(NamedTuple):
    """A mini-batch of images and their captions.

    Attributes:
        images: [N, ...] encoder inputs.
        text: tokenised captions, M of them.
        text_to_image: LongTensor [M], each caption's row in `images`.
        image_ids: LongTensor [N], dataset-wide image ids.
        task_ids: LongTensor [N], the task of each image (last, as Avalanche expects).
    """

    images: Tensor
    text: TokenBatch
    text_to_image: Tensor
    image_ids: Tensor
    task_ids: Tensor

    def to(self, device: torch.device | str) -> "RetrievalBatch":
        return RetrievalBatch(*(x.to(device, non_blocking=True) for x in self))


class RetrievalCollate:
    """Collates (image, caption or captions, image_id, task) items into a RetrievalBatch.

    Args:
        tokenize: captions -> TokenBatch (the text encoder's tokenizer).
    """

    def __init__(self, tokenize: Callable[[Sequence[str]], TokenBatch]) -> None:
        self.tokenize = tokenize

    def __call__(self, items: Sequence[Sequence[Any]]) -> RetrievalBatch:
        images, captions, image_ids, task_ids = zip(*items)
        groups = [(c,) if isinstance(c, str) else tuple(c) for c in captions]
        counts = torch.tensor([len(g) for g in groups])
        return RetrievalBatch(
            images=torch.stack(images),
            text=self.tokenize([c for g in groups for c in g]),
            text_to_image=torch.repeat_interleave(torch.arange(len(groups)), counts),
            image_ids=torch.tensor(image_ids, dtype=torch.long),
            task_ids=torch.tensor(task_ids, dtype=torch.long),
        )


class RetrievalTemplate(SupervisedTemplate):
    """Trains a `TwoBranchModel` with a retrieval loss on streams of image-caption experiences.

    The optimizer keeps exactly the parameters it was built with (frozen parts stay
    frozen) and keeps its state across experiences.

    Args:
        model: the two-branch model.
        optimizer: optimizer over the trainable parameters.
        criterion: loss(image_emb [B, D], text_emb [B, D], image_ids [B]) -> scalar.
        train_mb_size: training pairs per batch.
        train_epochs: epochs per experience.
        eval_mb_size: images per batch when indexing.
        device: where to train.
        plugins: Avalanche plugins (strategies, progress bars, ...).
        evaluator: the EvaluationPlugin (never Avalanche's classification default).
        grad_clip: clip the gradient norm to this value (0 disables).
        num_workers: data loader workers.
    """

    def __init__(
        self,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: torch.nn.Module,
        train_mb_size: int,
        train_epochs: int,
        eval_mb_size: int,
        device: str | torch.device = "cpu",
        plugins: Sequence[Any] | None = None,
        evaluator: Any,
        grad_clip: float = 0.0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=list(plugins or []),
            evaluator=evaluator,
        )
        self.collate = RetrievalCollate(model.tokenize)
        self.grad_clip = grad_clip
        self.num_workers = num_workers

    # --------------------------------------------------------------- batch views
    @property
    def mb_images(self) -> Tensor:
        return self.mbatch.images

    @property
    def mb_text(self) -> TokenBatch:
        return self.mbatch.text

    @property
    def mb_text_to_image(self) -> Tensor:
        return self.mbatch.text_to_image

    @property
    def mb_image_ids(self) -> Tensor:
        return self.mbatch.image_ids

    @property
    def mb_task_id(self) -> Tensor:
        return self.mbatch.task_ids

    # --------------------------------------------------------------- data
    def make_train_dataloader(self, shuffle: bool = True, **kwargs: Any) -> None:
        self.dataloader = DataLoader(
            self.adapted_dataset,
            batch_size=self.train_mb_size,
            shuffle=shuffle,
            drop_last=len(self.adapted_dataset) > self.train_mb_size,
            collate_fn=self.collate,
            num_workers=self.num_workers,
        )

    def make_eval_dataloader(self, **kwargs: Any) -> None:
        self.dataloader = DataLoader(
            self.adapted_dataset, batch_size=self.eval_mb_size, shuffle=False, collate_fn=self.collate, num_workers=self.num_workers
        )

    def _unpack_minibatch(self) -> None:
        self.mbatch = self.mbatch.to(self.device)

    # --------------------------------------------------------------- model
    def make_optimizer(self, **kwargs: Any) -> None:
        """Keeps the optimizer as built (Avalanche's default would add every model parameter)."""

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.model(self.mb_images, self.mb_text)

    def criterion(self) -> Tensor:
        image_emb, text_emb = self.mb_output
        t2i = self.mb_text_to_image
        return self._criterion(image_emb[t2i], text_emb, self.mb_image_ids[t2i])

    def backward(self) -> None:
        if not torch.isfinite(self.loss):
            raise NonFiniteLossError(
                f"training loss is {self.loss.item()} at experience {self.clock.train_exp_counter}, "
                f"iteration {self.clock.train_exp_iterations}: lower the learning rate or the regularisation strength"
            )
        super().backward()

    def optimizer_step(self) -> None:
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        super().optimizer_step()
