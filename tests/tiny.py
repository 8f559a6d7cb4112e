"""A tiny configuration of the built-in benchmark for end-to-end tests (seconds on 2 cores)."""

TINY = [
    "benchmark.train_images=24",
    "benchmark.test_images=10",
    "benchmark.image_size=32",
    "model.image_encoder.width=8",
    "model.image_encoder.output_dim=32",
    "model.text_encoder.word_dim=16",
    "model.text_encoder.hidden_dim=16",
    "model.embed_dim=16",
    "train.epochs=1",
    "train.batch_size=16",
    "eval.batch_size=4",
]


def run_args(out, *extra, flags=()):
    """`ccrbench run` arguments of a quiet tiny run into `out`, with more --set items and flags."""
    return ["run", "--quiet", "--out", str(out), *flags, *(a for item in [*TINY, *extra] for a in ("--set", item))]


def interrupt_training(monkeypatch, *, at_call: int):
    """Makes the `at_call`-th `RetrievalTemplate.train` call raise KeyboardInterrupt (a crash or a
    Ctrl-C in the middle of a run); returns a function that restores normal training."""
    import ccrbench.training.template as template

    real_train = template.RetrievalTemplate.train
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            raise KeyboardInterrupt("simulated crash")
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(template.RetrievalTemplate, "train", interrupted)
    return lambda: monkeypatch.setattr(template.RetrievalTemplate, "train", real_train)
