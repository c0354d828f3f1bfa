"""Differential tests against the reference implementations, imported from the installed
``dopamine-rl`` (the project's ``reference`` extra: ``pip install -e '.[reference]'``).

dopamine-rl 4.1.2's ``discrete_domains/atari_lib.py`` imports OpenAI Baselines'
``atari_wrappers`` at module level, for its PPO preprocessing only; Baselines' last PyPI
release (0.1.5, 2018) cannot be installed beside it (it pins mpi4py and MuJoCo). When it is
missing, an empty stand-in module is registered so that Dopamine's ``AtariPreprocessing``
and networks import; nothing here uses Baselines. Likewise, the 4.1.2 wheel leaves out
``labs/atari_100k/replay_memory`` (it has no ``__init__.py``), which ``spr_agent`` imports
for its agent class only: the tests use its module-level ``train`` and ``target_output``.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest

REASON = "dopamine-rl is not installed: pip install -e '.[reference]' (CI installs it)"


def _stand_in(*names: str) -> None:
    """Empty modules for ``names`` (parents first), unless the last one imports."""
    try:
        if importlib.util.find_spec(names[-1]) is not None:
            return
    except ModuleNotFoundError:
        pass
    for name in names:
        sys.modules.setdefault(name, types.ModuleType(name))


def dopamine_available() -> bool:
    return importlib.util.find_spec("dopamine") is not None


if dopamine_available():
    _stand_in("baselines", "baselines.common", "baselines.common.atari_wrappers")
    _stand_in(
        "dopamine.labs.atari_100k.replay_memory",
        "dopamine.labs.atari_100k.replay_memory.subsequence_replay_buffer",
    )


@pytest.fixture(scope="session")
def atari_lib() -> types.ModuleType:
    """dopamine.discrete_domains.atari_lib, or a skip saying how to install it."""
    if not dopamine_available():
        pytest.skip(REASON)
    from dopamine.discrete_domains import atari_lib

    return atari_lib
