"""Audio encoders and fusion modes (agents/audio.py) inside the value network: shapes,
gradients, the video-only network when audio is off, the log-mel front end, the resets and
the ``sem3`` preset."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.audio import SILENCE, log_mel, mel_filterbank, normalize_audio
from agents.networks import latent_hw
from agents.protocol import ObsSpec
from agents.registry import get_agent
from agents.testing import drive
from agents.value import BBF, PRESETS, SEM3, build_network, config_diff, parameter_counts
from bench.core.config import override
from bench.core.errors import BenchError
from tests.agents.conftest import TINY

AUDIO = ObsSpec(num_actions=5, audio_shape=(4, 2048))
VIDEO = ObsSpec(num_actions=5)
ENCODERS = ("waveform", "logmel")
FUSIONS = ("channels", "projection", "attention")


def cfg(**changes: object):
    return override(BBF, {**TINY, **changes}, where="test")


def net_of(config, spec=AUDIO, seed: int = 0):
    """The agent's online network (built on the meta device, initialized from the seed)."""
    return get_agent("value").make(config, obs_spec=spec, seed=seed).online


def audio_batch(batch: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return normalize_audio(torch.as_tensor(rng.integers(0, 256, (batch, 4, 2048))), "silence")


def image_batch(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(
        np.random.default_rng(seed).random((batch, 4, 84, 84)), dtype=torch.float32
    )


# -- shapes --------------------------------------------------------------------------------
@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize(("image", "padding"), [("impala", "same"), ("nature", "valid")])
def test_shapes_of_every_encoder_and_fusion(encoder, fusion, image, padding):
    """The audio part has the image latent's real size (11x11 Impala, 7x7 Nature VALID);
    logits, SPR projections and rollouts keep their shapes."""
    c = cfg(encoder=image, padding=padding, audio_encoder=encoder, audio_fusion=fusion)
    net = net_of(c)
    hw = latent_hw(image, padding, 84)
    assert hw == (11 if image == "impala" else 7)
    latent = net.encode(image_batch(3), audio_batch(3))
    assert latent.shape == (3, net.image_channels + 2, hw, hw) == (3, *net.latent_shape)
    assert net.logits(latent).shape == (3, 5, 51)
    spr_dim = 32 + (2 * hw * hw if fusion == "projection" else 0)
    assert net.predict(latent).shape == (3, spr_dim)
    rolled = net.rollout(latent, torch.zeros(3, 2, dtype=torch.int64))
    assert [r.shape for r in rolled] == [latent.shape] * 2
    counts = parameter_counts(c, AUDIO)
    assert counts == {**counts, "total": sum(v for k, v in counts.items() if k != "total")}
    assert sum(p.numel() for p in net.parameters()) == counts["total"]


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("encoder", ENCODERS)
def test_gradients_reach_the_audio_encoder(encoder, fusion):
    net = net_of(cfg(audio_encoder=encoder, audio_fusion=fusion))
    latent = net.encode(image_batch(4), audio_batch(4))
    net.logits(latent).logsumexp(-1).sum().backward()
    for name, p in net.audio_encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("fusion", FUSIONS)
def test_audio_spr_option_decides_whether_spr_sees_the_audio_part(fusion):
    """With audio_spr off, SPR's projection is blind to the audio part of the latent."""
    for spr in (True, False):
        net = net_of(cfg(audio_fusion=fusion, audio_spr=spr))
        latent = net.encode(image_batch(2), audio_batch(2))
        other = latent.clone()
        other[:, net.image_channels :] += 1.0
        same = torch.equal(net.project(latent), net.project(other))
        assert same is not spr


# -- audio off: exactly the video-only agent -------------------------------------------------
@pytest.mark.parametrize("preset", ["bbf", "sem3"])
def test_audio_off_is_exactly_the_video_only_network(preset):
    """Without audio in the obs spec (protocol audio off), or with audio_channels 0, the
    network is the video-only one: the same parameters, counts and outputs for a seed."""
    config = override(PRESETS[preset], TINY, where="test")
    video = net_of(config, VIDEO, seed=3)
    ignoring = net_of(dataclasses.replace(config, audio_channels=0), AUDIO, seed=3)
    base = net_of(override(BBF, TINY, where="test"), VIDEO, seed=3)
    assert video.audio_encoder is None and ignoring.audio_encoder is None
    for other in (ignoring, base):
        state, other_state = video.state_dict(), other.state_dict()
        assert list(state) == list(other_state)
        assert all(torch.equal(state[k], other_state[k]) for k in state)
    assert parameter_counts(config, VIDEO) == parameter_counts(
        override(BBF, TINY, where="t"), VIDEO
    )
    image = image_batch(2)
    torch.testing.assert_close(video.logits(video.encode(image)), base.logits(base.encode(image)))
    with_audio = parameter_counts(config, AUDIO)
    assert with_audio["total"] > parameter_counts(config, VIDEO)["total"]


# -- the log-mel front end -------------------------------------------------------------------
def test_log_mel_of_silence_is_zero_and_a_tone_peaks_at_its_mel_band():
    rate, n_fft, mels = 30_720, 512, 40
    bank = mel_filterbank(n_fft, mels, rate, "cpu")
    assert (bank.sum(0) > 0).all()  # no empty filter at the default sizes
    silence = normalize_audio(torch.full((1, 4, 2048), SILENCE), "silence")
    out = log_mel(silence, n_fft=n_fft, hop=128, n_mels=mels, sample_rate=rate)
    assert out.shape == (1, 4, mels, 13) and torch.equal(out, torch.zeros_like(out))
    t = torch.arange(2048) / rate
    for freq in (300.0, 2_000.0, 9_000.0):
        tone = (0.8 * torch.sin(2 * math.pi * freq * t)).expand(1, 4, -1)
        spec = log_mel(tone, n_fft=n_fft, hop=128, n_mels=mels, sample_rate=rate)
        peak = int(spec[0, 0].mean(-1).argmax())
        expected = int(bank[round(freq / (rate / n_fft))].argmax())
        assert abs(peak - expected) <= 1, freq
        assert 0.5 < float(spec.max()) < 1.2  # a loud tone is near 1 on the scaled log axis


def test_normalization_centres_silence():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8)
    assert normalize_audio(x, "silence").tolist() == [-1.0, 0.0, 127 / 128]
    assert normalize_audio(x, "unit").tolist() == pytest.approx([0.0, 128 / 255, 1.0])


def test_log_mel_frame_too_long_for_the_samples_is_refused():
    with pytest.raises(ValueError, match="audio_n_fft"):
        build_network(
            cfg(audio_encoder="logmel", audio_n_fft=1024), ObsSpec(5, audio_shape=(4, 512))
        )


def test_config_ranges():
    with pytest.raises(BenchError, match="audio_hop"):
        cfg(audio_hop=1024)
    with pytest.raises(BenchError, match="audio_attention_heads"):
        cfg(audio_attention_dim=64, audio_attention_heads=5)
    with pytest.raises(BenchError, match="audio_reset"):
        cfg(reset_shrink_groups=("encoder", "transition_model"))
    assert cfg(reset_shrink_groups=("encoder",), audio_reset="keep").audio_reset == "keep"


# -- resets -------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "moved"), [("shrink_perturb", True), ("keep", False)])
def test_audio_reset_option(mode, moved):
    agent = get_agent("value").make(cfg(audio_reset=mode), obs_spec=AUDIO, seed=0)
    before = {k: v.clone() for k, v in agent.online.state_dict().items()}
    agent._reset()
    after = agent.online.state_dict()
    audio = [k for k in before if k.startswith("audio_encoder.") and k.endswith("weight")]
    assert audio and all(torch.equal(before[k], after[k]) is not moved for k in audio)
    assert not torch.equal(
        before["encoder.stages.0.conv.weight"], after["encoder.stages.0.conv.weight"]
    )


# -- the sem3 preset --------------------------------------------------------------------------
def test_sem3_preset_is_bbf_rr2_with_sem3s_audio_model():
    assert set(config_diff(BBF, SEM3)) == {"audio_normalize"}
    assert SEM3.replay_ratio == 2.0 and SEM3.audio_encoder == "waveform"
    assert SEM3.audio_fusion == "channels" and SEM3.audio_spr and SEM3.audio_channels == 2
    spec = ObsSpec(num_actions=18, audio_shape=(4, 2048))
    with torch.device("meta"):
        net = build_network(SEM3, spec)
    assert net.latent_shape == (130, 11, 11)  # SEM3's 9x9 was its VALID max-pool bug
    counts = parameter_counts(SEM3, spec)
    convs = (4 * 3 + 1) * 8 + (8 * 3 + 1) * 16 + (16 * 3 + 1) * 16
    assert counts["audio_encoder"] == convs + (16 * 254 + 1) * 2 * 11 * 11
    # The agent divides the samples by 255, as SEM3's process_inputs did.
    agent = get_agent("value").make(override(SEM3, TINY, where="test"), obs_spec=AUDIO, seed=0)
    x = agent._audio(np.full((1, 4, 2048), SILENCE, np.uint8))
    assert torch.allclose(x, torch.full_like(x, 128 / 255))


def test_sem3_table_in_the_readme_matches_the_preset():
    text = (Path(__file__).parents[2] / "agents" / "README.md").read_text()
    header = "| field | `sem3` | SEM3's code | kept or fixed |"
    rows = {}
    for line in text[text.index(header) :].splitlines()[2:]:
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1]
    assert rows, "the SEM3 table is empty"
    for name, value in rows.items():
        actual = getattr(SEM3, name)
        shown = "+".join(actual) if isinstance(actual, tuple) else str(actual)
        shown = f"{actual:g}" if isinstance(actual, float) else shown
        assert value == shown, name


