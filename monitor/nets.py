"""Network definitions shared by training and inference, and their weight files.

The shipped networks are compact U-Nets (a few hundred thousand parameters):
two 3 x 3 convolutions per level, average-pool down, bilinear up (no
transposed convolutions, hence no chessboard), reflect padding.

Normalisation. ``norm="group"`` puts a GroupNorm after every convolution
(never BatchNorm: no running statistics to go stale between training and
inference). The shipped nets use ``norm="none"``: GroupNorm normalises each
*tile* by its own statistics, so a pixel's output would depend on what else
the tile holds (seams in tiled inference) and the net would become blind to
the input's absolute magnitude -- the very thing a height regression must
read (a no-change pair, all noise, would be normalised up to look like
signal). Without normalisation the output at a pixel depends only on its
receptive field, exactly as in training.

Weights are safetensors files; their metadata (string to string) holds the
architecture (``arch``, JSON of :class:`NetSpec`), the network ``kind``
(``pair`` or ``relief``) and any calibration values the inference needs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from monitor.errors import MonitorError

Norm = Literal["none", "group"]

#: Folder of the shipped weights (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class NetSpec:
    """Architecture of a :class:`UNet`.

    ``widths`` are the channel counts per level. The input is first
    average-pooled by ``stem`` (deformations are smooth: the net reads them at
    half resolution for a quarter of the cost; the output is upsampled
    bilinearly), then level ``i`` works at ``1 / (stem * 2**i)`` of the input
    size, so an input side must be a multiple of ``stem * 2 ** (len(widths) - 1)``
    (:func:`pad_to_multiple` pads it). ``residual`` >= 0 names an input channel
    that is added to the output: the net then learns a correction of that
    channel (a physics estimate) and, with its small initial head, starts
    out close to that estimate.
    """

    in_channels: int
    out_channels: int = 1
    widths: tuple[int, ...] = (8, 16, 32, 48, 64)
    norm: Norm = "none"
    stem: int = 2
    residual: int = -1

    def to_json(self) -> str:
        """JSON text of the spec."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NetSpec:
        """Rebuild a spec from :meth:`to_json` output.

        Parameters
        ----------
        text
            JSON object with the dataclass fields.

        Returns
        -------
        NetSpec
        """
        try:
            data = json.loads(text)
            data["widths"] = tuple(int(w) for w in data["widths"])
            data.setdefault("residual", -1)
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise MonitorError(f"invalid network architecture in weights: {exc}") from exc

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this."""
        return self.stem * 2 ** (len(self.widths) - 1)


def _conv(cin: int, cout: int, norm: Norm) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")]
    if norm == "group":
        layers.append(nn.GroupNorm(max(1, min(8, cout // 4)), cout))
    layers.append(nn.SiLU())
    return layers


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: Norm) -> None:
        super().__init__(*_conv(cin, cout, norm), *_conv(cout, cout, norm))


class UNet(nn.Module):
    """Compact U-Net: ``(B, in, H, W) -> (B, out, H, W)``, H and W multiples of ``spec.multiple``.

    Parameters
    ----------
    spec
        Architecture.
    """

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        if spec.norm not in ("none", "group"):
            raise MonitorError(f"norm must be 'none' or 'group', got {spec.norm!r}")
        bad_residual = not -1 <= spec.residual < spec.in_channels
        if len(spec.widths) < 2 or min(spec.widths) < 1 or spec.in_channels < 1 or spec.stem < 1:
            raise MonitorError(f"invalid network spec {spec}")
        if bad_residual or (spec.residual >= 0 and spec.out_channels != 1):
            raise MonitorError(f"invalid residual channel in network spec {spec}")
        self.spec = spec
        w = spec.widths
        self.down = nn.ModuleList()
        cin = spec.in_channels
        for width in w:
            self.down.append(_Block(cin, width, spec.norm))
            cin = width
        self.up = nn.ModuleList()
        for i in range(len(w) - 2, -1, -1):
            self.up.append(_Block(w[i + 1] + w[i], w[i], spec.norm))
        for m in self.modules():  # variance-preserving init: activations keep their size
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.head = nn.Conv2d(w[0], spec.out_channels, 1)
        with torch.no_grad():  # start close to "no correction" (or 0), not exactly at it
            self.head.weight.mul_(0.1)
            if self.head.bias is not None:
                self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.spec.multiple
        if x.dim() != 4 or x.shape[1] != self.spec.in_channels:
            raise MonitorError(
                f"network expects (B, {self.spec.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if x.shape[-1] % m or x.shape[-2] % m:
            raise MonitorError(f"network input sides must be multiples of {m}, got {x.shape}")
        size = x.shape[-2:]
        r = self.spec.residual
        skip_in = x[:, r : r + 1] if r >= 0 else None
        if self.spec.stem > 1:
            x = F.avg_pool2d(x, self.spec.stem)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.avg_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        y = self.head(x)
        if self.spec.stem > 1:
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return y if skip_in is None else y + skip_in


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the last two axes of ``x`` (B, C, H, W) up to multiples of ``multiple``.

    Parameters
    ----------
    x
        Input batch.
    multiple
        Target multiple (e.g. ``spec.multiple``).

    Returns
    -------
    padded : torch.Tensor
        The padded batch (bottom and right edges).
    size : tuple of int
        The original ``(H, W)``, to crop the output back.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


# --------------------------------------------------------------------------- weight files


@dataclass(frozen=True)
class LoadedNet:
    """A network read from a safetensors file."""

    model: UNet = field(repr=False)
    spec: NetSpec
    kind: str
    metadata: dict[str, str]
    sha256: str
    path: Path

    @property
    def model_id(self) -> str:
        """``monitor/<kind>-<version>`` (what results record)."""
        return f"monitor/{self.kind}-{self.metadata.get('version', 'v0')}"

    def meta_float(self, key: str, default: float) -> float:
        """A numeric metadata value (calibration constants)."""
        try:
            return float(self.metadata.get(key, default))
        except ValueError as exc:
            raise MonitorError(f"weights {self.path.name}: metadata {key} is not a number") from exc


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_net(model: UNet, path: Path, kind: str, metadata: dict[str, str] | None = None) -> str:
    """Write a network's weights and metadata as safetensors.

    Parameters
    ----------
    model
        The network (moved to CPU float32 for saving).
    path
        Output ``.safetensors`` file; its folder is created.
    kind
        ``pair`` or ``relief`` (what the inference expects).
    metadata
        Extra string entries (version, calibration, input definition).

    Returns
    -------
    str
        SHA-256 of the written file.
    """
    from safetensors.torch import save_file

    meta = {"arch": model.spec.to_json(), "kind": kind, "format": "monitor-unet"}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    state = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.chmod(0o644)  # package data: readable by everyone
    tmp.replace(path)
    return file_sha256(path)


def load_net(
    path: Path, device: torch.device | None = None, *, kind: str | None = None
) -> LoadedNet:
    """Read a network written by :func:`save_net`.

    Parameters
    ----------
    path
        The ``.safetensors`` file.
    device
        Where to put the model (default CPU); it is returned in eval mode.
    kind
        When given, the file's kind must match.

    Returns
    -------
    LoadedNet

    Raises
    ------
    MonitorError
        Missing or unreadable file, wrong kind, mismatched tensors.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise MonitorError(
            f"network weights not found: {path}; train them with `monitor train "
            f"{kind or 'pair'}` or reinstall the package"
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = dict(fh.metadata() or {})
            state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise MonitorError(f"cannot read network weights {path}: {exc}") from exc
    if meta.get("format") != "monitor-unet" or "arch" not in meta:
        raise MonitorError(f"{path} is not a monitor network weights file")
    if kind is not None and meta.get("kind") != kind:
        raise MonitorError(f"{path} holds a {meta.get('kind')!r} network, expected {kind!r}")
    spec = NetSpec.from_json(meta["arch"])
    model = UNet(spec)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise MonitorError(f"weights {path} do not match their architecture") from exc
    model = model.to(device or torch.device("cpu")).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedNet(model, spec, meta["kind"], meta, file_sha256(path), path)
