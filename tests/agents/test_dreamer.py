"""The Dreamer agent: its pure functions on hand-made inputs, the replay's held-out split,
the imagination's shapes, exact resume, and a tiny problem it must learn."""

import math

import numpy as np
import pytest
import torch

from agents.dreamer import functional as fn
from agents.dreamer.config import TINY, DreamerConfig
from agents.dreamer.replay import SequenceReplay
from agents.heldout import held_out
from agents.protocol import ObsSpec, Transition
from agents.registry import get_agent
from agents.testing import DISCRETE_SPEC, drive, same_state
from bench.core.config import override
from bench.core.errors import BenchError
from bench.core.safe_state import round_trip


def tiny(**changes):
    return override(TINY, {"device": "cpu", **changes}, where="test")


# -- symlog, two-hot ------------------------------------------------------------------------
def test_symlog_and_symexp_invert_each_other():
    x = torch.tensor([-1e6, -300.0, -1.5, -1e-3, 0.0, 1e-3, 0.7, 42.0, 1e6], dtype=torch.float64)
    assert torch.allclose(fn.symexp(fn.symlog(x)), x, rtol=1e-12, atol=1e-12)
    assert torch.allclose(fn.symlog(fn.symexp(x[2:-2])), x[2:-2], rtol=1e-12)
    assert fn.symlog(torch.tensor(math.e - 1)).item() == pytest.approx(1.0)
    assert fn.symlog(torch.tensor(-(math.e - 1))).item() == pytest.approx(-1.0)


def test_twohot_puts_a_known_value_on_its_two_neighbouring_bins():
    grid = fn.bins(255)
    step = 40 / 254
    assert torch.allclose(grid[1:] - grid[:-1], torch.full((254,), step), atol=1e-5)
    y = torch.tensor(grid[130].item() + 0.25 * step)  # a quarter of the way to bin 131
    code = fn.twohot(y, grid)
    assert code.shape == (255,)
    assert code[130].item() == pytest.approx(0.75, abs=1e-4)
    assert code[131].item() == pytest.approx(0.25, abs=1e-4)
    assert code.sum().item() == pytest.approx(1.0) and (code > 0).sum() == 2
    assert (code * grid).sum().item() == pytest.approx(y.item(), abs=1e-5)
    # Zero sits on the middle bin; beyond the grid everything goes to the end bin.
    assert fn.twohot(torch.tensor(0.0), grid)[127].item() == pytest.approx(1.0)
    assert fn.twohot(torch.tensor(99.0), grid)[-1].item() == pytest.approx(1.0)


def test_twohot_decodes_raw_values_through_symlog_space():
    grid = fn.bins(255)
    raw = torch.tensor([-1234.5, -3.0, 0.0, 0.5, 21.0, 9000.0])
    logits = torch.log(fn.twohot(fn.symlog(raw), grid).clamp_min(1e-30))
    assert torch.allclose(fn.twohot_mean(logits, grid), raw, rtol=1e-4, atol=1e-4)
    # The loss is smallest for the logits that encode the target.
    other = torch.log(fn.twohot(fn.symlog(raw + 5), grid).clamp_min(1e-30))
    assert (fn.twohot_loss(logits, raw, grid) < fn.twohot_loss(other, raw, grid)).all()


# -- latents, KL balancing, free bits -----------------------------------------------------
def test_unimix_keeps_every_class_at_least_its_share():
    logits = torch.tensor([[50.0, -50.0, -50.0, -50.0]])
    probs = fn.unimix_logits(logits, 0.01).exp()
    assert probs.min().item() == pytest.approx(0.01 / 4, rel=1e-4)
    assert probs.sum().item() == pytest.approx(1.0)
    assert fn.unimix_logits(logits, 0.0).exp()[0, 0].item() == pytest.approx(1.0)


def _hand_made():
    post = torch.log(torch.tensor([[[0.9, 0.1], [0.5, 0.5]]])).requires_grad_(True)
    prior = torch.log(torch.tensor([[[0.5, 0.5], [0.5, 0.5]]])).requires_grad_(True)
    return post, prior


