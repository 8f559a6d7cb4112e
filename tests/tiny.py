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
