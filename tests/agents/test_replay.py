import numpy as np
import pytest

from agents.replay import ReplayBuffer, SumTree

# One episode of 5 steps (terminal at step 4), then a second one. Rewards 1, 2, 4, ...;
# frame i is filled with the value i + 1, so a stack shows which steps it holds.
REWARDS = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]
TERMINAL_AT = 4


def filled(audio=False, capacity=64):
    buf = ReplayBuffer(
        capacity,
        image_shape=(4, 3, 3),
        audio_shape=(4, 5) if audio else None,
        prioritized=True,
    )
    for i, r in enumerate(REWARDS):
        buf.add(
            np.full((3, 3), i + 1, np.uint8),
            action=i % 3,
            reward=r,
            terminal=i == TERMINAL_AT,
            episode_end=False,
            audio=np.full(5, 100 + i, np.uint8) if audio else None,
        )
    return buf


def newest(stack):  # (..., 4, 3, 3) -> the per-frame values
    return stack[..., 0, 0]


def sample(buf, idx, *, bootstrap, n=3, gamma=0.5, subseq=1, spr_mask="fixed"):
    return buf.sample(
        len(idx),
        np.random.default_rng(0),
        n=n,
        gamma=gamma,
        subseq=subseq,
        bootstrap=bootstrap,
        spr_mask=spr_mask,
        indices=np.array(idx),
    )


def test_n_step_targets_fixed_bootstrap_from_s_t_plus_n():
    b = sample(filled(), [0, 1, 2, 3], bootstrap="fixed")
    # t=0: 1 + .5*2 + .25*4 = 3; t=1: 2 + .5*4 + .25*8 = 6; t=2: 4 + 4 + 4 = 12;
    # t=3: 8 + .5*16 = 16 (nothing after the terminal at step 4).
    np.testing.assert_allclose(b.returns, [3.0, 6.0, 12.0, 16.0])
    # t=2 and t=3 reach the terminal at step 4: no bootstrap.
    np.testing.assert_allclose(b.discounts, [0.125, 0.125, 0.0, 0.0])
    assert newest(b.next_states[0]).tolist() == [1, 2, 3, 4]  # s_3
    assert newest(b.next_states[1]).tolist() == [2, 3, 4, 5]  # s_4


def test_n_step_targets_reference_bootstrap_from_s_t_plus_n_minus_1():
    b = sample(filled(), [0, 1, 2, 3], bootstrap="reference")
    np.testing.assert_allclose(b.returns, [3.0, 6.0, 12.0, 16.0])
    # The reference only looks for terminals in t..t+n-2: t=2 still bootstraps (from s_4).
    np.testing.assert_allclose(b.discounts, [0.125, 0.125, 0.125, 0.0])
    assert newest(b.next_states[0]).tolist() == [0, 1, 2, 3]  # s_2, not s_3
    assert newest(b.next_states[2]).tolist() == [2, 3, 4, 5]  # s_4


def test_n_step_return_stops_at_the_terminal_across_the_episode_end():
    b = sample(filled(), [3, 5], bootstrap="fixed", n=4, gamma=0.5)
    # t=3: r3 + .5 r4, nothing after the terminal; t=5: 32 + 32 + 32 + 32.
    np.testing.assert_allclose(b.returns, [16.0, 128.0])
    np.testing.assert_allclose(b.discounts, [0.0, 0.0625])


def test_stacks_are_zeroed_before_the_episode_start():
    buf = filled(audio=True)
    b = sample(buf, [2, 5, 6], bootstrap="fixed", n=1)
    assert newest(b.states[:, 0]).tolist() == [[0, 1, 2, 3], [0, 0, 0, 6], [0, 0, 6, 7]]
    assert b.audio[:, 0, :, 0].tolist() == [[0, 100, 101, 102], [0, 0, 0, 105], [0, 0, 105, 106]]