def test_kl_balancing_sends_each_term_to_its_own_side():
    post, prior = _hand_made()
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # the second latent adds 0
    dyn, rep = fn.kl_losses(post, prior, free_nats=0.0)
    assert dyn.item() == pytest.approx(kl, rel=1e-5) and rep.item() == pytest.approx(kl, rel=1e-5)
    g_post, g_prior = torch.autograd.grad(dyn.sum(), (post, prior), allow_unused=True)
    assert g_post is None and g_prior.abs().sum() > 0  # dyn trains the prior only
    post, prior = _hand_made()
    dyn, rep = fn.kl_losses(post, prior, free_nats=0.0)
    g_post, g_prior = torch.autograd.grad(rep.sum(), (post, prior), allow_unused=True)
    assert g_prior is None and g_post.abs().sum() > 0  # rep trains the posterior only


def test_free_bits_clip_the_kl_and_its_gradient_below_one_nat():
    post, prior = _hand_made()  # KL 0.368 nats
    dyn, rep = fn.kl_losses(post, prior, free_nats=1.0)
    assert dyn.item() == 1.0 and rep.item() == 1.0
    grads = torch.autograd.grad((dyn + rep).sum(), (post, prior))
    assert all(g.abs().sum() == 0 for g in grads)
    # Above the free bits the KL passes through.
    far = torch.log(torch.tensor([[[0.999, 0.001]]]))
    dyn, _ = fn.kl_losses(far, torch.log(torch.tensor([[[0.01, 0.99]]])), free_nats=1.0)
    assert dyn.item() == pytest.approx(0.999 * math.log(99.9) + 0.001 * math.log(0.001 / 0.99))


# -- returns ------------------------------------------------------------------------------
def test_lambda_returns_on_a_hand_made_sequence():
    rewards = torch.tensor([[1.0], [1.0], [1.0]])
    values = torch.tensor([[0.0], [0.0], [0.0], [10.0]])
    discounts = torch.full((3, 1), 0.5)
    # lambda 1: discounted rewards, bootstrapped from the last value only.
    full = fn.lambda_returns(rewards, values, discounts, 1.0)
    assert full.flatten().tolist() == [3.0, 4.0, 6.0]
    # lambda 0: one-step targets r_t + d_t v_{t+1}.
    one = fn.lambda_returns(rewards, values, discounts, 0.0)
    assert one.flatten().tolist() == [1.0, 1.0, 6.0]
    half = fn.lambda_returns(rewards, values, discounts, 0.5)
    # R2 = 6; R1 = 1 + 0.5 (0.5 * 0 + 0.5 * 6) = 2.5; R0 = 1 + 0.5 (0.5 * 2.5) = 1.625
    assert half.flatten().tolist() == [1.625, 2.5, 6.0]
    # A terminal (discount 0) stops the return.
    cut = fn.lambda_returns(rewards, values, torch.tensor([[0.5], [0.0], [0.5]]), 1.0)
    assert cut.flatten().tolist() == [1.5, 1.0, 6.0]


def test_trajectory_weights_discount_and_stop_at_a_predicted_terminal():
    cont = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    w = fn.trajectory_weights(cont, 0.9)
    assert torch.allclose(w[:, 0], torch.tensor([1.0, 0.9, 0.81, 0.729]))
    assert torch.allclose(w[:, 1], torch.tensor([1.0, 0.0, 0.0, 0.0]))


def test_return_normalization_divides_by_the_percentile_range_never_below_one():
    norm = fn.ReturnNorm(decay=0.0)
    norm.update(torch.arange(101, dtype=torch.float32))  # P5 = 5, P95 = 95
    assert (norm.low, norm.high, norm.scale) == pytest.approx((5.0, 95.0, 90.0))
    small = fn.ReturnNorm(decay=0.5)
    small.update(torch.linspace(0, 0.1, 11))
    assert small.scale == 1.0  # small returns are not scaled up
    assert small.high == pytest.approx(0.5 * 0.095, rel=1e-4)


# -- replay and the held-out split --------------------------------------------------------
def test_sequences_of_held_out_episodes_never_reach_training():
    replay = SequenceReplay(capacity=400, image_size=32)
    flags = [held_out(3, e, 0.3) for e in range(30)]
    assert 0 < sum(flags) < 30
    for episode, flag in enumerate(flags):
        for t in range(12):
            image = np.full((32, 32), episode, np.uint8)
            replay.add(image, 0.0, t == 11, t == 0, flag)
    rng = np.random.default_rng(0)
    for heldout in (False, True):
        batch = replay.sample(64, 8, rng, heldout=heldout)
        assert batch is not None and batch["image"].shape == (64, 8, 32, 32)
        episodes = np.unique(batch["image"][:, :, 0, 0])
        assert all(flags[e] == heldout for e in episodes), (heldout, episodes)
        assert batch["is_first"][:, 0].all()
    # Wrapped around: the oldest steps are gone (30 x 12 = 360 < 400, add 100 more).
    for t in range(100):
        replay.add(np.full((32, 32), 200, np.uint8), 0.0, False, t == 0, False)
    assert len(replay) == 400 and replay.starts(8, False).min() == 60


