"""Property: whatever mapping a suite file holds, loading and expanding it (and ``bench
plan`` on it) ends in a plan or a one-line BenchError, never any other exception.

The mappings are built from plausible keys (every suite, variant, budget, protocol and
resources key, and a few wrong ones) with hostile values: text in any script, NaN and
infinities, integers past 64 bits, booleans, None, nested lists and mappings, and the
names a real suite would use. The examples are derandomized, so CI runs the same ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.value import ValueConfig
from bench.cli.main import main
from bench.core.errors import BenchError
from bench.env.protocol import ProtocolConfig
from bench.suite.budget import Budget, Resources
from bench.suite.expand import expand, plan_summary
from bench.suite.load import AXIS_KEYS, SUITE_KEYS, VARIANT_KEYS, load_suite

WORDS = [
    "Pong", "pong", "Breakout", "sem3", "random", "value", "der", "bbf", "dqn", "on", "off",
    "../x", "/abs", "a:b", "", " ", "\x00", "\n", "é", "名前", "🙂", "tests.failing_agent:ENTRY",
    ":", "os:system",
]  # fmt: skip
INTS = [0, 1, 2, 3, -1, 2**31, 2**32 - 1, 2**32, 2**63, 10**12, 10**30, -(2**63)]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.sampled_from(INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(WORDS), inner, max_size=3)
    ),
    max_leaves=12,
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any] = values) -> Any:
    """``good`` seven times in eight, so that many examples get past the first checks
    (``one_of`` would pick each half as often)."""
    return st.integers(0, 7).flatmap(lambda i: bad if i == 7 else good)


def near(default: Any) -> st.SearchStrategy[Any]:
    """Values of a field's type around its default: mostly in range, sometimes just out."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(-1, max(4, 2 * default))
    if isinstance(default, float):
        return st.floats(-0.5, max(2.0, 2 * default))
    if isinstance(default, tuple):
        return st.just(list(default))
    if isinstance(default, str):
        return st.just(default)
    return st.sampled_from(["gpu", "gpu,cpu", "../x", "a b"])  # None: SLURM names


def section(cls: type, fields: list[str] | None = None) -> st.SearchStrategy[Any]:
    """A mapping of some of a config's fields to values near their defaults, now and then
    a hostile value, a wrong key or no mapping at all."""
    defaults = cls()
    optional = {f: mostly(near(getattr(defaults, f))) for f in fields or names(cls)}
    wrong = st.one_of(st.dictionaries(st.just("colour"), values, min_size=1), values)
    return mostly(st.fixed_dictionaries({}, optional=optional), wrong)


def names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def small_lists(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return mostly(st.lists(inner, min_size=1, max_size=2))


AGENT_FIELDS = ["replay_ratio", "learning_rate", "n_step", "gamma", "device", "reset_full_groups"]
variant = mostly(
    st.fixed_dictionaries(
        {"agent": mostly(st.sampled_from(["random", "value"]), st.sampled_from(WORDS))},
        optional={
            "name": mostly(st.sampled_from(["a", "b"]), st.sampled_from(WORDS)),
            "preset": mostly(st.sampled_from(["der", "dqn", "bbf"]), st.sampled_from(WORDS)),
            "overrides": section(ValueConfig, AGENT_FIELDS),
            "protocol": section(ProtocolConfig, ["actions", "frame_skip", "noop_unit"]),
        },
    ),
    st.one_of(st.sampled_from(["random", "value", "nope"]), values),
)
GRID = {
    "protocol.frame_skip": small_lists(st.integers(0, 6)),
    "protocol.sticky_actions": small_lists(st.floats(0, 1.5)),
    "budget.env_steps": small_lists(st.integers(0, 10**5)),
    "agent.gamma": small_lists(st.floats(0.5, 1.0)),
    "n_step": small_lists(st.integers(0, 10)),
}
axes = mostly(
    st.fixed_dictionaries(
        {},
        optional={
            "audio": small_lists(
                st.sampled_from(["on", "off", "sem3", "silent", "shuffled", "image_off", "x", True])
            ),
            "replay_ratio": small_lists(st.floats(-1, 8)),
            "grid": mostly(
                st.fixed_dictionaries({}, optional=GRID),
                st.dictionaries(st.sampled_from([*GRID, "x.y", "model.x"]), values, max_size=2),
            ),
        },
    ),
)
SUITE = {
    "name": mostly(st.just("ok"), st.one_of(st.sampled_from(WORDS), values)),
    "description": mostly(st.text(max_size=20)),
    "axes": axes,
    "budget": section(Budget),
    "protocol": section(ProtocolConfig),
    "resources": section(Resources),
    # what the report compares: a variant as the ablations' base, an axis as the sweep
    "study": mostly(
        st.fixed_dictionaries(
            {},
            optional={
                "base": st.sampled_from(["random", "v", *WORDS]),
                "sweep": st.sampled_from(["variant", "replay_ratio", "audio", *WORDS]),
            },
        ),
        values,
    ),
}
REQUIRED = {
    "games": small_lists(
        mostly(st.sampled_from(["Pong", "Breakout", "Assault"]), st.sampled_from(WORDS))
    ),
    "seeds": mostly(
        st.one_of(
            st.integers(1, 3), st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True)
        ),
        st.one_of(st.sampled_from(INTS), st.lists(st.sampled_from(INTS), max_size=3), values),
    ),
    "variants": small_lists(variant),
}
suites = mostly(
    st.fixed_dictionaries(REQUIRED, optional=SUITE),
    st.one_of(
        st.fixed_dictionaries({}, optional={**REQUIRED, **SUITE, "sedes": values}),
        values,  # not a mapping at all
    ),
)
# Every key a suite, a variant or the axes can have is tried.
assert set(SUITE_KEYS) == set(SUITE) | set(REQUIRED)
assert set(VARIANT_KEYS) == {"name", "agent", "preset", "overrides", "protocol"}
assert set(AXIS_KEYS) == {"audio", "replay_ratio", "grid"}


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(suites)
def test_any_suite_mapping_is_a_plan_or_a_bench_error(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            specs = expand(load_suite(path))
        except BenchError:
            ok = False
        else:
            assert specs and plan_summary(specs)["runs"] == len(specs)
            ok = True
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(["plan", str(path)])
        assert rc == (0 if ok else 2), err.getvalue()
        if not ok:
            lines = err.getvalue().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), err.getvalue()