def test_spr_mask_fixed_and_reference_at_an_episode_boundary():
    buf = filled()
    fixed = sample(buf, [2, 2], bootstrap="fixed", n=1, subseq=4, spr_mask="fixed")
    ref = sample(buf, [2, 2], bootstrap="fixed", n=1, subseq=4, spr_mask="reference")
    # s_3 and s_4 belong to the episode of s_2; s_5 starts the next one.
    assert fixed.same_trajectory.tolist() == [[1, 1, 1, 0]] * 2
    # The reference also drops s_4, the state where the terminal action was taken; and it
    # masks nothing in the batch's first row (it zeroed row 0 where it meant column 0).
    assert ref.same_trajectory.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert fixed.actions.tolist() == [[2, 0, 1, 2]] * 2


def test_reference_spr_mask_reads_terminals_not_episode_ends():
    """BBF's buffer builds same_trajectory from its terminal store: a truncation (episode
    end without a terminal) does not cut the SPR rollout there; the fixed mask does."""
    buf = ReplayBuffer(64, image_shape=(4, 3, 3), prioritized=False)
    for i in range(12):
        buf.add(np.full((3, 3), i, np.uint8), 0, 0.0, terminal=False, episode_end=i == 5)
    ref = sample(buf, [3, 3], bootstrap="fixed", n=1, subseq=4, spr_mask="reference")
    fixed = sample(buf, [3, 3], bootstrap="fixed", n=1, subseq=4, spr_mask="fixed")
    assert ref.same_trajectory.tolist()[1] == [1, 1, 1, 1]
    assert fixed.same_trajectory.tolist()[1] == [1, 1, 1, 0]


def test_truncated_windows_are_not_sampled():
    buf = ReplayBuffer(64, image_shape=(4, 3, 3), prioritized=False)
    for i in range(30):
        buf.add(np.zeros((3, 3), np.uint8), 0, 0.0, terminal=False, episode_end=i == 10)
    idx = np.arange(30)
    ok = buf._valid(idx, lookahead=3, n=3)
    # Windows t..t+2 holding the truncation at 10 (t = 8, 9, 10) and the last 3 steps.
    assert np.flatnonzero(~ok).tolist() == [8, 9, 10, 27, 28, 29]


def test_sum_tree_values_and_sampling_frequencies():
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.0]))
    assert tree.total == 10.0
    assert tree.find(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 9.99])).tolist() == [0, 0, 1, 1, 2, 3]
    tree.set(np.array([1]), np.array([6.0]))
    assert tree.total == 14.0 and tree.max_priority == 6.0
    rng = np.random.default_rng(1234)
    draws = np.concatenate([tree.stratified(32, rng) for _ in range(1000)])
    freq = np.bincount(draws, minlength=5) / draws.size
    expected = np.array([1, 6, 3, 4, 0]) / 14
    # 32,000 draws: a binomial standard error below 0.003; 0.01 is a loose bound.
    np.testing.assert_allclose(freq, expected, atol=0.01)
    assert freq[4] == 0.0


def test_prioritized_replay_samples_in_proportion_to_priority():
    buf = ReplayBuffer(100, image_shape=(4, 3, 3), prioritized=True)
    for _ in range(100):
        buf.add(np.zeros((3, 3), np.uint8), 0, 0.0, terminal=False, episode_end=False)
    prio = np.ones(100)
    prio[10] = 50.0  # one step 50 times likelier than each other
    buf.update_priorities(np.arange(100), prio)
    rng = np.random.default_rng(7)
    hits = [buf.sample_indices(32, rng, lookahead=1, n=1) for _ in range(300)]
    hits = np.concatenate(hits)
    share = np.mean(hits == 10)
    # Valid steps: 0..98 (step 99 lacks the lookahead): 50 / (50 + 98) = 0.338.
    assert share == pytest.approx(50 / 148, abs=0.03)
    assert hits.max() <= 98


def test_new_items_get_the_maximum_priority():
    buf = ReplayBuffer(8, image_shape=(4, 3, 3), prioritized=True)
    buf.add(np.zeros((3, 3), np.uint8), 0, 0.0, terminal=False, episode_end=False)
    buf.update_priorities(np.array([0]), np.array([3.5]))
    buf.add(np.zeros((3, 3), np.uint8), 0, 0.0, terminal=False, episode_end=False)
    assert buf.tree.get(np.array([1])).tolist() == [3.5]


