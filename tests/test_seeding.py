"""Seeds are derived in one place, and the derivation never changes: every published run
id's results depend on these exact numbers."""

from __future__ import annotations

import numpy as np

from bench.core.seeding import Stream, derive_seed, sequence, spawn
from bench.env.atari import derive_seeds
from bench.env.evaluation import episode_seed


def test_pinned_values() -> None:
    assert derive_seed(3, Stream.ENV) == 1576890651
    assert derive_seed(3, Stream.AGENT) == 457190280
    assert derive_seed(3, Stream.EVAL, 1250) == 3837454716
    assert derive_seed(7, 4, bits=64) == 12710370251675726938
    assert sequence(5).generate_state(1)[0] == 16823399
    assert sequence(5, 1).generate_state(1)[0] == 3796490668
    assert spawn(5, 2)[1].generate_state(1)[0] == 3767054407


def test_the_env_and_evaluation_use_it() -> None:
    assert episode_seed(7, 4) == derive_seed(7, 4, bits=64)
    ale_seed, noop, _ = derive_seeds(11)
    ale_seq, noop_seq = spawn(11, 2)
    assert ale_seed == int(ale_seq.generate_state(1, np.uint32)[0] >> 1)
    assert (noop.generate_state(4) == noop_seq.generate_state(4)).all()


def test_streams_differ() -> None:
    seeds = {derive_seed(0, s) for s in Stream} | {derive_seed(1, s) for s in Stream}
    assert len(seeds) == 2 * len(Stream)