def _episodes_replay(lengths, heldout=(), **sampling):
    """Episodes of these lengths (the last one unfinished); each image holds (episode, t)."""
    replay = SequenceReplay(capacity=400, image_size=32, **sampling)
    for episode, length in enumerate(lengths):
        for t in range(length):
            image = np.zeros((32, 32), np.uint8)
            image[0, :2] = episode, t
            replay.add(image, 0.0, False, t == 0, episode in heldout)
    return replay


def test_dreamerv2_sampling_draws_whole_finished_episodes_uniformly():
    replay = _episodes_replay([5, 12, 20, 9, 30], heldout={3}, sampling="episodes")
    assert replay.episodes(False)[1].tolist() == [5, 12, 20]  # the 30-step one is unfinished
    batch = replay.sample(4000, 8, np.random.default_rng(0))
    assert batch is not None
    episode, t = batch["image"][:, :, 0, 0], batch["image"][:, :, 0, 1]
    assert (episode == episode[:, :1]).all()  # never crosses into another episode
    assert (np.diff(t.astype(int), axis=1) == 1).all()
    # Too short (5), held out (3) or unfinished (4): never drawn; 12 and 20 half the time each.
    shares = np.bincount(episode[:, 0], minlength=5) / 4000
    assert shares[[0, 3, 4]].sum() == 0 and abs(shares[1] - 0.5) < 0.04
    # Uniform over the 13 starts of the 20-step episode: its last one 1/13 of the time.
    last = (t[episode[:, 0] == 2, 0] == 12).mean()
    assert abs(last - 1 / 13) < 0.03
    held = replay.sample(50, 8, np.random.default_rng(0), heldout=True)
    assert held is not None and (held["image"][:, :, 0, 0] == 3).all()


def test_prioritize_ends_favours_the_final_sequence_of_an_episode():
    replay = _episodes_replay([20, 3], sampling="episodes", prioritize_ends=True)
    batch = replay.sample(6000, 8, np.random.default_rng(1))
    assert batch is not None
    starts = batch["image"][:, 0, 0, 1]
    # 21 draws clipped to the 13 starts: the last (12) has 9 of them, every other one 1.
    assert abs((starts == 12).mean() - 9 / 21) < 0.03
    assert abs((starts == 0).mean() - 1 / 21) < 0.015


# -- the agent ----------------------------------------------------------------------------
def test_config_refuses_out_of_range_fields():
    with pytest.raises(BenchError, match=r"test\.train_every: 0 is out of range; valid: 1"):
        override(TINY, {"train_every": 0}, where="test")
    with pytest.raises(BenchError, match="heldout_fraction"):
        override(TINY, {"heldout_fraction": 1.0}, where="test")
    assert (
        DreamerConfig().train_every == 1 and DreamerConfig().stoch * DreamerConfig().classes == 1024
    )


def test_imagination_has_the_shapes_it_claims():
    entry = get_agent("dreamer")
    agent = entry.make(tiny(horizon=6), obs_spec=ObsSpec(num_actions=5), seed=0)
    with torch.no_grad():
        start = agent.wm.rssm.initial(7)
        feats, actions = agent.imagine(start, agent.train_gen)
    feat = TINY.deter + TINY.stoch * TINY.classes
    assert feats.shape == (7, 7, feat) and actions.shape == (7, 7)
    assert ((actions >= 0) & (actions < 5)).all()
    stoch = feats[1:, :, TINY.deter :].reshape(6, 7, TINY.stoch, TINY.classes)
    # One-hot samples (the straight-through term adds p - p, zero up to rounding).
    assert torch.allclose(stoch.sum(-1), torch.ones(6, 7, TINY.stoch))
    assert torch.allclose(stoch.max(-1).values, torch.ones(6, 7, TINY.stoch))


def _drive(agent, steps, seed):
    return drive(agent, DISCRETE_SPEC, np.random.default_rng(seed), steps, episode_len=9)


