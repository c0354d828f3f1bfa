"""The fast path (agents/fast.py) is the plain path: the same samples, draws and arithmetic.

On the CPU in fp32 with the plain path's optimizer the two paths run the same operations
in the same order, so they agree to the last bit; the tests allow a relative 1e-5 (and
1e-7 absolute for values near zero) so that a harmless reordering of a float64 sum (the
n-step returns: numpy's pairwise sum against torch's) cannot fail them, while any
different sample, draw or formula shows up far above it within a few updates.
"""

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from agents.fast import DeviceReplay, FastValueAgent, ReplayLayout
from agents.protocol import ObsSpec
from agents.registry import get_agent
from agents.replay import ReplayBuffer
from agents.value import PRESETS, ValueAgent, n_step_at
from bench.core.config import override
from bench.core.errors import BenchError
from bench.run.perf import _SyntheticStream
from tests.agents.conftest import TINY

RTOL, ATOL = 1e-5, 1e-7
SPEC = ObsSpec(num_actions=6, image_shape=(4, 28, 28))  # small frames: a fast test


def _config(preset: str, **changes):
    extra = {"spr_steps": 2} if PRESETS[preset].spr_weight > 0 else {}
    return override(PRESETS[preset], {**TINY, **extra, **changes}, where="test")


def _train(cfg, steps: int, spec: ObsSpec = SPEC) -> tuple[ValueAgent, np.ndarray]:
    """Act and learn ``steps`` env steps on a synthetic stream; the loss after each."""
    agent = get_agent("value").make(cfg, obs_spec=spec, seed=3, device="cpu")
    stream = _SyntheticStream(spec, seed=1)
    losses = []
    for _ in range(steps):
        obs = {k: v[None] for k, v in stream.obs.items()}
        agent.observe(stream.step(int(agent.act(obs, eval_mode=False)[0])))
        losses.append(agent.metrics().get("loss", 0.0))
    return agent, np.array(losses)


def _assert_same(plain: ValueAgent, fast: ValueAgent, plain_loss, fast_loss) -> None:
    assert isinstance(fast, FastValueAgent) and not isinstance(plain, FastValueAgent)
    assert fast.grad_steps == plain.grad_steps
    np.testing.assert_allclose(fast_loss, plain_loss, rtol=RTOL, atol=ATOL)
    for net in ("online", "target"):
        p, f = getattr(plain, net).state_dict(), getattr(fast, net).state_dict()
        for name in p:
            np.testing.assert_allclose(f[name], p[name], rtol=RTOL, atol=ATOL, err_msg=name)
    if plain.replay.tree is not None:
        assert fast.replay.tree is not None
        np.testing.assert_allclose(fast.replay.tree.tree, plain.replay.tree.tree, rtol=RTOL)
    assert fast.metrics() == pytest.approx(plain.metrics(), rel=RTOL)


# BBF (SPR, prefetched groups of 2, the reference write-back, n/gamma annealing, resets)
# is compared under torch.compile below; DER: noisy nets drawn per batch, per-sample
# write-back, no augmentation; SPR: KL priorities, shifted mask, BatchNorm transition
# model; DQN: scalar Q, uniform replay.
CASES = {
    "der": ({"learning_starts": 20}, 110),
    "spr": ({"replay_ratio": 2.0}, 46),  # rlpyt never samples the newest 17 steps
    "dqn": ({"learning_starts": 30, "replay_ratio": 2.0}, 110),
}


@pytest.mark.parametrize("preset", list(CASES))
def test_fast_path_matches_the_plain_path(preset):
    changes, steps = CASES[preset]
    changes = {**changes, "no_resets_after": 10**9}
    # SPR's VALID convolutions need larger frames than the others' SAME ones
    spec = ObsSpec(num_actions=6, image_shape=(4, 44, 44)) if preset == "spr" else SPEC
    plain, plain_loss = _train(_config(preset, **changes), steps, spec)
    fast, fast_loss = _train(_config(preset, fast_path=True, **changes), steps, spec)
    assert plain.grad_steps >= {"der": 90, "spr": 55, "dqn": 150}[preset]
    if preset == "bbf":
        assert plain.resets >= 2
    _assert_same(plain, fast, plain_loss, fast_loss)


