"""Audio encoders and their fusion with the image latent, for the value-based agent.

The audio input is the env's audio stack: (B, stack, S) uint8, S = 2,048 samples per agent
step (4 emulator frames x 512; 512 with the ``sem3`` protocol), newest step last, zeros
before an episode's (or life's) first step, silence = 128. The same stack comes from the
env when acting and from replay when learning (the replay rebuilds it from each step's
newest entry), so every encoder here sees identical inputs on both paths.

Two encoders, each a function of the (normalized) stack to a sequence of tokens:
  ``waveform``  SEM3's raw-waveform 1-D CNN: three convs (8, 16, 16 filters; kernel 3,
                VALID; ReLU; max-pool 2) with the stacked steps as input channels;
                tokens = the last conv's time positions (254 of 16 features at S = 2,048);
  ``logmel``    a log-mel spectrogram of each step, computed in torch on the input's device
                (``torch.stft`` and an HTK mel filterbank, as torchaudio's defaults), then a
                small 2-D CNN (3x3 convs of 16 and 32 filters, ReLU, 2x2 max-pool each) with
                the stacked steps as channels; tokens = its (mel, frame) cells.

Three fusions, each giving an "audio part" of C_a channels at the image latent's size
(h x w: 11x11 Impala, 7x7 or 11x11 Nature), which the network concatenates to the
(renormalized) image latent along the channel axis:
  ``channels``    SEM3's: the flattened tokens, a dense layer with ReLU to C_a x h x w,
                  reshaped; the projection then sees image and audio channels together;
  ``projection``  the same audio part, but the projection sees the image channels only and
                  the audio part joins after it (the head's input is the projection's
                  output and the flattened audio part);
  ``attention``   cross-modal attention: each image-latent position (a query) attends over
                  the audio tokens (keys and values, with a fixed sinusoidal position
                  code), and a linear layer maps the result to C_a channels (no ReLU).

Every parameter lives in plain ``nn.Linear``/``nn.Conv1d``/``nn.Conv2d`` layers so that
``agents.networks.initialize`` (Xavier, resets) covers them; nothing is a buffer, since the
networks are built on the meta device (the mel filterbank is made on first use, per device).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

AudioEncoderKind = Literal["waveform", "logmel"]
AudioFusionKind = Literal["channels", "projection", "attention"]
AudioNormalize = Literal["silence", "unit"]
AUDIO_ENCODERS: tuple[str, ...] = get_args(AudioEncoderKind)
AUDIO_FUSIONS: tuple[str, ...] = get_args(AudioFusionKind)

SILENCE = 128  # ale-py's uint8 audio: the zero of the waveform
LOG_MEL_FLOOR = 1e-4  # the log-mel floor: silence maps to 0, a full-scale tone to about 1


@dataclass(frozen=True)
class AudioOptions:
    """How a network hears: the encoder, the fusion and their sizes (``ValueConfig``'s
    ``audio_*`` fields)."""

    encoder: AudioEncoderKind = "waveform"
    fusion: AudioFusionKind = "channels"
    channels: int = 2  # C_a: audio channels of the latent
    spr: bool = True  # SPR predicts (and targets) the audio part too, as SEM3's did
    n_fft: int = 512
    hop: int = 128
    n_mels: int = 40
    sample_rate: int = 30_720
    attention_dim: int = 64
    attention_heads: int = 4


def normalize_audio(x: torch.Tensor, mode: str) -> torch.Tensor:
    """uint8 samples (any shape) as floats: ``silence`` gives (x - 128) / 128, silence 0 and
    the range [-1, 127/128]; ``unit`` gives x / 255 (SEM3's, silence 0.502)."""
    x = x.float()
    if mode == "silence":
        return (x - SILENCE) / SILENCE
    return x / 255.0


# ======================================================================================
# Encoders: (B, stack, S) floats -> (B, T, D) tokens
# ======================================================================================
class WaveformEncoder(nn.Module):
    """SEM3's 1-D CNN: three VALID convs (8, 16, 16 filters, kernel 3), each followed by ReLU
    and a max-pool of 2. The stacked steps are the input channels (SEM3's Keras layout
    (samples, stack) is channels-last). Tokens: (B, L, 16), L = 254 for S = 2,048."""

    def __init__(self, stack: int, samples: int):
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv1d(stack, 8, 3), nn.Conv1d(8, 16, 3), nn.Conv1d(16, 16, 3)]
        )
        length = samples
        for _ in self.convs:
            length = (length - 2) // 2
        if length < 1:
            raise ValueError(f"the waveform encoder needs at least 22 samples, got {samples}")
        self.token_shape = (length, 16)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            a = F.max_pool1d(F.relu(conv(a)), 2)
        return a.transpose(1, 2)


