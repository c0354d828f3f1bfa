import numpy as np

from agents.heldout import held_out, held_out_mask


def test_fraction_is_the_rate_and_the_split_is_a_function_of_seed_and_index():
    mask = held_out_mask(3, 4000, 0.15)
    assert abs(mask.mean() - 0.15) < 0.02
    assert np.array_equal(mask, held_out_mask(3, 4000, 0.15))
    assert not np.array_equal(mask, held_out_mask(4, 4000, 0.15))
    assert [held_out(3, e, 0.15) for e in range(50)] == list(mask[:50])


def test_zero_and_one_hold_out_nothing_and_everything():
    assert not held_out_mask(0, 100, 0.0).any()
    assert held_out_mask(0, 100, 1.0).all()