def test_attention_output_depends_on_where_the_query_is():
    """Cross-modal attention: different image positions can read different audio."""
    net = net_of(cfg(audio_fusion="attention"))
    latent = net.encode(image_batch(1), audio_batch(1))
    part = latent[0, net.image_channels :].flatten(1)  # (C_a, h*w)
    assert part.std(dim=1).max() > 0


@pytest.mark.parametrize(
    "changes",
    [
        {"audio_encoder": "logmel", "audio_fusion": "attention"},
        {"audio_encoder": "waveform", "audio_fusion": "projection", "audio_spr": False},
    ],
)
def test_a_gradient_step_with_audio_moves_the_audio_encoder(changes):
    """One learning step from replay (C51 and SPR losses, targets from the target network)
    with each fusion path: finite losses, and the audio encoder's weights move."""
    config = cfg(learning_starts=10**6, spr_steps=2, **changes)
    agent = get_agent("value").make(config, obs_spec=AUDIO, seed=0)
    drive(agent, AUDIO, np.random.default_rng(0), 16)
    before = {k: v.clone() for k, v in agent.online.audio_encoder.state_dict().items()}
    agent._train(1)
    assert math.isfinite(agent.last["loss"]) and agent.last["spr_loss"] > 0
    after = agent.online.audio_encoder.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