def test_captured_update_has_no_graph_breaks_and_no_recompiles():
    """torch.compile with the aot_eager backend (the capture without code generation: on
    2 CPU cores inductor would take minutes) over resets, n/gamma annealing, the beta and
    epsilon schedules: one graph for the update and one for acting, compiled once."""
    changes = {
        "replay_ratio": 2.0,
        "anneal_steps": 30,
        "reset_interval": 40,  # every 20 env steps
        "no_resets_after": 10**9,
        "importance_end": 1.0,
        "importance_anneal_steps": 60,
        "epsilon_decay_steps": 30,
    }
    steps = 54  # 80 updates
    plain, plain_loss = _train(_config("bbf", **changes), steps)
    torch._dynamo.reset()
    counters.clear()
    fast, fast_loss = _train(
        _config("bbf", fast_path=True, compile_mode="aot_eager", **changes), steps
    )
    cfg = fast.cfg
    assert (
        fast.grad_steps >= 80 and fast.resets >= 2 and n_step_at(cfg, 30) == 3 < n_step_at(cfg, 0)
    )  # anneals in a cycle
    assert dict(counters["graph_break"]) == {}
    assert counters["stats"]["unique_graphs"] == 2  # the update and the greedy action
    assert counters["frames"]["total"] == counters["frames"]["ok"] == 2  # no recompile
    _assert_same(plain, fast, plain_loss, fast_loss)


@pytest.mark.parametrize("bootstrap", ["reference", "fixed"])
@pytest.mark.parametrize("spr_mask", ["reference", "shifted", "fixed"])
def test_device_gather_is_the_host_sample(bootstrap, spr_mask):
    """Stacks, n-step returns with a window shorter than the largest n, SPR subsequences
    and masks, with terminals, episode ends and a wrapped-around buffer."""
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(60, image_shape=(4, 5, 5), audio_shape=(4, 3))
    for t in range(150):
        end = t % 23 == 22
        buf.add(
            rng.integers(0, 256, (5, 5), dtype=np.uint8),
            int(rng.integers(6)),
            float(rng.normal()),
            terminal=t % 7 == 6 and not end,
            episode_end=end,
            audio=rng.integers(0, 256, 3, dtype=np.uint8),
        )
    cfg = _config("bbf", nstep_bootstrap=bootstrap, spr_mask=spr_mask, spr_steps=3)
    dev = DeviceReplay(buf, torch.device("cpu"))
    dev.sync()
    layout = ReplayLayout(cfg, spr=True)
    for n, gamma in ((10, 0.97), (4, 0.99), (3, 0.997)):
        idx = buf.sample_indices(32, rng, lookahead=max(n, 3), n=n)
        host = buf.sample(
            32, None, n=n, gamma=gamma, subseq=4, bootstrap=bootstrap, spr_mask=spr_mask,
            indices=idx,
        )  # fmt: skip
        got = dev.gather(
            torch.as_tensor(idx),
            n=torch.tensor(n),
            gamma=torch.tensor(gamma, dtype=torch.float64),
            layout=layout,
        )
        np.testing.assert_array_equal(got["states"].numpy(), host.states)
        np.testing.assert_array_equal(got["next_states"].numpy(), host.next_states)
        np.testing.assert_array_equal(got["audio"].numpy(), host.audio)
        np.testing.assert_array_equal(got["actions"].numpy(), host.actions)
        np.testing.assert_array_equal(got["same"].numpy(), host.same_trajectory)
        np.testing.assert_allclose(got["returns"].numpy(), host.returns, rtol=RTOL, atol=ATOL)
        np.testing.assert_array_equal(got["discounts"].numpy(), host.discounts)


def test_save_load_mid_training_continues_identically():
    cfg = _config("bbf", fast_path=True, replay_ratio=2.0, reset_interval=30)
    entry = get_agent("value")
    a, _ = _train(cfg, 30)
    b = entry.make(cfg, obs_spec=SPEC, seed=99, device="cpu")
    b.load_state_dict(a.state_dict())
    stream_a, stream_b = _SyntheticStream(SPEC, seed=5), _SyntheticStream(SPEC, seed=5)
    for _ in range(8):
        for agent, stream in ((a, stream_a), (b, stream_b)):
            obs = {k: v[None] for k, v in stream.obs.items()}
            agent.observe(stream.step(int(agent.act(obs, eval_mode=False)[0])))
    assert a.metrics() == b.metrics()
    for name, value in a.online.state_dict().items():
        assert torch.equal(value, b.online.state_dict()[name]), name


def test_speed_options_need_the_fast_path():
    for field, value in (("compile_mode", "default"), ("amp", "bf16"), ("channels_last", True)):
        with pytest.raises(BenchError, match=f"{field}: .* valid: .*fast_path"):
            _config("bbf", **{field: value})


def test_perf_check_fast_and_its_bad_inputs(capsys):
    from bench.cli.main import main

    argv = ["perf", "agent", "--check-fast", "--check-updates", "10", "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fp32: loss_rel 0.00e+00, params_rel 0.00e+00, priorities_rel 0.00e+00" in out
    assert main(["perf", "agent", "--set", "amp=fp8", "--fast", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --set: amp: 'fp8' is not one of 'off', 'bf16'"
    assert main(["perf", "agent", "--packed", "65"]) == 2
    assert capsys.readouterr().err.strip() == "error: --packed: 65 is out of range; valid: 0..64"
