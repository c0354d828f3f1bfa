"""Networks of the value-based agent: encoders, audio encoder, projection, SPR, heads.

Layouts are PyTorch's (N, C, H, W). Parameters live in top-level modules whose names are
the reset and parameter-count groups: ``encoder``, ``audio_encoder``, ``projection`` (a
dense layer, or a soft-MoE over tokens: agents/moe.py), ``transition_model``,
``predictor``, ``head``, ``sequence_model`` (the masked contrastive transformer).
Padding follows TensorFlow/Flax ``SAME`` where the reference code uses it (the extra pixel
goes right/bottom), because a ``VALID`` max-pool shrinks BBF's latent from 11x11 to 9x9 (a
bug of several ports, SEM3's included).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from agents.audio import AudioFusion, AudioOptions
from agents.contrastive import MaskedSequenceModel
from agents.moe import MoESpec, SoftMoEProjection

# Per-sample factorized noise of each noisy layer, by module name: (f(eps_in), f(eps_out)).
Noise = dict[str, tuple[torch.Tensor, torch.Tensor]]

MODULE_GROUPS = (
    "encoder",
    "audio_encoder",
    "projection",
    "transition_model",
    "predictor",
    "head",
    "sequence_model",  # the masked contrastive objective's transformer (agents/contrastive.py)
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

    def __init__(
        self,
        in_channels: int,
        *,
        width_scale: float = 1.0,
        pool_padding: str = "same",
        num_blocks: int = 2,
    ):
        super().__init__()
        dims = [int(d * width_scale) for d in (16, 32, 32)]
        stages = []
        cin = in_channels
        for d in dims:
            stages.append(ResidualStage(cin, d, num_blocks=num_blocks, pool_padding=pool_padding))
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
            return noisy_or_linear(hidden, n_out, noisy=noisy, sigma0=sigma0)

        self.advantage = layer(num_actions * num_atoms)
        self.value = layer(num_atoms) if dueling else None
        self.num_actions = num_actions
        self.num_atoms = num_atoms

    def forward(
        self, x: torch.Tensor, noise: Noise | None = None, value_x: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``value_x``: the value stream's own input (SPR's per-stream hidden layers);
        None gives both streams ``x``."""
        adv = _apply(self.advantage, x, noise, "head.advantage")
        adv = adv.view(-1, self.num_actions, self.num_atoms)
        if self.value is None:
            return adv
        v_in = x if value_x is None else value_x
        value = _apply(self.value, v_in, noise, "head.value").view(-1, 1, self.num_atoms)
        return value + adv - adv.mean(dim=1, keepdim=True)


def _apply(layer: nn.Module, x: torch.Tensor, noise: Noise | None, name: str) -> torch.Tensor:
    if isinstance(layer, NoisyLinear):
        return layer(x, None if noise is None else noise[name])
    return layer(x)


def noisy_or_linear(n_in: int, n_out: int, *, noisy: bool, sigma0: float) -> nn.Module:
    return NoisyLinear(n_in, n_out, sigma0=sigma0) if noisy else nn.Linear(n_in, n_out)


