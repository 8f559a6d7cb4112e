"""Which captions the BiGRU vocabulary is built from: every task's ("all_tasks") or, growing,
only the tasks trained so far ("seen_tasks"), exactly across checkpoints and resumes."""

import json
import warnings
from pathlib import Path

import pytest

import ccrbench.training.template as template
from ccrbench.config import apply_overrides, from_dict, read_yaml
from ccrbench.registry import ENCODERS
from ccrbench.runner import run
from tests.tiny import TINY

TASK_1 = ("a red square", "a red square and a blue square")
TASK_2 = ("a green circle", "a red circle")
SMALL = {"word_dim": 4, "hidden_dim": 4}


def bigru(**options):
    return ENCODERS.build("bigru", {**SMALL, **options}, corpus=TASK_1 + TASK_2)


def known(encoder):
    return encoder.vocab.words[2:]


def test_all_tasks_knows_every_task_from_the_start():
    encoder = bigru()
    assert set(known(encoder)) == {"a", "red", "square", "and", "blue", "green", "circle"}
    assert encoder.embed.num_embeddings == 2 + 7
    encoder.learn_vocabulary(("a purple star",))
    assert "star" not in known(encoder)  # built once, never grows


def test_seen_tasks_grows_task_by_task_into_reserved_rows():
    encoder = bigru(vocabulary="seen_tasks", max_words=20)
    assert known(encoder) == [] and encoder.embed.num_embeddings == 22  # the corpus is not read
    encoder.learn_vocabulary(TASK_1)
    assert known(encoder) == ["a", "square", "red", "and", "blue"]  # most frequent first, ties alphabetical
    assert encoder.tokenize(["a green circle"]).ids.tolist() == [[2, 1, 1]]  # task 2's words are still <unk>
    encoder.learn_vocabulary(TASK_2)
    assert known(encoder) == ["a", "square", "red", "and", "blue", "circle", "green"]  # old ids are kept
    assert encoder.tokenize(["a green circle"]).ids.tolist() == [[2, 8, 7]]


def test_min_count_counts_over_the_tasks_seen_so_far():
    encoder = bigru(vocabulary="seen_tasks", min_count=2)
    encoder.learn_vocabulary(TASK_1)
    assert known(encoder) == ["a", "square", "red"]
    encoder.learn_vocabulary(TASK_2)
    assert known(encoder) == ["a", "square", "red", "circle"]  # "circle": once in each task


def test_a_full_vocabulary_warns_and_keeps_new_words_unknown():
    encoder = bigru(vocabulary="seen_tasks", max_words=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder.learn_vocabulary(TASK_1)
    assert known(encoder) == ["a", "square", "red"]
    assert "2 new words stay <unk>: raise model.text_encoder.max_words" in str(caught[0].message)


def test_the_growing_vocabulary_and_its_counts_travel_with_the_state_dict():
    source = bigru(vocabulary="seen_tasks", min_count=2)
    source.learn_vocabulary(TASK_1)
    target = bigru(vocabulary="seen_tasks", min_count=2)
    target.load_state_dict(source.state_dict())
    target.learn_vocabulary(TASK_2)
    source.learn_vocabulary(TASK_2)
    assert known(target) == known(source) == ["a", "square", "red", "circle"]
    with pytest.raises(ValueError, match="growing but the model was built with vocabulary all_tasks"):
        bigru().load_state_dict(source.state_dict())


def stages(out):
    return json.loads((out / "results.json").read_text())["stages"]


def seen_tasks_config(*extra):
    overrides = [*TINY, "benchmark.tasks=[blocks, curves]", "model.text_encoder.vocabulary=seen_tasks", *extra]
    return from_dict(apply_overrides({}, overrides))


def test_a_run_knows_only_the_words_of_the_tasks_it_trained_on_and_resumes_exactly(tmp_path, monkeypatch):
    """Shape names are task-specific ("square": blocks, "circle": curves)."""
    real_train = template.RetrievalTemplate.train
    vocabularies = []

    def spy(self, *args, **kwargs):
        vocabularies.append(set(self.model.text_encoder.vocab.words))
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(template.RetrievalTemplate, "train", spy)
    config = seen_tasks_config()
    run(config, tmp_path / "full", progress=False)
    first, second = vocabularies
    assert "square" in first and "circle" not in first and "circle" in second

    def crash_in_second_stage(self, *args, **kwargs):
        if self.clock.train_exp_counter == 1:
            raise KeyboardInterrupt("simulated crash")
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(template.RetrievalTemplate, "train", crash_in_second_stage)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "crash", progress=False)
    monkeypatch.setattr(template.RetrievalTemplate, "train", real_train)
    run(config, tmp_path / "crash", resume=True, progress=False)
    assert stages(tmp_path / "crash") == stages(tmp_path / "full")


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_state_their_vocabulary_protocol(path):
    text_encoder = read_yaml(path).get("model", {}).get("text_encoder", {})
    if text_encoder.get("name", "bigru") == "bigru":
        assert "vocabulary" in text_encoder, f"{path.name}: set model.text_encoder.vocabulary (all_tasks or seen_tasks)"
