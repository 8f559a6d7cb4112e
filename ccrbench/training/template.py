"""The retrieval training template on Avalanche's SupervisedTemplate.

Batches are `RetrievalBatch`es (images, tokenised captions, caption->image links,
image ids, task ids) built by `RetrievalCollate`; the forward pass runs both
branches and the criterion is a retrieval loss. Avalanche 0.6.0 pitfalls handled
here: its train loader ignores collate functions, `_unpack_minibatch` calls `.to()`
on every element, `update_optimizer` silently adds parameters, and the default
evaluator assumes classification (the runner always passes its own).

With several processes (torchrun, `ccrbench.distributed`), `train_mb_size` is the global
batch: each process trains on its part of every batch, the loss is computed on the pairs of
all processes (`global_loss`) and the gradients are averaged before the optimizer step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import torch
from avalanche.training.templates import SupervisedTemplate
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ccrbench.distributed import ShardedBatchSampler, average_gradients, gather_with_grad, sync_rng
from ccrbench.tokens import TokenBatch


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
        flat = [c for g in groups for c in g]
        return RetrievalBatch(
            images=torch.stack(images),
            text=self.tokenize(flat),
            # output_size given: no sum of the counts to read back, no parallel region to wake (~0.4 ms a batch)
            text_to_image=torch.repeat_interleave(torch.arange(len(groups)), counts, output_size=len(flat)),
            image_ids=torch.tensor(image_ids, dtype=torch.long),
            task_ids=torch.tensor(task_ids, dtype=torch.long),
        )


def global_loss(criterion: Callable[..., Tensor], model: torch.nn.Module, image_emb: Tensor, text_emb: Tensor, batch: RetrievalBatch) -> Tensor:
    """The retrieval loss of the batch's (image, caption) pairs, over every process's pairs.

    Args:
        criterion: loss(image rows [P, D], caption rows [P, D], image ids [P], **logit inputs).
        model: the model (its `logit_inputs()`: a learnable temperature).
        image_emb: [N, D] this process's image embeddings.
        text_emb: [M, D] this process's caption embeddings.
        batch: this process's batch (caption -> image links, image ids).
    """
    t2i = batch.text_to_image
    pairs = gather_with_grad(image_emb[t2i], text_emb, batch.image_ids[t2i])  # [P, D], [P, D], [P]: P = every process's M
    return criterion(*pairs, **model.logit_inputs())


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
        num_workers: data loader workers (image decoding runs there).
        precision: "fp32", or the training forward pass under torch.autocast in "bf16" or
            "fp16" (fp16 with a gradient scaler); the loss is computed in fp32.
        seed: seeds this template's own generator of the training batch order
            (`train_generator`, saved in checkpoints): models trained side by side draw the
            same order, whatever else consumes the global RNG; with several processes, every
            process draws the same global batches from it.

    On CUDA, batches come from pinned memory with non-blocking copies, images and
    convolution weights are channels_last, and the non-finite-loss check syncs every
    `SYNC_EVERY` iterations instead of every one.
    """

    SYNC_EVERY = 50

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
        precision: Literal["fp32", "bf16", "fp16"] = "fp32",
        seed: int = 0,
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
        self.train_generator = torch.Generator().manual_seed(seed)
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=precision == "fp16")
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            model.to(memory_format=torch.channels_last)  # 4-d (convolution) weights only
        self.first_bad_loss: Tensor | None = None  # on the device: no sync per iteration
        self.loss_terms: dict[str, Tensor] = {}  # penalties added to this iteration's loss, by name (detached)

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
        self.dataloader = self.train_loader(
            self.adapted_dataset, shuffle=shuffle, drop_last=len(self.adapted_dataset) > self.train_mb_size, **self.loader_options()
        )

    def train_loader(self, dataset: Dataset, *, shuffle: bool = True, drop_last: bool = False, **options: Any) -> DataLoader:
        """Batches of `train_mb_size` pairs of `dataset` in the order `train_generator` draws (with one
        process, what `DataLoader(shuffle=shuffle, generator=train_generator)` gives); with several,
        this process's part of each of those batches (`ShardedBatchSampler`)."""
        order = RandomSampler(dataset, generator=self.train_generator) if shuffle else SequentialSampler(dataset)
        return DataLoader(
            dataset,
            batch_sampler=ShardedBatchSampler(BatchSampler(order, self.train_mb_size, drop_last)),
            generator=self.train_generator,  # the workers' base seed, drawn before the order (as DataLoader(shuffle=True) draws it)
            collate_fn=self.collate,
            **options,
        )

    def make_eval_dataloader(self, **kwargs: Any) -> None:
        self.dataloader = DataLoader(
            self.adapted_dataset, batch_size=self.eval_mb_size, shuffle=False, collate_fn=self.collate, **self.loader_options()
        )

    def loader_options(self) -> dict[str, Any]:
        """DataLoader workers, kept across epochs, and pinned memory on CUDA."""
        return {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0, "pin_memory": self.cuda}

    def _unpack_minibatch(self) -> None:
        self.mbatch = self.mbatch.to(self.device)  # non-blocking copies
        if self.cuda and self.mbatch.images.ndim == 4:
            self.mbatch = self.mbatch._replace(images=self.mbatch.images.contiguous(memory_format=torch.channels_last))

    # --------------------------------------------------------------- model
    def make_optimizer(self, **kwargs: Any) -> None:
        """Keeps the optimizer as built (Avalanche's default would add every model parameter)."""

    def forward(self) -> tuple[Tensor, Tensor]:
        """Both branches' embeddings; while training with mixed precision, computed under autocast, returned in fp32."""
        mixed = self.is_training and self.autocast_dtype is not None
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=mixed):
            image_emb, text_emb = self.model(self.mb_images, self.mb_text)
        return (image_emb.float(), text_emb.float()) if mixed else (image_emb, text_emb)

    def criterion(self) -> Tensor:
        """The training loss; evaluation batches (images with all their captions) are only embedded."""
        if not self.is_training:
            return torch.zeros(())  # Avalanche's eval loop would compute an unused loss on every batch
        return global_loss(self._criterion, self.model, *self.mb_output, self.mbatch)

    def backward(self) -> None:
        loss = self.loss.detach()
        bad = self.first_bad_loss
        self.first_bad_loss = loss if bad is None else torch.where(torch.isfinite(bad), loss, bad)
        if not self.cuda or self.clock.train_exp_iterations % self.SYNC_EVERY == 0:
            self.check_loss()
        self.scaler.scale(self.loss).backward(retain_graph=self.retain_graph)

    def check_loss(self) -> None:
        """Raises NonFiniteLossError if a training loss so far was NaN or infinite (a device sync)."""
        if self.first_bad_loss is not None and not torch.isfinite(self.first_bad_loss):
            raise NonFiniteLossError(
                f"training loss is {self.first_bad_loss.item()} at experience {self.clock.train_exp_counter}, "
                f"by iteration {self.clock.train_exp_iterations}: lower the learning rate or the regularisation strength"
            )

    def _check_distributed_training_compatibility(self) -> bool:
        """Avalanche's check concerns its own distributed machinery (its data loaders, models wrapped in
        DistributedDataParallel), which this template does not use; it would warn about every plugin."""
        return True

    def _before_training_exp(self, **kwargs: Any) -> None:
        sync_rng()  # with several processes: the main one alone has evaluated the last stage
        super()._before_training_exp(**kwargs)

    def _after_training_exp(self, **kwargs: Any) -> None:
        sync_rng()  # replay memories are drawn alike on every process
        super()._after_training_exp(**kwargs)

    def training_epoch(self, **kwargs: Any) -> None:
        super().training_epoch(**kwargs)
        self.check_loss()

    def optimizer_step(self) -> None:
        """Averages the gradients over the processes (see `ccrbench.distributed.gather_with_grad`:
        that mean is the gradient of the global batch's loss), then clips and steps.

        The averaging is done here rather than by wrapping the model in DistributedDataParallel:
        the model stays itself (state dicts without a "module." prefix, so checkpoints load
        onto any number of processes; `branch_parameters`, `logit_inputs` and the teachers of
        LwF keep working), and the importance passes average their gradients the same way. The
        cost: the gradients are exchanged after the backward pass instead of overlapping it.
        """
        average_gradients(p.grad for group in self.optimizer.param_groups for p in group["params"])
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            # foreach: one fused kernel per op over all gradients (same values, bit for bit, on CPU too)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip, foreach=True)
        self.scaler.step(self.optimizer)  # skipped when fp16 gradients overflowed
        self.scaler.update()