@functools.lru_cache(maxsize=16)
def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, device: str) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) triangular filters on the HTK mel scale from 0 Hz to Nyquist,
    unnormalized (torchaudio's ``melscale_fbanks`` defaults)."""
    freqs = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)

    def mel(f: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    top = float(mel(torch.tensor(sample_rate / 2.0, dtype=torch.float64)))
    points = 700.0 * (10 ** (torch.linspace(0.0, top, n_mels + 2, dtype=torch.float64) / 2595) - 1)
    lower, center, upper = points[:-2], points[1:-1], points[2:]
    rising = (freqs[:, None] - lower[None]) / (center - lower)[None]
    falling = (upper[None] - freqs[:, None]) / (upper - center)[None]
    bank = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return bank.to(dtype=torch.float32, device=device)


def log_mel(
    a: torch.Tensor, *, n_fft: int, hop: int, n_mels: int, sample_rate: int
) -> torch.Tensor:
    """(B, stack, S) normalized waveforms -> (B, stack, n_mels, frames) log-mel power, each
    step on its own (a Hann window, no centering: frames = 1 + (S - n_fft) // hop), scaled
    so that silence is 0 and a full-scale tone about 1."""
    b, stack, samples = a.shape
    window = torch.hann_window(n_fft, device=a.device, dtype=a.dtype)
    spec = torch.stft(
        a.reshape(b * stack, samples),
        n_fft,
        hop_length=hop,
        window=window,
        center=False,
        return_complex=True,
    )
    power = spec.abs().square() / window.sum().square()  # (N, freqs, frames)
    bank = mel_filterbank(n_fft, n_mels, sample_rate, str(a.device)).to(a.dtype)
    mel = torch.einsum("nft,fm->nmt", power, bank)
    scaled = (torch.log(mel + LOG_MEL_FLOOR) - math.log(LOG_MEL_FLOOR)) / -math.log(LOG_MEL_FLOOR)
    return scaled.view(b, stack, n_mels, -1)


class LogMelEncoder(nn.Module):
    """Log-mel spectrogram of each step, then two 3x3 convs (16, 32 filters; SAME; ReLU;
    2x2 max-pool, ceil). Tokens: (B, cells, 32), one per (mel, frame) cell of the output
    ((40, 13) -> (10, 4): 40 cells at n_fft 512, hop 128, 40 mels, S = 2,048)."""

    def __init__(self, stack: int, samples: int, options: AudioOptions):
        super().__init__()
        if not options.n_fft <= samples:
            raise ValueError(f"audio_n_fft ({options.n_fft}) exceeds the {samples} samples")
        self.options = options
        self.convs = nn.ModuleList(
            [nn.Conv2d(stack, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)]
        )
        mels, frames = options.n_mels, 1 + (samples - options.n_fft) // options.hop
        for _ in self.convs:
            mels, frames = math.ceil(mels / 2), math.ceil(frames / 2)
        self.token_shape = (mels * frames, 32)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        o = self.options
        x = log_mel(a, n_fft=o.n_fft, hop=o.hop, n_mels=o.n_mels, sample_rate=o.sample_rate)
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2, ceil_mode=True)
        return x.flatten(2).transpose(1, 2)


# ======================================================================================
# Fusion: the audio part of the latent
# ======================================================================================
def sinusoid_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) fixed position code (Vaswani et al.): sin on even, cos on odd features."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim)
    )
    code = torch.zeros(length, dim, device=device)
    code[:, 0::2] = torch.sin(pos * rate)
    code[:, 1::2] = torch.cos(pos * rate[: dim // 2])
    return code


class CrossModalAttention(nn.Module):
    """Multi-head attention from the image latent's h x w positions (queries) to the audio
    tokens (keys, values), then a linear map to C_a channels: (B, C_a, h, w). No ReLU at
    the end: with as few as 2 output channels a ReLU can silence every position at once
    (a dead audio part, no gradient to the encoder)."""

    def __init__(self, query_dim: int, token_dim: int, options: AudioOptions):
        super().__init__()
        dim, heads = options.attention_dim, options.attention_heads
        if dim % heads:
            raise ValueError(f"audio_attention_dim ({dim}) is not a multiple of the heads")
        self.query = nn.Linear(query_dim, dim)
        self.key = nn.Linear(token_dim, dim)
        self.value = nn.Linear(token_dim, dim)
        self.out = nn.Linear(dim, options.channels)
        self.heads = heads

    def forward(self, latent: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, _, h, w = latent.shape
        tokens = tokens + sinusoid_positions(tokens.shape[1], tokens.shape[2], tokens.device)

        def split(x: torch.Tensor) -> torch.Tensor:  # (B, N, dim) -> (B, heads, N, dim/heads)
            return x.view(b, x.shape[1], self.heads, -1).transpose(1, 2)

        q = split(self.query(latent.flatten(2).transpose(1, 2)))
        attended = F.scaled_dot_product_attention(
            q, split(self.key(tokens)), split(self.value(tokens))
        )
        merged = attended.transpose(1, 2).reshape(b, h * w, -1)
        return self.out(merged).transpose(1, 2).reshape(b, -1, h, w)


class AudioFusion(nn.Module):
    """The network's ``audio_encoder`` group: an encoder and a fusion layer.

    ``forward(latent, audio)``: the image latent (B, C, h, w) and the normalized audio stack
    (B, stack, S) -> the audio part (B, C_a, h, w) of the latent.
    """

    def __init__(
        self, stack: int, samples: int, *, latent: tuple[int, int, int], options: AudioOptions
    ):
        super().__init__()
        channels, height, width = latent
        self.encoder: WaveformEncoder | LogMelEncoder
        if options.encoder == "waveform":
            self.encoder = WaveformEncoder(stack, samples)
        else:
            self.encoder = LogMelEncoder(stack, samples, options)
        count, dim = self.encoder.token_shape
        self.dense: nn.Linear | None = None
        self.attention: CrossModalAttention | None = None
        if options.fusion == "attention":
            self.attention = CrossModalAttention(channels, dim, options)
        else:
            self.dense = nn.Linear(count * dim, options.channels * height * width)
        self.shape = (options.channels, height, width)

    def forward(self, latent: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        tokens = self.encoder(audio)
        if self.attention is not None:
            return self.attention(latent, tokens)
        assert self.dense is not None
        return F.relu(self.dense(tokens.flatten(1))).view(audio.shape[0], *self.shape)
