"""The Atari-100k game table: names, random and human scores, named subsets.

Imports neither torch nor ale-py, so reports run on machines without an emulator.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from bench.core.errors import BenchError, unknown


@dataclass(frozen=True)
class Game:
    name: str  # CamelCase, as in the published tables ("RoadRunner")
    random: float
    human: float

    @property
    def rom_id(self) -> str:
        """ale-py's ROM id ("road_runner")."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()


@cache
def games() -> dict[str, Game]:
    """The 26 Atari-100k games by name, in the table's order."""
    text = resources.files("bench").joinpath("data/atari100k_scores.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {r["game"]: Game(r["game"], float(r["random"]), float(r["human"])) for r in rows}


SUBSETS: dict[str, tuple[str, ...]] = {
    "sem3": ("Assault", "RoadRunner", "Amidar"),  # the games of the SEM3 audio study
    "bednarz3": ("Pong", "CrazyClimber", "Assault"),
}


def subsets() -> dict[str, tuple[str, ...]]:
    """Named subsets of games, including ``atari100k`` (all 26)."""
    return {"atari100k": tuple(games()), **SUBSETS}


def get_game(name: str, *, where: str = "") -> Game:
    """Look up a game by its table name or its ROM id; unknown names suggest the closest."""
    table = games()
    if name in table:
        return table[name]
    by_rom = {g.rom_id: g for g in table.values()}
    by_lower = {g.name.lower(): g for g in table.values()}
    key = name.lower()
    if key in by_rom:
        return by_rom[key]
    if key in by_lower:
        return by_lower[key]
    raise unknown("game", name, table, where=where)


def resolve_games(spec: str | list[str], *, where: str = "") -> list[str]:
    """A subset name or a list of game names (subset names allowed inside) -> game names."""
    items = [spec] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise unknown("game", repr(item), games(), where=where)
        if item in subsets():
            names = subsets()[item]
        else:
            try:
                names = (get_game(item).name,)
            except BenchError:
                choices = [*games(), *(f"{s} (subset)" for s in subsets())]
                raise unknown("game", item, choices, where=where) from None
        out.extend(n for n in names if n not in out)
    return out


def human_normalized(game: str, score: np.ndarray | float) -> np.ndarray | float:
    """(score - random) / (human - random) for ``game``."""
    g = get_game(game)
    return (np.asarray(score, dtype=np.float64) - g.random) / (g.human - g.random)
