"""The search space of ``ponder tune``: checked against the config tree before anything runs,
sampled conditionally by a real Optuna trial, applied to the arm's strategy config."""

from __future__ import annotations

import optuna
import pytest
from omegaconf import OmegaConf

from ponder.errors import BadRequestError
from ponder.strategies import strategies
from ponder.tuning.space import Range, Space, resolve_space, suggest, trial_values
from ponder.tuning.study import StudyDir

SPACE = {
    "sc": {"strategy": "self_consistency",
           "params": {"n": [1, 4], "sampling.temperature": {"low": 0.3, "high": 0.6, "step": 0.1}}},
    "bon": {"strategy": "best_of_n", "params": {"n": {"low": 2, "high": 8, "log": True},
                                               "verifier": ["self_certainty", "self_eval"]}},
}


def test_a_trial_strategy_applies_values_and_group_choices() -> None:
    space = resolve_space(SPACE)
    config = space.arms["bon"].trial_strategy({"n": 4, "verifier": "self_eval"})
    assert config["n"] == 4 and config["verifier"]["name"] == "self_eval"
    assert strategies.build(config).n == 4
    sc = space.arms["sc"].trial_strategy({"n": 1, "sampling.temperature": 0.4})
    assert sc["sampling"]["temperature"] == 0.4 and sc["sampling"]["max_tokens"] == 256


@pytest.mark.parametrize(("space", "message"), [
    ({}, "space: the search space is empty"),
    (None, "space: the search space is empty"),
    ({"beam": {"strategy": "beam", "params": {"width": [2]}}},
     "space.beam.params.width: the strategy 'beam' has no such parameter"),
    ({"sc": {"strategy": "self_consistency", "params": {"n": [0, 4]}}}, "space.sc.params.n=0:"),
    ({"sc": {"strategy": "self_consistency", "params": {"n": {"low": 8, "high": 2}}}},
     "low (8) is above high (2)"),
    ({"sc": {"strategy": "self_consistency", "params": {"n": []}}}, "needs at least one choice"),
    ({"dataset": {"strategy": "self_consistency"}}, "space.dataset: an arm's label"),
    ({"sc": {"strategy": "self_consistency", "params": {"verifier": ["self_eval"]}}},
     "space.sc.params.verifier: needs a list of configs/verifier/ names"),
    ({"sc": {"strategy": "no_such_strategy"}}, "bad override"),
])
def test_a_bad_space_is_refused_naming_the_arm_and_parameter(space: object, message: str) -> None:
    with pytest.raises(BadRequestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_space(space)  # type: ignore[arg-type]


def test_a_float_step_range_is_a_rounded_grid() -> None:
    assert Range(low=0.3, high=1.0, step=0.1).grid() == [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert Range(low=1, high=8).grid() is None and Range(low=0.1, high=1.0).grid() is None


def test_suggest_picks_an_arm_then_only_its_parameters(tmp_path) -> None:
    study_dir = StudyDir(tmp_path)
    study_dir.start({"space": SPACE}, resolve_space(SPACE).model_dump_json())
    cfg = OmegaConf.create({"tune": {"study": str(tmp_path)}})
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        suggest(cfg, trial)
        arm = trial.params["arm"]
        seen.add(arm)
        names = {name for name in trial.params if name != "arm"}
        assert names == {f"++{arm}.{key}" for key in SPACE[arm]["params"]}
        if arm == "sc":
            assert trial.params["++sc.sampling.temperature"] in (0.3, 0.4, 0.5, 0.6)
        else:
            assert 2 <= trial.params["++bon.n"] <= 8
        study.tell(trial, [0.5, 100.0])
    assert seen == {"sc", "bon"}


def test_trial_values_read_the_arm_node_flat() -> None:
    settings = {"arm": "sc", "sc": {"n": 4, "sampling": {"temperature": 0.5}}, "bon": {"n": 2}}
    assert trial_values(settings, "sc") == {"n": 4, "sampling.temperature": 0.5}
    space = Space.model_validate_json(resolve_space(SPACE).model_dump_json())
    with pytest.raises(BadRequestError, match="not in the arm"):
        space.arms["sc"].trial_strategy({"m": 1})


def test_a_dotted_parameter_given_nested_as_an_override_writes_it_is_the_same_parameter() -> None:
    nested = resolve_space({"sc": {"strategy": "self_consistency",
                                   "params": {"sampling": {"max_tokens": [64], "temperature": {"low": 0.3, "high": 0.9}}}}})
    assert set(nested.arms["sc"].params) == {"sampling.max_tokens", "sampling.temperature"}
    assert nested.arms["sc"].params["sampling.temperature"].high == 0.9
