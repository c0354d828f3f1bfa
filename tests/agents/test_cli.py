import argparse
import json

from agents.registry import get_agent
from bench.cli.agents import add_commands
from bench.core.config import override
from bench.run.perf import measure_agent, replay_memory
from tests.agents.conftest import TINY


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="bench")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


def test_agents_lists_presets(capsys):
    code, out = run(["agents"], capsys)
    assert code == 0
    assert "value" in out and "bbf*" in out and "sr-spr" in out


def test_describe_bbf_parameter_counts(capsys):
    code, out = run(["agents", "describe", "bbf", "--num-actions", "18", "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["config"]["replay_ratio"] == 2.0
    assert info["parameters"] == {
        "encoder": 1_552_192,
        "projection": 31_721_472,
        "transition_model": 315_904,
        "predictor": 4_196_352,
        "head": 1_985_481,
        "total": 39_771_401,
    }
    code, out = run(["agents", "describe", "der", "--num-actions", "6"], capsys)
    assert code == 0 and "noisy_sigma0" in out and "projection" in out


def test_perf_measures_updates_on_a_synthetic_stream():
    entry = get_agent("value")
    config = override(entry.preset("der"), {**TINY, "replay_ratio": 2.0}, where="test")
    r = measure_agent(entry, config, steps=4, num_actions=4, device="cpu")
    assert r.stream == "synthetic" and r.device == "cpu"
    assert r.grad_updates == 8 and r.updates_per_s > 0 and r.peak_gpu_mb is None
    assert r.projected_hours_100k > 0


def test_replay_memory_is_per_step_payload():
    mem = replay_memory(steps=2_000, capacity=10_000, audio_samples=2048)
    assert mem["payload_mb"] == 2_000 * (84 * 84 + 2048) / 1024**2
    # Frames and audio are stored once per step: resident growth is near the payload.
    assert mem["resident_mb"] < 3 * mem["payload_mb"] + 5


def test_perf_agent_joins_an_existing_perf_command():
    parser = argparse.ArgumentParser(prog="bench")
    sub = parser.add_subparsers(dest="command")
    perf = sub.add_parser("perf")
    perf.add_subparsers(dest="perf_command").add_parser("env")
    add_commands(sub)
    args = parser.parse_args(["perf", "agent", "--preset", "der", "--steps", "3"])
    assert args.preset == "der" and args.steps == 3 and args.func.__name__ == "cmd_perf_agent"
    assert parser.parse_args(["perf", "env"]).perf_command == "env"


def test_describe_sac_in_cale_s_action_space(capsys):
    code, out = run(["agents", "describe", "sac-cale-100k", "--agent", "sac", "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["config"]["n_step"] == 10 and info["parameters"]["actor"] == (
        50 * 512 + 512 + 512 * 6 + 6
    )
    code, out = run(["agents", "describe", "tiny", "--agent", "sac"], capsys)
    assert code == 0 and "parameters (continuous actions)" in out


def test_perf_measures_a_continuous_agent():
    entry = get_agent("sac")
    r = measure_agent(entry, entry.preset("tiny"), steps=4, device="cpu")
    assert r.stream == "synthetic" and r.grad_updates == 4


def test_describe_with_overrides_counts_the_new_modules(capsys):
    argv = ["agents", "describe", "der", "--num-actions", "6", "--json"]
    _, out = run(argv, capsys)
    dense = json.loads(out)["parameters"]
    sets = ["--set", "moe_experts=4", "--set", "moe_expert_dim=64", "--set", "mcr_weight=1"]
    code, out = run([*argv, *sets], capsys)
    info = json.loads(out)
    assert code == 0 and info["config"]["moe_experts"] == 4
    counts = info["parameters"]
    # DER's 64 x 11 x 11 latent: 121 tokens of 64; 4 experts of 64 -> 64 -> 64, 31 slots each
    moe = 64 * 4 * 31 + 4 * (64 * 64 * 2 + 64 + 64) + 121 * 64 * 512 + 512
    assert counts["projection"] == moe != dense["projection"]
    assert counts["sequence_model"] > 0 and counts["head"] == dense["head"]
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_describe_refuses_a_bad_override(capsys):
    import pytest

    from bench.core.errors import BenchError

    with pytest.raises(BenchError, match="moe_tokens"):
        run(["agents", "describe", "der", "--num-actions", "6", "--set", "moe_tokens=x"], capsys)
    with pytest.raises(BenchError, match="FIELD=VALUE"):
        run(["agents", "describe", "der", "--num-actions", "6", "--set", "moe_tokens"], capsys)
