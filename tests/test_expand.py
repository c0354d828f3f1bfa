"""Expansion is pure and deterministic, ids come from resolved configs, conditions pair."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.suite.expand import expand, plan_summary
from bench.suite.load import load_suite

SUITE = """
name: s
games: [Pong, Breakout]
seeds: [0, 3]
variants:
  - {name: r, agent: random}
axes:
  audio: [off, on]
  grid:
    protocol.noop_max: [29, 10]
budget: {env_steps: 1000, final_eval_episodes: 2}
"""


def test_order_and_count(write_suite):
    specs = expand(load_suite(write_suite(SUITE)))
    assert len(specs) == 2 * 2 * 2 * 2
    assert [(s.game, s.condition_label, s.seed) for s in specs[:5]] == [
        ("Pong", "audio=off,protocol.noop_max=29", 0),
        ("Pong", "audio=off,protocol.noop_max=29", 3),
        ("Pong", "audio=off,protocol.noop_max=10", 0),
        ("Pong", "audio=off,protocol.noop_max=10", 3),
        ("Pong", "audio=on,protocol.noop_max=29", 0),
    ]
    assert specs[4].protocol.audio == "on" and specs[4].protocol.noop_max == 29
    assert specs[2].protocol.noop_max == 10
    assert specs[0].algorithm == "r [audio=off,protocol.noop_max=29]"


def test_ids_stable_across_processes(write_suite):
    path = write_suite(SUITE)
    ids = [s.run_id for s in expand(load_suite(path))]
    code = (
        "import sys; from bench.suite.expand import expand; "
        "from bench.suite.load import load_suite; "
        "print(' '.join(s.run_id for s in expand(load_suite(sys.argv[1]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert out.stdout.split() == ids
    assert len(set(ids)) == len(ids)


def test_ids_depend_on_config_not_on_names(write_suite):
    base = {s.run_id for s in expand(load_suite(write_suite(SUITE)))}
    renamed = {
        s.run_id for s in expand(load_suite(write_suite(SUITE.replace("name: r,", "name: q,"))))
    }
    assert renamed == base
    longer = expand(load_suite(write_suite(SUITE.replace("env_steps: 1000", "env_steps: 1001"))))
    assert not base & {s.run_id for s in longer}


def test_conditions_share_seeds_and_pair(write_suite):
    specs = expand(load_suite(write_suite(SUITE)))
    by_condition: dict[str, set] = {}
    for s in specs:
        by_condition.setdefault(s.condition_label, set()).add((s.game, s.seed))
    pairs = list(by_condition.values())
    assert len(pairs) == 4 and all(p == pairs[0] for p in pairs)


def test_identical_variants_are_rejected(write_suite):
    import pytest

    from bench.core.errors import BenchError

    text = SUITE.replace(
        "- {name: r, agent: random}", "- {name: r, agent: random}\n  - {name: r2, agent: random}"
    )
    with pytest.raises(BenchError, match="resolve to the same config"):
        expand(load_suite(write_suite(text)))


def test_plan_summary(write_suite):
    specs = expand(load_suite(write_suite(SUITE)))
    summary = plan_summary(specs)
    assert summary["runs"] == 16 and summary["games"] == 2 and summary["seeds"] == 2
    assert summary["env_steps"] == 16_000
    assert summary["eval_episodes"] == 16 * 2


PINNED = """
name: s
games: [Pong]
seeds: [3]
variants:
  - {name: r, agent: random}
axes:
  audio: [off, on]
budget: {env_steps: 1000, final_eval_episodes: 2}
"""


def test_discrete_ids_are_those_before_the_action_space_fields(write_suite):
    """Run and protocol ids computed before protocol.actions existed still hold (the main
    line's ids, with the fidelity fields noop_unit, noop_observation and terminal_frame)."""
    from bench.env.protocol import ProtocolConfig
    from bench.suite.expand import protocol_id

    specs = expand(load_suite(write_suite(PINNED)))
    assert [s.run_id for s in specs] == ["Pong-s3-b7bbb5f77db2", "Pong-s3-4ecab2116207"]
    assert protocol_id(ProtocolConfig()) == "190cf9d9ac"
    # A threshold means nothing to discrete actions; with continuous ones it is the protocol.
    assert protocol_id(ProtocolConfig(continuous_threshold=0.3)) == "190cf9d9ac"
    cale = ProtocolConfig(actions="continuous")
    assert protocol_id(cale) not in {
        "190cf9d9ac",
        protocol_id(ProtocolConfig(actions="continuous", continuous_threshold=0.3)),
    }
    assert specs[0].to_json()["protocol"]["actions"] == "discrete"  # recorded in every run


def test_a_variant_sets_its_own_protocol_fields(write_suite):
    text = PINNED.replace(
        "- {name: r, agent: random}",
        "- {name: r, agent: random}\n  - {name: c, agent: random, protocol: {actions: continuous}}",
    )
    specs = expand(load_suite(write_suite(text)))
    kinds = {(s.variant, s.condition_label): s.protocol.actions for s in specs}
    assert kinds == {
        ("r", "audio=off"): "discrete",
        ("r", "audio=on"): "discrete",
        ("c", "audio=off"): "continuous",
        ("c", "audio=on"): "continuous",
    }
    assert {s.protocol.audio for s in specs if s.variant == "c"} == {
        "off",
        "on",
    }  # axes apply over it
    assert len({s.run_id for s in specs}) == 4


def test_sticky_actions_are_a_protocol_axis(write_suite):
    """Sticky actions on (0.25, the newer papers' protocol) and off (0, Atari 100k's) as a
    grid axis: each condition's protocol carries its value and its own protocol id (the
    scores of the two are never pooled); a value outside 0..1 is refused at load."""
    from bench.core.errors import BenchError
    from bench.suite.expand import protocol_id

    text = SUITE.replace("protocol.noop_max: [29, 10]", "protocol.sticky_actions: [0.0, 0.25]")
    specs = [s for s in expand(load_suite(write_suite(text))) if s.game == "Pong"]
    sticky = {(s.condition_label, s.seed): s.protocol.sticky_actions for s in specs}
    assert sticky[("audio=off,protocol.sticky_actions=0.0", 0)] == 0.0
    assert sticky[("audio=off,protocol.sticky_actions=0.25", 3)] == 0.25
    ids = {s.protocol.sticky_actions: protocol_id(s.protocol) for s in specs}
    assert len(set(ids.values())) == 2
    bad = write_suite(text.replace("[0.0, 0.25]", "[0.0, 1.5]"))
    with pytest.raises(BenchError, match="sticky_actions"):
        load_suite(bad)