def test_exact_resume_gives_identical_actions_losses_and_held_out_diagnostics():
    entry = get_agent("dreamer")
    config = tiny(heldout_fraction=0.3, prefill=10, train_every=3)
    agent = entry.make(config, obs_spec=DISCRETE_SPEC, seed=4)
    _drive(agent, 40, 1)
    resumed = entry.make(config, obs_spec=DISCRETE_SPEC, seed=9)
    resumed.load_state_dict(round_trip(agent.state_dict()))
    assert _drive(agent, 25, 2) == _drive(resumed, 25, 2)
    m1, m2 = agent.metrics(), resumed.metrics()
    assert m1 == m2
    assert m1["grad_steps"] == (65 - 10) // 3 and "loss_image" in m1
    assert {"wm_train_image", "wm_heldout_image", "wm_heldout_kl"} <= set(m1)
    same_state(agent.state_dict(), resumed.state_dict())


def test_the_planned_updates_are_the_updates_made():
    entry = get_agent("dreamer")
    config = tiny(prefill=8, train_every=5)
    agent = entry.make(config, obs_spec=DISCRETE_SPEC, seed=0)
    _drive(agent, 33, 0)
    assert agent.updates == entry.updates(config, 33) == 5


class _Bandit:
    """Three actions; action 0 pays 1, the others 0, and the next screen shows what was
    paid (white after a reward, black otherwise), as Atari screens show the score.
    Episodes of 20 steps."""

    screens = (np.zeros((4, 84, 84), np.uint8), np.full((4, 84, 84), 255, np.uint8))

    def run(self, agent, steps):
        obs = {"image": self.screens[0]}
        for t in range(steps):
            action = int(agent.act({"image": obs["image"][None]}, eval_mode=False)[0])
            end = (t + 1) % 20 == 0
            reward = float(action == 0)
            nxt = {"image": self.screens[int(reward)]}
            agent.observe(Transition(obs, action, reward, end, end, nxt))
            obs = {"image": self.screens[0]} if end else nxt


@pytest.mark.slow
def test_a_tiny_dreamer_learns_a_bandit_that_random_play_gets_one_third_of():
    entry = get_agent("dreamer")
    # Free bits of 0.1 nat: the tiny model's 4 x 4 latents hold the screen's one bit (0.69
    # nats) below DreamerV3's 1 nat, which would leave the prior untrained on it.
    config = tiny(prefill=100, train_every=1, free_nats=0.1)
    agent = entry.make(config, obs_spec=ObsSpec(num_actions=3), seed=0)
    _Bandit().run(agent, 400)
    batch = np.stack([_Bandit.screens[i % 2] for i in range(200)])
    acts = agent.act({"image": batch}, eval_mode=True, epsilon=0.0)
    # Random play picks action 0 a third of the time (about 67 of 200, sd 6.7).
    assert (acts == 0).mean() > 0.6, np.bincount(acts, minlength=3)
    assert agent.metrics()["imag_return"] > 1.0  # the model predicts the rewards it gets


def test_the_dreamerv2_recipe_trains_with_mse_heads_and_a_copied_slow_critic():
    from agents.dreamer.config import PRESETS

    sizes = {k: getattr(TINY, k) for k in ("image_size", "cnn_depth", "deter", "stoch", "classes")}
    config = override(
        PRESETS["dreamerv2"],
        {
            **sizes,
            "units": 16,
            "mlp_layers": 1,
            "batch_size": 2,
            "seq_len": 6,
            "horizon": 3,
            "prefill": 8,
            "train_every": 4,
            "slow_critic_every": 2,
            "device": "cpu",
        },
        where="test",
    )
    agent = get_agent("dreamer").make(config, obs_spec=DISCRETE_SPEC, seed=0)
    assert agent.grid is None and agent.wm.reward[-1].out_features == 1  # no two-hot
    _drive(agent, 24, 0)
    assert agent.updates == 4 and agent.last["return_scale"] == 1.0  # no return norm
    # Copied (fraction 1) every 2 updates: equal to the critic right after the 4th.
    pairs = zip(agent.slow_critic.parameters(), agent.ac.critic.parameters(), strict=True)
    for slow, online in pairs:
        assert torch.equal(slow, online)
    assert all(math.isfinite(v) for v in agent.metrics().values())


def _batch(agent, rewards: np.ndarray) -> dict[str, np.ndarray]:
    """A hand-made replay batch (B, T) with these rewards and random frames and actions."""
    rng = np.random.default_rng(1)
    b, t = rewards.shape
    size = agent.cfg.image_size
    is_first = np.zeros((b, t), bool)
    is_first[:, 0] = True
    return {
        "image": rng.integers(0, 256, (b, t, size, size), dtype=np.uint8),
        "action": rng.integers(0, agent.num_actions, (b, t)),
        "reward": rewards.astype(np.float32),
        "terminal": np.zeros((b, t), bool),
        "is_first": is_first,
    }