def test_wraparound_keeps_stacks_and_indices_consistent():
    buf = ReplayBuffer(8, image_shape=(4, 3, 3), prioritized=False)
    for i in range(20):
        buf.add(np.full((3, 3), i + 1, np.uint8), 0, 1.0, terminal=False, episode_end=False)
    b = buf.sample(1, None, n=1, gamma=0.9, indices=np.array([18]))
    assert newest(b.states[0, 0]).tolist() == [16, 17, 18, 19]
    ok = buf._valid(np.arange(10, 20), lookahead=1, n=1)
    # Oldest stored step is 12; a stack needs 3 older frames, the lookahead one newer.
    assert np.flatnonzero(ok).tolist() == [5, 6, 7, 8]  # steps 15..18


def test_state_round_trip_of_the_replay():
    buf = filled(audio=True)
    other = ReplayBuffer(64, image_shape=(4, 3, 3), audio_shape=(4, 5), prioritized=True)
    other.load_state_dict(buf.state_dict())
    a = sample(buf, [1, 6], bootstrap="fixed")
    b = sample(other, [1, 6], bootstrap="fixed")
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.audio, b.audio)
    np.testing.assert_array_equal(a.returns, b.returns)
    np.testing.assert_array_equal(buf.tree.tree, other.tree.tree)


def test_a_stack_the_env_zero_filled_without_a_boundary_starts_a_segment():
    buf = ReplayBuffer(16, image_shape=(2, 3, 3), prioritized=False)
    f = [np.full((3, 3), v, np.uint8) for v in range(1, 5)]
    zero = np.zeros((3, 3), np.uint8)
    buf.add(f[0], 0, 0.0, terminal=False, episode_end=False, older=zero[None])
    buf.add(f[1], 0, 0.0, terminal=False, episode_end=False, older=f[0][None])  # continues
    buf.add(
        f[2], 0, 0.0, terminal=False, episode_end=False, older=zero[None]
    )  # the env zero-filled its stack
    buf.add(f[3], 0, 0.0, terminal=False, episode_end=False, older=f[2][None])
    b = buf.sample(1, None, n=1, gamma=1.0, indices=np.array([1]))
    assert b.states[0, 0, :, 0, 0].tolist() == [1, 2]
    b = buf.sample(2, None, n=1, gamma=1.0, indices=np.array([2, 3]))
    assert b.states[:, 0, :, 0, 0].tolist() == [[0, 3], [3, 4]]


def test_continuous_actions_round_trip_exactly():
    """float32 vectors come back bit for bit: in batches, subsequences and through a state
    round trip via the checkpoint format; a discrete state does not load into them."""
    from bench.core.safe_state import round_trip

    rng = np.random.default_rng(0)
    actions = rng.uniform([0, -np.pi, 0], [1, np.pi, 1], (40, 3)).astype(np.float32)
    actions[3] = [np.float32(np.pi), np.nextafter(np.float32(0.5), np.float32(1)), 1e-38]
    buf = ReplayBuffer(32, image_shape=(4, 3, 3), prioritized=False, action_shape=(3,))
    for i, a in enumerate(actions):
        buf.add(np.full((3, 3), i, np.uint8), a, 0.5, terminal=i % 9 == 8, episode_end=False)
    idx = np.arange(buf.count - len(buf), buf.count - 3)
    b = buf.sample(len(idx), None, n=1, gamma=0.9, subseq=2, indices=idx)
    assert b.actions.dtype == np.float32 and b.actions.shape == (len(idx), 2, 3)
    np.testing.assert_array_equal(b.actions[:, 0], actions[idx])
    same = b.same_trajectory[:, 1] > 0  # past a boundary the step itself is read again
    assert same.sum() >= 20
    np.testing.assert_array_equal(b.actions[same, 1], actions[idx[same] + 1])

    other = ReplayBuffer(32, image_shape=(4, 3, 3), prioritized=False, action_shape=(3,))
    other.load_state_dict(round_trip(buf.state_dict()))
    c = other.sample(len(idx), None, n=1, gamma=0.9, subseq=2, indices=idx)
    np.testing.assert_array_equal(c.actions, b.actions)
    assert c.actions.tobytes() == b.actions.tobytes()
    with pytest.raises(ValueError, match="action shape"):
        ReplayBuffer(32, image_shape=(4, 3, 3), prioritized=False).load_state_dict(buf.state_dict())
