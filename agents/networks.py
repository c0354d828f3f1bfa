"""Networks of the value-based agent: encoders, audio encoder, projection, SPR, heads.

Layouts are PyTorch's (N, C, H, W). Parameters live in six top-level modules whose names
are the reset and parameter-count groups: ``encoder``, ``audio_encoder``, ``projection``,
``transition_model``, ``predictor``, ``head``. Padding follows TensorFlow/Flax ``SAME``
where the reference code uses it (the extra pixel goes right/bottom), because a ``VALID``
max-pool shrinks BBF's latent from 11x11 to 9x9 (a bug of several ports, SEM3's included).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from agents.audio import AudioFusion, AudioOptions

# Per-sample factorized noise of each noisy layer, by module name: (f(eps_in), f(eps_out)).
Noise = dict[str, tuple[torch.Tensor, torch.Tensor]]

MODULE_GROUPS = (
    "encoder",
    "audio_encoder",
    "projection",
    "transition_model",
    "predictor",
    "head",
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF's SAME for one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    top, bottom = same_padding(x.shape[-2], kernel, stride)
    left, right = same_padding(x.shape[-1], kernel, stride)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def latent_hw(encoder: str, padding: str, size: int) -> int:
    """Spatial size of the encoder's latent along one axis of ``size`` pixels."""
    if encoder == "impala":  # three 3x3/2 max-pools
        for _ in range(3):
            size = math.ceil(size / 2) if padding == "same" else (size - 3) // 2 + 1
        return size
    for kernel, stride in ((8, 4), (4, 2), (3, 1)):
        size = math.ceil(size / stride) if padding == "same" else (size - kernel) // stride + 1
    return size


def renormalize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-sample min-max scaling over all features (MuZero/SPR), shape kept."""
    flat = x.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    return ((flat - lo) / (hi - lo + eps)).view_as(x)


class SameConv2d(nn.Conv2d):
    """Conv2d with TF SAME or VALID padding."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, *, padding: str):
        super().__init__(cin, cout, kernel, stride=stride, padding=0)
        self.same = padding == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            x = pad_same(x, self.kernel_size[0], self.stride[0])
        return super().forward(x)