def _wm_losses(agent, data):
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        losses, _ = agent.world_model_losses(data, gen)
    return losses


def test_the_dreamerv2_reward_target_is_tanh_of_the_reward():
    agent = get_agent("dreamer").make(tiny(symlog_twohot=False), obs_spec=DISCRETE_SPEC, seed=0)
    rewards = np.array([[0.0, 3.0, -2.0, 1.0], [5.0, 0.0, 0.5, -1.0]])
    raw = _wm_losses(agent, _batch(agent, rewards))["reward"]
    squashed = _wm_losses(agent, _batch(agent, np.tanh(rewards)))["reward"]
    agent.cfg = override(agent.cfg, {"reward_transform": "tanh"}, where="test")
    transformed = _wm_losses(agent, _batch(agent, rewards))["reward"]
    assert torch.equal(transformed, squashed) and not torch.allclose(transformed, raw)


def test_the_continuation_loss_is_weighted_by_cont_scale():
    agent = get_agent("dreamer").make(tiny(), obs_spec=DISCRETE_SPEC, seed=0)
    losses = _wm_losses(agent, _batch(agent, np.zeros((2, 4))))
    base = agent.model_loss(losses)
    agent.cfg = override(agent.cfg, {"cont_scale": 5.0}, where="test")
    assert torch.allclose(agent.model_loss(losses) - base, 4 * losses["cont"].mean())
    assert losses["cont"].mean() > 0


def test_weight_decay_multiplies_every_weight_before_the_step():
    from agents.dreamer.agent import _step

    layer = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in layer.parameters()]
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    loss = layer(torch.ones(1, 3)).sum()
    _step(opt, loss, layer.parameters(), clip=100.0, decay=0.25)
    # SGD: w <- 0.75 w - 0.1 grad; the gradient of the sum is 1 (bias) and the input (weight).
    assert torch.allclose(layer.bias, 0.75 * before[1] - 0.1)
    assert torch.allclose(layer.weight, 0.75 * before[0] - 0.1)


@pytest.mark.parametrize("eval_sample", [False, True])
def test_evaluation_samples_the_actor_or_takes_its_most_likely_action(eval_sample):
    agent = get_agent("dreamer").make(tiny(eval_sample=eval_sample), obs_spec=DISCRETE_SPEC, seed=0)
    obs = {"image": np.random.default_rng(2).integers(0, 256, (8, 4, 84, 84), dtype=np.uint8)}
    with torch.no_grad():
        frames = agent._float(agent._small(obs["image"]))
        state = agent._filter_stack(frames, None, torch.Generator().manual_seed(0))
        greedy = agent.ac.actor(state.feat).argmax(-1).numpy()
    agent._filter_stack = lambda *_: state  # the same latent state every time
    actions = [agent.act(obs, eval_mode=True) for _ in range(10)]
    if eval_sample:
        assert any(not np.array_equal(a, greedy) for a in actions)
    else:
        assert all(np.array_equal(a, greedy) for a in actions)


def test_audio_joins_the_embedding_and_the_replay_when_asked_for():
    spec = ObsSpec(num_actions=4, image_shape=(4, 84, 84), audio_shape=(4, 512))
    entry = get_agent("dreamer")
    config = tiny(audio_embed=3, prefill=8, train_every=4)
    agent = entry.make(config, obs_spec=spec, seed=0)
    images = torch.full((1, 1, 32, 32), 0.5)
    with torch.no_grad():
        quiet, loud = (agent.wm.embed(images, torch.full((1, 1, 512), v)) for v in (0.0, 1.0))
    assert quiet.shape == (1, 1, agent.wm.encoder.out_dim + 3)
    assert not torch.equal(quiet, loud)
    rng = np.random.default_rng(0)
    drive(agent, spec, rng, 20)
    assert agent.updates == 3 and agent.replay.audio is not None
    assert agent.replay.audio[:21].any()  # each step's newest audio frame is kept
    resumed = entry.make(config, obs_spec=spec, seed=0)
    resumed.load_state_dict(round_trip(agent.state_dict()))
    stream = np.random.SeedSequence(5)
    a1 = drive(agent, spec, np.random.default_rng(stream), 8)
    assert a1 == drive(resumed, spec, np.random.default_rng(stream), 8)
    # Without audio_embed the same spec's audio is ignored.
    assert entry.make(tiny(), obs_spec=spec, seed=0).wm.audio is None
