"""Suite loading and validation: every mistake is one line naming file, key path and choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli.main import main
from bench.core.errors import BenchError
from bench.suite.load import load_suite

GOOD = """
name: s
games: [Pong, Breakout]
seeds: 2
variants:
  - {name: r, agent: random}
axes:
  audio: [off, on]
budget: {env_steps: 100, final_eval_episodes: 2}
"""


def test_good_suite_loads(write_suite):
    suite = load_suite(write_suite(GOOD))
    assert suite.games == ("Pong", "Breakout")
    assert suite.seeds == (0, 1)
    assert [a.values for a in suite.axes] == [("off", "on")]  # YAML booleans mapped back
    assert suite.budget.env_steps == 100


def test_subsets_and_rom_ids_resolve(write_suite):
    suite = load_suite(write_suite(GOOD.replace("[Pong, Breakout]", "[sem3, pong, road_runner]")))
    assert suite.games == ("Assault", "RoadRunner", "Amidar", "Pong")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("seeds: 2", "seeds: 2\nsedes: 3"), "unknown key 'sedes'; did you mean seeds?"),
        (("[Pong, Breakout]", "[Pong, Breakot]"), "games: unknown game 'Breakot'; did you mean"),
        (("agent: random}", "agent: randon}"), "variants[0].agent: unknown agent 'randon'"),
        (("agent: random}", "agent: random, preset: nope}"), "variants[0].preset: unknown preset"),
        (("agent: random}", "agent: random, overrides: {lr: 1}}"), "overrides: unknown key 'lr'"),
        (("env_steps: 100", "env_steps: lots"), "budget.env_steps: expected an integer"),
        (("env_steps: 100", "env_step: 100"), "budget: unknown key 'env_step'"),
        (("audio: [off, on]", "audio: []"), "axes.audio: empty list of values"),
        (("audio: [off, on]", "audio: [off, loud]"), "axes.audio: 'loud' is not one of"),
        (("audio: [off, on]", "grid: {}"), "axes.grid: expected a non-empty mapping"),
        (("audio: [off, on]", "grid: {agent.x: [1]}"), "unknown config field of variant 'r' 'x'"),
        (("audio: [off, on]", "grid: {protocol.noop_max: []}"), "noop_max: empty list"),
        (("audio: [off, on]", "grid: {model.x: [1]}"), "unknown grid section 'model'"),
        (("audio: [off, on]", "colour: [red]"), "axes: unknown axis 'colour'"),
        (("seeds: 2", "seeds: 0"), "seeds: the count must be at least 1"),
        (("seeds: 2", "seeds: [1, 1]"), "seeds: duplicate seeds"),
        (
            ("agent: random}", "agent: random, protocol: {actions: joystick}}"),
            "variants[0].protocol.actions: 'joystick' is not one of 'discrete', 'continuous'",
        ),
        (
            ("agent: random}", "agent: random, protocol: {stick: 1}}"),
            "variants[0].protocol: unknown key 'stick'",
        ),
        (
            (
                "- {name: r, agent: random}",
                "- {name: r, agent: random}\n  - {name: r, agent: random}",
            ),
            "variants[1].name: duplicate variant name 'r'",
        ),
        (("seeds: 2", "seeds: 2\nstudy: {base: q}"), "study.base: unknown variant 'q'; valid: r"),
        (("seeds: 2", "seeds: 2\nstudy: {base: r}"), "study.base: the suite has no other variant"),
        (("seeds: 2", "seeds: 2\nstudy: {sweep: rr}"), "study.sweep: unknown axis 'rr'"),
        (("seeds: 2", "seeds: 2\nstudy: {sweep: variant}"), "study.sweep: variant has one value"),
        (("seeds: 2", "seeds: 2\nstudy: {bas: r}"), "study: unknown key 'bas'; did you mean base?"),
        (("seeds: 2", "seeds: 2\nstudy: [r]"), "study: expected a mapping with keys base, sweep"),
    ],
)
def test_bad_suites_give_one_line_errors(write_suite, tmp_path, capsys, edit, expected):
    old, new = edit
    assert old in GOOD
    path = write_suite(GOOD.replace(old, new))
    out = tmp_path / "out"
    rc = main(["launch", str(path), "--out", str(out), "--executor", "debug"])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {path}: ")
    assert expected in err
    assert not out.exists()  # nothing written


def test_unknown_game_lists_choices_and_subsets(write_suite):
    with pytest.raises(BenchError) as e:
        load_suite(write_suite(GOOD.replace("[Pong, Breakout]", "[Pongg]")))
    msg = str(e.value)
    assert "did you mean Pong" in msg and "RoadRunner" in msg and "sem3 (subset)" in msg


def test_invalid_yaml_and_missing_file(write_suite, tmp_path):
    with pytest.raises(BenchError, match=r"not valid YAML \(line"):
        load_suite(write_suite("games: [Pong\nseeds: 1\n"))
    with pytest.raises(BenchError, match="suite file not found"):
        load_suite(tmp_path / "nope.yaml")
    with pytest.raises(BenchError, match="missing required key 'variants'"):
        load_suite(write_suite("games: [Pong]\nseeds: 1\n"))


# Study suites over the agent fields of the ablation axes (value loss, soft-MoE, masked
# contrastive loss, pruning): until those fields exist, loading must fail on that field.
NEEDS_AXES = {
    "aux_losses.yaml": "mcr_weight",
    "value_losses.yaml": "value_loss",
    "soft_moe.yaml": "moe_experts",
    "pruning.yaml": "prune_sparsity",
}


def test_shipped_suites_load_and_expand():
    from agents.value import ValueConfig
    from bench.core.config import field_names
    from bench.suite.expand import expand

    suites = sorted((Path(__file__).resolve().parent.parent / "suites").rglob("*.yaml"))
    assert {p.name for p in suites} >= {"demo.yaml", "atari100k.yaml", "sem3.yaml"}
    assert {p.name for p in suites} >= {"bbf_ingredients.yaml", "replay_ratio.yaml", *NEEDS_AXES}
    for path in suites:
        field = NEEDS_AXES.get(path.name, "")
        if field and field not in field_names(ValueConfig):
            with pytest.raises(BenchError, match=f"unknown (key|config field .*) '{field}'"):
                load_suite(path)
            continue
        specs = expand(load_suite(path))
        assert specs, path
        assert len({s.run_id for s in specs}) == len(specs)


def test_study_sections_of_the_shipped_studies():
    studies = Path(__file__).resolve().parent.parent / "suites" / "studies"
    assert load_suite(studies / "bbf_ingredients.yaml").study.base == "bbf"
    assert load_suite(studies / "replay_ratio.yaml").study.sweep == "replay_ratio"
    rr = load_suite(studies / "replay_ratio.yaml")
    assert rr.variants[0].config.heldout_fraction == 0.15
    assert rr.axes[0].values == (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


VALUE = """
name: s
games: [Pong]
seeds: 1
variants:
  - {name: bbf, agent: value}
