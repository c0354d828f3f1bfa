"""Reading a suite file: bytes to plain data, refusing what no suite needs.

PyYAML's ``safe_load`` already refuses code, but it accepts files that are binary, huge or
hostile: a billion-laughs document (aliases of aliases) that becomes 10^9 items once any
code walks it, nesting deep enough to overflow the stack, and duplicate keys, of which the
last silently wins. This reader refuses each with one line naming the file, the line and
the limit, before anything walks the data:

* at most ``MAX_BYTES`` of UTF-8 text with no NUL byte;
* at most ``MAX_DEPTH`` levels of nesting and ``MAX_NODES`` values, both counted with every
  alias expanded (counted on the parsed node graph, where an alias is one shared node, so
  the count is cheap and nothing is expanded); an alias to a node that contains it is refused;
* no key twice in one mapping (a merge key ``<<`` may be overridden, as YAML intends).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from bench.core.errors import BenchError, shown

MAX_BYTES = 1_000_000
MAX_DEPTH = 40
MAX_NODES = 100_000
_MERGE = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """A document this reader will not load: the problem and its line."""

    def __init__(self, problem: str, node: Node | None = None, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line if line is not None else (node.start_mark.line + 1 if node else None)


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with a nesting limit, duplicate keys refused and a size count."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep", line=line)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: str | None) -> Node:
        node = super().compose_mapping_node(anchor)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE or isinstance(key_node, SequenceNode | MappingNode):
                continue  # merges may be overridden; a list as a key is refused when built
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _Refused(
                    f"duplicate key {shown(key)} (first at line {seen[key]}); valid: each key once",
                    line=line,
                )
            seen[key] = line
        return node

    def get_single_node(self) -> Node | None:
        node = super().get_single_node()
        if node is not None:
            _measure(node, 1, {}, set())
        return node


def _measure(node: Node, depth: int, memo: dict[int, tuple[int, int]], active: set[int]) -> int:
    """Values under ``node`` with aliases expanded; refuses past the limits (the return is
    the size; ``memo`` holds (size, height) of each node measured, by id)."""
    key = id(node)
    if key in memo:
        size, height = memo[key]
        if depth + height > MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep once aliases expand", node)
        return size
    if key in active:
        raise _Refused("an alias refers to a node that contains it (a recursive alias)", node)
    if depth > MAX_DEPTH:
        raise _Refused(f"nested more than {MAX_DEPTH} levels deep once aliases expand", node)
    active.add(key)
    if isinstance(node, SequenceNode):
        children = list(node.value)
    elif isinstance(node, MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    size, height = 1, 0
    for child in children:
        size += _measure(child, depth + 1, memo, active)
        height = max(height, memo[id(child)][1] + 1)
        if size > MAX_NODES:
            raise _Refused(
                f"more than {MAX_NODES:,} values once aliases expand (an alias bomb?); "
                f"valid: at most {MAX_NODES:,}",
                node,
            )
    active.discard(key)
    memo[key] = (size, height)
    return size


def read_text(path: Path, *, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of a file no larger than ``max_bytes``; a BenchError otherwise."""
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise BenchError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    if len(data) > max_bytes:
        raise BenchError(f"{path}: file too large; valid: at most {max_bytes:,} bytes")
    nul = data.find(b"\0")
    if nul >= 0:
        raise BenchError(f"{path}: a binary file (NUL byte at offset {nul}); valid: UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BenchError(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "valid: UTF-8 text"
        ) from None


def load_yaml(text: str, *, source: str) -> Any:
    """Plain data of one YAML document, within the limits above."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except _Refused as e:
        at = f"line {e.line}: " if e.line else ""
        raise BenchError(f"{source}: {at}{e.problem}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BenchError(f"{source}: not valid YAML{at}: {problem}") from None
    finally:
        loader.dispose()