class StreamProjection(nn.Module):
    """SPR's dueling head's hidden layers, one per stream: value and advantage, each
    flat -> hidden (mila-iqia/spr models.py:607-629). The SPR projection is their
    concatenation before ReLU and noise (2 x hidden; its QL1Head, models.py:656-687)."""

    def __init__(self, n_in: int, hidden: int, *, noisy: bool, sigma0: float):
        super().__init__()
        self.value = noisy_or_linear(n_in, hidden, noisy=noisy, sigma0=sigma0)
        self.advantage = noisy_or_linear(n_in, hidden, noisy=noisy, sigma0=sigma0)


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged, with the gradient flowing back through it multiplied by ``scale``
    (SPR's dueling head scales what it passes to the encoder by 2^-1/2)."""
    if scale == 1.0 or not x.requires_grad:
        return x
    x = x.view_as(x)  # a node of its own: only this path's gradient is scaled
    x.register_hook(lambda g: g * scale)
    return x


class TransitionModel(nn.Module):
    """SPR's convolutional transition model: action one-hot broadcast over H x W, concat,
    conv 3x3 + ReLU, conv 3x3 + ReLU, renormalize. BatchNorm is optional (SPR's paper code
    had it; BBF has none). ``norm_order`` "conv_bn_relu": BN after each conv, before its
    ReLU; "conv_relu_bn": SPR's conv, ReLU, BN, conv, ReLU (one BN, models.py:927-934).
    Shared weights across steps."""

    def __init__(
        self,
        channels: int,
        num_actions: int,
        *,
        batchnorm: bool,
        renorm: bool,
        norm_order: str = "conv_bn_relu",
    ):
        super().__init__()
        self.conv1 = SameConv2d(channels + num_actions, channels, 3, 1, padding="same")
        self.conv2 = SameConv2d(channels, channels, 3, 1, padding="same")
        self.relu_first = norm_order == "conv_relu_bn"
        self.bn1 = nn.BatchNorm2d(channels) if batchnorm else None
        self.bn2 = nn.BatchNorm2d(channels) if batchnorm and not self.relu_first else None
        self.num_actions = num_actions
        self.renorm = renorm

    def forward(self, latent: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(action, self.num_actions).to(latent.dtype)
        onehot = onehot[:, :, None, None].expand(-1, -1, *latent.shape[-2:])
        x = self.conv1(torch.cat([latent, onehot], dim=1))
        if self.relu_first:
            x = F.relu(x)
            if self.bn1 is not None:
                x = self.bn1(x)
            x = self.conv2(x)
        else:
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
        head_structure: str = "shared",
        head_grad_scale: float = 1.0,
        transition_norm_order: str = "conv_bn_relu",
        impala_blocks: int = 2,
        moe: MoESpec | None = None,
        sequence_model: tuple[int, int, int] | None = None,  # (length, depth, width)
        audio: AudioOptions | None = None,
    ):
        super().__init__()
        options = dataclasses.replace(audio or AudioOptions(), channels=audio_channels)
        encoders = (encoder, image_shape, audio_shape, width_scale, padding)
        channels, lh, lw = self._encoders(*encoders, audio=options, impala_blocks=impala_blocks)
        self.latent_shape = (int(channels), int(lh), int(lw))
        audio_flat = self._audio_fusion(options)
        # "shared": one hidden layer feeds both streams and is SPR's projection (BBF);
        # "streams": a hidden layer per stream, SPR's projection their concatenation.
        streams = head_structure == "streams"
        seen = (self.projected_channels, lh, lw)  # what the projection sees
        self.projection: nn.Module = (
            StreamProjection(math.prod(seen), hidden_dim, noisy=noisy, sigma0=sigma0)
            if streams
            else _projection(seen, hidden_dim, noisy, sigma0, moe)
        )
        transition = dict(batchnorm=transition_batchnorm, renorm=renorm)
        self.transition_model = (
            TransitionModel(channels, num_actions, **transition, norm_order=transition_norm_order)
            if spr
            else None
        )
        projected = (2 * hidden_dim if streams else hidden_dim) + audio_flat * self.audio_spr
        self.predictor = nn.Linear(projected, projected) if spr else None
        self.head_grad_scale = head_grad_scale
        head_in = hidden_dim + audio_flat  # the "projection" fusion's audio part joins here
        self.head = Head(
            head_in, num_actions, num_atoms, dueling=dueling, noisy=noisy, sigma0=sigma0
        )
        self.sequence_model = _sequence_model(sequence_model, projected)
        self.renorm = renorm
        self.noisy = noisy

    def _encoders(
        self,
        encoder: str,
        image_shape: tuple[int, ...],
        audio_shape: tuple[int, ...] | None,
        width_scale: float,
        padding: str,
        *,
        audio: AudioOptions,
        impala_blocks: int,
    ) -> tuple[int, int, int]:
        """Build the image (and audio) encoders; returns the latent's (C, h, w)."""
        self.encoder: ImpalaEncoder | NatureEncoder
        self.audio_encoder: AudioFusion | None = None
        stack, height, width = image_shape
        if encoder == "impala":
            self.encoder = ImpalaEncoder(
                stack, width_scale=width_scale, pool_padding=padding, num_blocks=impala_blocks
            )
        else:
            self.encoder = NatureEncoder(stack, width_scale=width_scale, padding=padding)
        channels = self.encoder.out_channels
        lh, lw = latent_hw(encoder, padding, height), latent_hw(encoder, padding, width)
        self.image_channels = int(channels)
        if audio_shape is not None and audio.channels > 0:
            # The audio encoder and its fusion (agents/audio.py): the audio part of the
            # latent, C_a channels after the image's.
            self.audio_encoder = AudioFusion(
                audio_shape[0], audio_shape[1], latent=(channels, lh, lw), options=audio
            )
            channels += audio.channels
        return channels, lh, lw

    def _audio_fusion(self, options: AudioOptions) -> int:
        """Where the audio part goes; returns its width after the projection (0 unless the
        fusion is "projection": the projection then sees the image channels only, and the
        audio part joins after it, at the head's input and, with audio SPR, on SPR's path)."""
        after = self.audio_encoder is not None and options.fusion == "projection"
        self.audio_after_projection = after
        self.audio_spr = self.audio_encoder is None or options.spr
        channels, lh, lw = self.latent_shape
        self.projected_channels = self.image_channels if after else channels
        return (channels - self.image_channels) * lh * lw if after else 0

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

    def _split(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(what the projection sees, flattened; the audio part that joins after it, or
        None): the whole latent unless the fusion is "projection"."""
        if not self.audio_after_projection:
            return latent.flatten(1), None
        c = self.image_channels
        return latent[:, :c].flatten(1), latent[:, c:].flatten(1)

    def logits(self, latent: torch.Tensor, noise: Noise | None = None) -> torch.Tensor:
        """(B, actions, atoms): the projection, ReLU, then the head (with separate streams:
        each stream's hidden layer, ReLU, its output layer). The gradient into the latent
        is scaled by ``head_grad_scale``."""
        x, after = self._split(scale_grad(latent, self.head_grad_scale))

        def joined(h: torch.Tensor) -> torch.Tensor:  # the "projection" fusion's audio part
            return F.relu(h) if after is None else torch.cat([F.relu(h), after], dim=1)

        if isinstance(self.projection, StreamProjection):
            value = _apply(self.projection.value, x, noise, "projection.value")
            adv = _apply(self.projection.advantage, x, noise, "projection.advantage")
            return self.head(joined(adv), noise, value_x=joined(value))
        return self.head(joined(_apply(self.projection, x, noise, "projection")), noise)

    def project(self, latent: torch.Tensor) -> torch.Tensor:
        """SPR's path: the projection without ReLU and without noise ((B, hidden), or
        (B, 2 x hidden) with separate streams: value then advantage, as SPR's QL1Head).
        Without audio SPR (``AudioOptions.spr``) the audio part is left out of it: zeroed,
        or (with the "projection" fusion) not appended; with it, the "projection" fusion
        appends the audio part."""
        if not self.audio_spr and not self.audio_after_projection:
            c = self.image_channels
            latent = torch.cat([latent[:, :c], torch.zeros_like(latent[:, c:])], dim=1)
        x, after = self._split(latent)
        if isinstance(self.projection, StreamProjection):
            out = torch.cat([self.projection.value(x), self.projection.advantage(x)], dim=1)
        else:
            out = _apply(self.projection, x, None, "projection")
        return out if after is None or not self.audio_spr else torch.cat([out, after], dim=1)

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


def _projection(
    latent_shape: tuple[int, int, int],
    hidden_dim: int,
    noisy: bool,
    sigma0: float,
    moe: MoESpec | None,
) -> nn.Module:
    """The dense projection of the flattened latent (noisy or not), or a soft-MoE over its
    tokens (agents/moe.py; never noisy)."""
    if moe is not None:
        return SoftMoEProjection(
            latent_shape,
            tokens=moe.tokens,
            experts=moe.experts,
            expert_dim=moe.expert_dim,
            single_expert=moe.single_expert,
            out_dim=hidden_dim,
        )
    return noisy_or_linear(math.prod(latent_shape), hidden_dim, noisy=noisy, sigma0=sigma0)


def _sequence_model(spec: tuple[int, int, int] | None, dim: int) -> MaskedSequenceModel | None:
    """M-CURL's transformer over ``dim``-wide projected frames; spec (length, depth, width)."""
    if spec is None:
        return None
    length, depth, width = spec
    return MaskedSequenceModel(dim, seq_len=length, depth=depth, width=width)


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
    noisy_bias_sigma: str = "fan_in",
) -> None:
    """(Re)initialize parameters in place from ``generator`` (on CPU, then copied).

    ``xavier_uniform``: Xavier-uniform kernels, zero biases, as the reference's Flax layers;
    ``torch_default``: PyTorch's own default (Kaiming-uniform a=sqrt(5)), kept as an
    ablation because several ports use it silently. Noisy layers: sigma = sigma0 /
    sqrt(fan_in); mu as the scheme says (``noisy_init="scheme"``), or weight and bias
    uniform in +-1/sqrt(fan_in) (``"fortunato"``: Fortunato et al. 3.2, Dopamine's
    NoisyNetwork). The noisy bias sigma is sigma0 / sqrt(fan_in), or sigma0 / sqrt(fan_out)
    (``noisy_bias_sigma="fan_out"``: SPR's NoisyLinear, models.py:725). BatchNorm: weight 1,
    bias 0, running stats reset.
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
            bias_fan = module.out_features if noisy_bias_sigma == "fan_out" else module.in_features
            module.bias_sigma.fill_(module.sigma0 / math.sqrt(bias_fan))
        elif isinstance(module, nn.Conv1d | nn.Conv2d | nn.Linear):
            _init_weight(module.weight, module.bias, generator, scheme)
        elif isinstance(module, nn.BatchNorm2d | nn.LayerNorm):
            module.reset_parameters()
        elif isinstance(module, nn.MultiheadAttention):  # its packed q, k, v kernel
            _init_weight(module.in_proj_weight, module.in_proj_bias, generator, scheme)
        if hasattr(module, "init_own_parameters"):  # soft-MoE, sequence model: raw kernels
            module.init_own_parameters(lambda w, b: _init_weight(w, b, generator, scheme))


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