budget: {env_steps: 100, final_eval_episodes: 2}
"""


@pytest.mark.parametrize(
    ("edit", "where", "message"),
    [
        (
            ("seeds: 1", "seeds: 1\nprotocol: {actions: continuous}"),
            "protocol.actions",
            "agent 'value' supports discrete actions only; valid: discrete",
        ),
        (
            ("agent: value}", "agent: value, protocol: {actions: continuous}}"),
            "variants[0].protocol.actions",
            "agent 'value' supports discrete actions only; valid: discrete",
        ),
        (
            ("seeds: 1", "seeds: 1\naxes: {grid: {protocol.actions: [discrete, continuous]}}"),
            "axes.grid.protocol.actions",
            "agent 'value' supports discrete actions only; valid: discrete",
        ),
    ],
)
def test_an_agent_given_an_action_space_it_lacks_is_refused_at_load(
    write_suite, tmp_path, capsys, edit, where, message
):
    old, new = edit
    path = write_suite(VALUE.replace(old, new))
    out = tmp_path / "out"
    rc = main(["launch", str(path), "--out", str(out), "--executor", "debug"])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert err == f"error: {path}: {where}: {message}\n"


def test_the_random_agent_acts_in_both_action_spaces(write_suite):
    text = VALUE.replace("agent: value}", "agent: random}").replace(
        "seeds: 1", "seeds: 1\naxes: {grid: {protocol.actions: [discrete, continuous]}}"
    )
    suite = load_suite(write_suite(text))
    assert suite.axes[0].values == ("discrete", "continuous")
