import json

from ccrbench.cli import main

TINY_PRETRAINED = [
    "benchmark.train_images=4",
    "benchmark.test_images=4",
    "benchmark.image_size=32",
    "model.image_encoder=resnet18",
    "model.text_encoder={name: hf_text, model: minilm, max_length: 16}",
    "model.embed_dim=16",
    "model.projection=mlp",
    "strategy=joint",
    "train.epochs=1",
    "train.batch_size=64",
    "eval.batch_size=4",
]


def test_minilm_and_resnet18_run_through_the_cli(tmp_path):
    args = ["run", "--quiet", "--out", str(tmp_path / "run"), "--set", "loss=barlow_twins"]
    for item in TINY_PRETRAINED:
        args += ["--set", item]
    assert main(args) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["complete"] and len(results["stages"]) == 1
    model = results["config"]["model"]
    assert model["image_encoder"] == {"name": "resnet18", "weights": None, "freeze": False, "train_top_blocks": None}
    assert model["text_encoder"]["name"] == "hf_text" and model["text_encoder"]["model"] == "minilm"
    assert results["final"]["reindex"]["all"]["i2t_r10"] is not None
