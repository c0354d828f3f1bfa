"""Which games make informative sound: the table of ``bench games --audio`` and its Markdown.

Each row summarizes one game's random-policy recording (``bench.env.audio_stats``), given
here as plain arrays so that this module needs no emulator: the fraction of steps with any
sound, how often a sound starts (onsets, ``bench.stats.events.onsets``), and how strongly
onsets precede rewards and life losses within ``within`` agent steps: the lift
P(event within | onset) / P(event within) and the mutual information in bits between
"onset at t" and "event within the window". A lift of 1 and an information of 0 mean the
sound's onsets say nothing about what comes next (under this policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.stats.events import onsets, precedence

GAME_AUDIO_COLUMNS = (
    "game", "steps", "episodes", "nonsilent_fraction", "onset_rate", "reward_steps",
    "p_reward", "p_reward_given_onset", "reward_lift", "reward_mi_bits",
    "reward_same_step_lift", "life_losses", "p_life_loss", "p_life_loss_given_onset",
    "life_loss_lift", "life_loss_mi_bits", "life_loss_same_step_lift",
)  # fmt: skip


@dataclass(frozen=True)
class GameAudioOptions:
    within: int = 5  # agent steps after an onset (20 frames, a third of a second)
    onset_ratio: float = 2.0  # loudness rise that makes an onset (6 dB)


def game_audio_row(
    game: str,
    recording: dict[str, np.ndarray],
    options: GameAudioOptions = GameAudioOptions(),
) -> dict[str, Any]:
    """One row of ``GAME_AUDIO_COLUMNS``; ``recording`` maps loudness, reward, life_loss and
    start to (n_steps,) arrays (``AudioTrace``'s fields)."""
    loud = np.asarray(recording["loudness"], dtype=np.float64)
    start = np.asarray(recording["start"], dtype=bool)
    rewarded = np.asarray(recording["reward"]) != 0
    lost = np.asarray(recording["life_loss"], dtype=bool)
    onset = onsets(loud, ratio=options.onset_ratio, starts=start)
    row: dict[str, Any] = {
        "game": game,
        "steps": len(loud),
        "episodes": int(np.count_nonzero(start)),
        "nonsilent_fraction": float(np.mean(loud > 0)),
        "onset_rate": float(np.mean(onset)),
        "reward_steps": int(np.count_nonzero(rewarded)),
        "life_losses": int(np.count_nonzero(lost)),
    }
    for name, events in (("reward", rewarded), ("life_loss", lost)):
        p = precedence(onset, events, options.within, starts=start)
        row |= {
            f"p_{name}": p.p_event,
            f"p_{name}_given_onset": p.p_event_given_onset,
            f"{name}_lift": p.lift,
            f"{name}_mi_bits": p.mutual_information,
            f"{name}_same_step_lift": p.same_step_lift,
        }
    return {c: row[c] for c in GAME_AUDIO_COLUMNS}


def _num(x: float, digits: int) -> str:
    return "–" if not np.isfinite(x) else f"{x:.{digits}f}"


def game_audio_markdown(table: pd.DataFrame, options: GameAudioOptions, *, seed: int) -> str:
    """The table as Markdown, with a header saying how it was measured."""
    header = [
        "Game", "Steps", "Non-silent", "Onsets/step", "P(reward)", "Lift (reward)",
        "MI (reward, mbit)", "Same-step lift (reward)", "P(life loss)", "Lift (life loss)",
        "MI (life loss, mbit)", "Same-step lift (life loss)",
    ]  # fmt: skip
    lines = [
        f"Random policy (uniform over the minimal action set, seed {seed}); audio 'on' "
        f"(4 x 512 samples per agent step); an onset is a step at least "
        f"{options.onset_ratio:g}x as loud (RMS around 128) as the step before; P(event): "
        f"an event in the next {options.within} agent steps; lift = P(event | onset) / "
        "P(event) (the event strictly after the onset's step); MI in millibits between "
        "'onset' and 'event within the window'; same-step lift = P(event in the onset's own "
        "step | onset) / P(event in a step): the sound marks the event; '–': no onset or no "
        "event.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for r in table.itertuples():
        cells = [
            str(r.game), str(r.steps), f"{r.nonsilent_fraction:.3f}", f"{r.onset_rate:.3f}",
            _num(r.p_reward, 3), _num(r.reward_lift, 2), _num(1000 * r.reward_mi_bits, 1),
            _num(r.reward_same_step_lift, 2), _num(r.p_life_loss, 3), _num(r.life_loss_lift, 2),
            _num(1000 * r.life_loss_mi_bits, 1), _num(r.life_loss_same_step_lift, 2),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