class NatureEncoder(nn.Module):
    """DQN's 3-layer CNN (32-64-64 x width scale), ReLU after each conv."""

    def __init__(self, in_channels: int, *, width_scale: float = 1.0, padding: str = "same"):
        super().__init__()
        dims = [int(d * width_scale) for d in (32, 64, 64)]
        self.convs = nn.ModuleList(
            [
                SameConv2d(in_channels, dims[0], 8, 4, padding=padding),
                SameConv2d(dims[0], dims[1], 4, 2, padding=padding),
                SameConv2d(dims[1], dims[2], 3, 1, padding=padding),
            ]
        )
        self.out_channels = dims[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
        return x


class ResidualBlock(nn.ModuleList):
    """x + conv(relu(conv(relu(x)))). A list of its two convs, so that their parameters are
    named ``<block>.0`` and ``<block>.1``."""

    def __init__(self, channels: int):
        super().__init__(
            [
                SameConv2d(channels, channels, 3, 1, padding="same"),
                SameConv2d(channels, channels, 3, 1, padding="same"),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = self
        return x + second(F.relu(first(F.relu(x))))


class ResidualStage(nn.Module):
    """Impala stage: conv 3x3, max-pool 3x3/2 (SAME), two residual blocks."""

    def __init__(self, cin: int, cout: int, *, num_blocks: int = 2, pool_padding: str = "same"):
        super().__init__()
        self.conv = SameConv2d(cin, cout, 3, 1, padding="same")
        self.blocks = nn.ModuleList(ResidualBlock(cout) for _ in range(num_blocks))
        self.pool_same = pool_padding == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.pool_same:
            x = pad_same(x, 3, 2, value=float("-inf"))
        x = F.max_pool2d(x, 3, 2)
        for block in self.blocks:
            x = block(x)
        return x


class ImpalaEncoder(nn.Module):
    """Impala CNN (16, 32, 32) x width scale, ReLU at the end."""

    def __init__(self, in_channels: int, *, width_scale: float = 1.0, pool_padding: str = "same"):
        super().__init__()
        dims = [int(d * width_scale) for d in (16, 32, 32)]
        stages = []
        cin = in_channels
        for d in dims:
            stages.append(ResidualStage(cin, d, pool_padding=pool_padding))
            cin = d
        self.stages = nn.ModuleList(stages)
        self.out_channels = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return F.relu(x)


class NoisyLinear(nn.Module):
    """Factorized Gaussian noisy linear layer (Fortunato et al.), sigma init sigma0/sqrt(in).

    Noise is drawn per sample (as the reference's per-example keys do) from a generator the
    caller passes, so runs are reproducible; ``noise=None`` gives the mean layer.
    """

    def __init__(self, in_features: int, out_features: int, *, sigma0: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features))
        self.bias_sigma = nn.Parameter(torch.empty(out_features))
        self.sigma0 = sigma0
        self.in_features = in_features
        self.out_features = out_features

    def forward(
        self, x: torch.Tensor, noise: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        if noise is None:
            return out
        f_in, f_out = noise  # (B, in), (B, out), already passed through f(x) = sign(x)sqrt|x|
        return out + F.linear(x * f_in, self.weight_sigma) * f_out + self.bias_sigma * f_out


def _f(x: torch.Tensor) -> torch.Tensor:
    return x.sign() * x.abs().sqrt()


class Head(nn.Module):
    """Dueling or plain head giving (B, actions, atoms) logits (atoms = 1 for scalar Q)."""

    def __init__(
        self,
        hidden: int,
        num_actions: int,
        num_atoms: int,
        *,
        dueling: bool,
        noisy: bool,
        sigma0: float,
    ):
        super().__init__()

        def layer(n_out: int) -> nn.Module:
            if noisy:
                return NoisyLinear(hidden, n_out, sigma0=sigma0)
            return nn.Linear(hidden, n_out)

        self.advantage = layer(num_actions * num_atoms)
        self.value = layer(num_atoms) if dueling else None
        self.num_actions = num_actions
        self.num_atoms = num_atoms

    def forward(self, x: torch.Tensor, noise: Noise | None = None) -> torch.Tensor:
        adv = _apply(self.advantage, x, noise, "head.advantage")
        adv = adv.view(-1, self.num_actions, self.num_atoms)
        if self.value is None:
            return adv
        value = _apply(self.value, x, noise, "head.value").view(-1, 1, self.num_atoms)
        return value + adv - adv.mean(dim=1, keepdim=True)


def _apply(layer: nn.Module, x: torch.Tensor, noise: Noise | None, name: str) -> torch.Tensor:
    if isinstance(layer, NoisyLinear):
        return layer(x, None if noise is None else noise[name])
    return layer(x)


class TransitionModel(nn.Module):
    """SPR's convolutional transition model: action one-hot broadcast over H x W, concat,
    conv 3x3 + ReLU, conv 3x3 + ReLU, renormalize. BatchNorm is optional (SPR's paper code
    had it; BBF has none). Shared weights across steps."""

    def __init__(self, channels: int, num_actions: int, *, batchnorm: bool, renorm: bool):
        super().__init__()
        self.conv1 = SameConv2d(channels + num_actions, channels, 3, 1, padding="same")
        self.conv2 = SameConv2d(channels, channels, 3, 1, padding="same")
        self.bn1 = nn.BatchNorm2d(channels) if batchnorm else None
        self.bn2 = nn.BatchNorm2d(channels) if batchnorm else None
        self.num_actions = num_actions
        self.renorm = renorm

    def forward(self, latent: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(action, self.num_actions).to(latent.dtype)
        onehot = onehot[:, :, None, None].expand(-1, -1, *latent.shape[-2:])
        x = self.conv1(torch.cat([latent, onehot], dim=1))
        if self.bn1 is not None:
            x = self.bn1(x)
        x = self.conv2(F.relu(x))
        if self.bn2 is not None:
            x = self.bn2(x)
        x = F.relu(x)
        return renormalize(x) if self.renorm else x


class ValueNetwork(nn.Module):
    """Encoder (+ audio) -> latent -> projection -> head, with SPR's transition model and
    predictor when ``spr`` is on. All shapes are fixed at construction."""

    def __init__(
        self,
        *,
        num_actions: int,
        image_shape: tuple[int, ...],
        audio_shape: tuple[int, ...] | None,
        encoder: str,
        width_scale: float,
        padding: str,
        hidden_dim: int,
        renorm: bool,
        dueling: bool,
        num_atoms: int,
        noisy: bool,
        sigma0: float,
        spr: bool,
        transition_batchnorm: bool,
        audio_channels: int,
        audio: AudioOptions | None = None,
    ):
        super().__init__()
        stack, height, width = image_shape
        self.encoder: ImpalaEncoder | NatureEncoder
        if encoder == "impala":
            self.encoder = ImpalaEncoder(stack, width_scale=width_scale, pool_padding=padding)
        else:
            self.encoder = NatureEncoder(stack, width_scale=width_scale, padding=padding)
        channels = self.encoder.out_channels
        lh, lw = latent_hw(encoder, padding, height), latent_hw(encoder, padding, width)
        self.image_channels = int(channels)
        self.audio_encoder = None
        options = dataclasses.replace(audio or AudioOptions(), channels=audio_channels)
        if audio_shape is not None and audio_channels > 0:
            # The audio encoder and its fusion (agents/audio.py): the audio part of the
            # latent, C_a channels after the image's.
            self.audio_encoder = AudioFusion(
                audio_shape[0], audio_shape[1], latent=(channels, lh, lw), options=options
            )
            channels += audio_channels
        self.latent_shape = (int(channels), int(lh), int(lw))
        flat, head_in, spr_dim = self._widths(options, hidden_dim)
        self.projection = (
            NoisyLinear(flat, hidden_dim, sigma0=sigma0) if noisy else nn.Linear(flat, hidden_dim)
        )
        self.transition_model = (
            TransitionModel(channels, num_actions, batchnorm=transition_batchnorm, renorm=renorm)
            if spr
            else None
        )
        self.predictor = nn.Linear(spr_dim, spr_dim) if spr else None
        self.head = Head(
            head_in, num_actions, num_atoms, dueling=dueling, noisy=noisy, sigma0=sigma0
        )
        self.renorm = renorm
        self.noisy = noisy

    def _widths(self, options: AudioOptions, hidden: int) -> tuple[int, int, int]:
        """The inputs of the projection and the head, and the SPR width. With the
        "projection" fusion the projection sees the image channels; the audio part joins
        after it, on the Q path (the head's input) and, with audio SPR, on the SPR path."""
        channels, lh, lw = self.latent_shape
        self.audio_after_projection = (
            self.audio_encoder is not None and options.fusion == "projection"
        )
        self.audio_spr = self.audio_encoder is None or options.spr
        if not self.audio_after_projection:
            return channels * lh * lw, hidden, hidden
        audio_flat = (channels - self.image_channels) * lh * lw
        spr_dim = hidden + (audio_flat if options.spr else 0)
        return self.image_channels * lh * lw, hidden + audio_flat, spr_dim

    # -- pieces -------------------------------------------------------------------------
    def encode(self, image: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        """(B, stack, H, W) floats in [0, 1] (and (B, stack, S)) -> (B, C, h, w) latent."""
        latent = self.encoder(image)
        if self.renorm:
            latent = renormalize(latent)
        if self.audio_encoder is not None:
            if audio is None:
                raise ValueError("this network was built with audio; pass the audio input")
            # SEM3 renormalizes the image latent only; the audio channels join after.
            latent = torch.cat([latent, self.audio_encoder(latent, audio)], dim=1)
        return latent

    def logits(self, latent: torch.Tensor, noise: Noise | None = None) -> torch.Tensor:
        """(B, actions, atoms): the projection, ReLU, then the head (with the "projection"
        fusion, the head sees the projection's output and the audio part)."""
        if not self.audio_after_projection:
            x = F.relu(_apply(self.projection, latent.flatten(1), noise, "projection"))
            return self.head(x, noise)
        image, audio = latent[:, : self.image_channels], latent[:, self.image_channels :]
        x = F.relu(_apply(self.projection, image.flatten(1), noise, "projection"))
        return self.head(torch.cat([x, audio.flatten(1)], dim=1), noise)

    def project(self, latent: torch.Tensor) -> torch.Tensor:
        """SPR's path: the projection without ReLU and without noise. Without audio SPR
        (``AudioOptions.spr``) the audio part is left out of it: zeroed, or (with the
        "projection" fusion) not appended."""
        image = latent[:, : self.image_channels]
        if self.audio_after_projection:
            out = _apply(self.projection, image.flatten(1), None, "projection")
            if self.audio_spr:
                out = torch.cat([out, latent[:, self.image_channels :].flatten(1)], dim=1)
            return out
        if not self.audio_spr:
            latent = torch.cat([image, torch.zeros_like(latent[:, self.image_channels :])], 1)
        return _apply(self.projection, latent.flatten(1), None, "projection")

    def predict(self, latent: torch.Tensor) -> torch.Tensor:
        if self.predictor is None:
            raise ValueError("this network was built without SPR: it has no predictor")
        return self.predictor(self.project(latent))

    def rollout(self, latent: torch.Tensor, actions: torch.Tensor) -> list[torch.Tensor]:
        """Latents after each of actions[:, k], k = 0..K-1."""
        if self.transition_model is None:
            raise ValueError("this network was built without SPR: it has no transition model")
        out = []
        for k in range(actions.shape[1]):
            latent = self.transition_model(latent, actions[:, k])
            out.append(latent)
        return out

    # -- noise --------------------------------------------------------------------------
    def noisy_layers(self) -> dict[str, NoisyLinear]:
        return {name: m for name, m in self.named_modules() if isinstance(m, NoisyLinear)}

    def sample_noise(
        self,
        batch: int,
        generator: torch.Generator,
        device: torch.device,
        *,
        keys: str = "independent",
    ) -> Noise | None:
        """Factorized noise for every noisy layer, ``batch`` rows (1 broadcasts one draw over
        a batch); None without noisy nets.

        ``keys="independent"``: each layer's input and output factors are their own draws.
        ``keys="by_size"``: one draw per vector length, shared by every layer and both
        roles, as Dopamine's 2021 NoisyNetwork drew them (every layer got the same JAX key,
        and the input and output factors came from that one key): e.g. the head layers'
        input factors equal each other and the hidden layer's output factor.
        """
        if not self.noisy:
            return None
        noise: Noise = {}
        drawn: dict[int, torch.Tensor] = {}

        def draw(size: int) -> torch.Tensor:
            if keys == "independent" or size not in drawn:
                drawn[size] = _f(torch.randn(batch, size, generator=generator)).to(device)
            return drawn[size]

        for name, layer in self.noisy_layers().items():
            f_in = draw(layer.in_features)
            noise[name] = (f_in, draw(layer.out_features))
        return noise


def group_of(param_name: str) -> str:
    return param_name.split(".", 1)[0]


def count_parameters(net: nn.Module) -> dict[str, int]:
    """Parameters per module group (groups absent from this network are left out)."""
    counts: dict[str, int] = {}
    for name, p in net.named_parameters():
        counts[group_of(name)] = counts.get(group_of(name), 0) + p.numel()
    return {g: counts[g] for g in MODULE_GROUPS if g in counts}


@torch.no_grad()
def initialize(
    net: nn.Module,
    generator: torch.Generator,
    *,
    scheme: str,
    groups: Iterable[str] | None = None,
    noisy_init: str = "scheme",
) -> None:
    """(Re)initialize parameters in place from ``generator`` (on CPU, then copied).

    ``xavier_uniform``: Xavier-uniform kernels, zero biases, as the reference's Flax layers;
    ``torch_default``: PyTorch's own default (Kaiming-uniform a=sqrt(5)), kept as an
    ablation because several ports use it silently. Noisy layers: sigma = sigma0 /
    sqrt(fan_in); mu as the scheme says (``noisy_init="scheme"``), or weight and bias
    uniform in +-1/sqrt(fan_in) (``"fortunato"``: Fortunato et al. 3.2, Dopamine's
    NoisyNetwork). BatchNorm: weight 1, bias 0, running stats reset.
    """
    wanted = None if groups is None else set(groups)
    for mod_name, module in net.named_modules():
        group = mod_name.split(".", 1)[0]
        if wanted is not None and group not in wanted:
            continue
        if isinstance(module, NoisyLinear):
            mu_scheme = "fortunato" if noisy_init == "fortunato" else scheme
            _init_weight(module.weight, module.bias, generator, mu_scheme)
            module.weight_sigma.fill_(module.sigma0 / math.sqrt(module.in_features))
            module.bias_sigma.fill_(module.sigma0 / math.sqrt(module.in_features))
        elif isinstance(module, nn.Conv1d | nn.Conv2d | nn.Linear):
            _init_weight(module.weight, module.bias, generator, scheme)
        elif isinstance(module, nn.BatchNorm2d):
            module.reset_parameters()


def _init_weight(
    weight: torch.Tensor, bias: torch.Tensor | None, gen: torch.Generator, scheme: str
) -> None:
    fan_out, fan_in = weight.shape[0], weight.shape[1]
    receptive = weight[0, 0].numel()
    fan_in, fan_out = fan_in * receptive, fan_out * receptive
    if scheme == "xavier_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        b_bound = 0.0
    else:  # PyTorch's default: kaiming_uniform(a=sqrt(5)) and uniform(+-1/sqrt(fan_in)) bias,
        # which are also Fortunato et al.'s noisy-layer mu: both uniform(+-1/sqrt(fan_in))
        bound = 1.0 / math.sqrt(fan_in)
        b_bound = 1.0 / math.sqrt(fan_in)
    w = (torch.rand(weight.shape, generator=gen, dtype=torch.float32) * 2 - 1) * bound
    weight.copy_(w.to(weight.device))
    if bias is not None:
        if b_bound == 0.0:
            bias.zero_()
        else:
            b = (torch.rand(bias.shape, generator=gen, dtype=torch.float32) * 2 - 1) * b_bound
            bias.copy_(b.to(bias.device))
