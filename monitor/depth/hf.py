"""``--depth hf:<id-or-path>``: any Hugging Face ``transformers`` depth model.

Depth Anything (V1/V2), DPT, ZoeDepth, GLPN and the like load through
``AutoModelForDepthEstimation`` and ``AutoImageProcessor``, from a local folder
(``hf:/models/depth-anything-v2-small``) or a hub id
(``hf:depth-anything/Depth-Anything-V2-Small-hf``). A hub id is looked up in
the local Hugging Face cache first; the hub is asked only when the cache does
not hold it and ``HF_HUB_OFFLINE`` is not set. Without weights the error says
how to provide them.

The scan (linear light) is sRGB-encoded and normalised with the processor's
mean and std, then run in tiles of the model's native size
(:func:`monitor.depth.tiling.tiled_predict`), harmonised by one scale and
shift per tile and tied to one low-resolution run of the whole scan, so that
no seam or chessboard of levels appears. Output conversion to the project's
height (larger = towards the viewer): relative models (Depth Anything
relative, DPT/MiDaS) return relative inverse depth (disparity), which grows
towards the viewer and is kept; metric models (ZoeDepth, GLPN, Depth Anything
metric) return depth, which is negated.

``weights_sha256`` is the SHA-256 of the state dict (tensor names, dtypes,
shapes and bytes in name order): the same weights give the same hash whether
they came as safetensors or a pickle, from a folder or the cache.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from monitor.checks import check_image
from monitor.depth.tiling import full_precision, prepare_model, tiled_predict
from monitor.errors import MonitorError, MonitorWarning
from monitor.photometry import linear_to_srgb_torch
from monitor.results import DepthMap, Light

__all__ = ["HFDepthEstimator", "default_processor", "height_sign", "state_dict_sha256"]

#: ``config.model_type`` values whose output is metric depth (larger = farther).
METRIC_MODEL_TYPES = frozenset({"zoedepth", "glpn", "depth_pro", "prompt_depth_anything"})


def height_sign(config: Any) -> float:
    """+1 when the model returns disparity (larger = nearer), -1 when it returns depth.

    Parameters
    ----------
    config
        The model's ``transformers`` config.

    Returns
    -------
    float

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> height_sign(SimpleNamespace(model_type="dpt")), height_sign(SimpleNamespace(
    ...     model_type="x", depth_estimation_type="metric"))
    (1.0, -1.0)
    """
    if getattr(config, "model_type", "") in METRIC_MODEL_TYPES:
        return -1.0
    if getattr(config, "depth_estimation_type", "relative") == "metric":
        return -1.0
    return 1.0


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over a model's state dict (names, dtypes, shapes, bytes; name order).

    Parameters
    ----------
    model
        Any torch module.

    Returns
    -------
    str
        64 hex digits; equal for equal weights on any device.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> len(state_dict_sha256(a)), state_dict_sha256(a) == state_dict_sha256(b)
    (64, False)
    >>> _ = b.load_state_dict(a.state_dict())
    >>> state_dict_sha256(a) == state_dict_sha256(b)
    True
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # reshape(-1): a 0-dim tensor (BatchNorm's num_batches_tracked) cannot be viewed
        # as bytes; the shape is hashed above, so flattening loses nothing
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _how_to_provide(ref: str) -> str:
    return (
        f"on a connected machine run `hf download {ref} --local-dir DIR` (or "
        f"`huggingface-cli download {ref} --local-dir DIR`), copy DIR here and use "
        "--depth hf:DIR; or point HF_HOME at a Hugging Face cache that holds it"
    )


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in {"1", "true", "yes", "on"}
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def default_processor(model_type: str) -> Any:
    """The image processor of a model family with its default settings.

    Used when a model folder was saved without ``preprocessor_config.json``.

    Parameters
    ----------
    model_type
        ``config.model_type`` (``glpn``, ``dpt``, ``depth_anything``, ...).

    Returns
    -------
    transformers.BaseImageProcessor
        A default-constructed processor of the family.

    Raises
    ------
    MonitorError
        If transformers knows no image processor for that model type.

    Examples
    --------
    >>> default_processor("glpn").size_divisor  # doctest: +SKIP
    32
    """
    from transformers.models.auto import image_processing_auto as auto

    names = auto.IMAGE_PROCESSOR_MAPPING_NAMES.get(model_type)
    if isinstance(names, dict):  # transformers 5: {"pil": ..., "torchvision": ...}
        ordered = [names.get("pil"), *names.values()]
    elif isinstance(names, (tuple, list)):  # transformers 4: (slow, fast)
        ordered = list(names)
    else:
        ordered = [names]
    for name in ordered:
        if not name:
            continue
        cls = auto.get_image_processor_class_from_name(name)
        if cls is not None:
            return cls()
    raise MonitorError(
        f"no preprocessor_config.json and transformers knows no image processor for "
        f"model type {model_type!r}: save the processor with the model"
    )


def _load(ref: str) -> tuple[Any, Any]:
    try:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation
    except ImportError as exc:
        raise MonitorError(
            "--depth hf:... needs the transformers package (pip install 'monitor[hf]')"
        ) from exc
    if not ref:
        raise MonitorError("--depth hf: needs a model id or folder, e.g. hf:/models/depth-anything")
    path = Path(ref).expanduser()
    looks_local = ref.startswith((".", "/", "~")) or path.exists()
    if looks_local:
        if not path.is_dir():
            raise MonitorError(f"depth model folder not found: {path}")
        if not (path / "config.json").is_file():
            raise MonitorError(f"{path} has no config.json: not a transformers model folder")
        attempts = [(str(path), True)]
    else:
        attempts = [(ref, True)] if _offline() else [(ref, True), (ref, False)]
    last: Exception | None = None
    for name, local_only in attempts:
        try:
            model = AutoModelForDepthEstimation.from_pretrained(name, local_files_only=local_only)
            if looks_local and not (path / "preprocessor_config.json").is_file():
                processor = default_processor(model.config.model_type)
                warnings.warn(
                    f"{path} has no preprocessor_config.json: using the default "
                    f"{type(processor).__name__} of model type {model.config.model_type!r}",
                    MonitorWarning, stacklevel=3,
                )
            else:
                processor = AutoImageProcessor.from_pretrained(name, local_files_only=local_only)
            return model, processor
        except MonitorError:
            raise
        except (OSError, ValueError, KeyError, ImportError) as exc:
            last = exc
        except Exception as exc:  # hub/network errors of various types
            last = exc
    if looks_local:
        raise MonitorError(f"cannot load the depth model in {path}: {last}")
    raise MonitorError(
        f"depth model {ref!r} is not in the local Hugging Face cache and the hub cannot be "
        f"reached{' (HF_HUB_OFFLINE is set)' if _offline() else ''}; {_how_to_provide(ref)}"
    )


def _processor_geometry(processor: Any, config: Any) -> tuple[int, int]:
    """(tile side, multiple) from the processor's size and the model's patch constraints."""
    multiple = 1
    for attr in ("ensure_multiple_of", "size_divisor"):
        value = getattr(processor, attr, None)
        if isinstance(value, int) and value > 1:
            multiple = value
            break
    else:
        patch = getattr(config, "patch_size", None)
        if isinstance(patch, int) and patch > 1:
            multiple = patch
    size = getattr(processor, "size", None)
    side = None
    for key in ("height", "shortest_edge", "width"):
        value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        if isinstance(value, int) and value > 0:
            side = value
            break
    side = side or 512
    side = max(multiple, round(side / multiple) * multiple)
    return side, multiple


class HFDepthEstimator:
    """A ``transformers`` depth model as a :class:`~monitor.depth.base.DepthEstimator`.

    Parameters
    ----------
    ref
        Hub id or local folder (what follows ``hf:``).
    device
        Torch device.
    tile, overlap
        Tile side and overlap in pixels (default: the processor's size, 1/6 of it).
    batch_size
        Tiles per forward pass.
    anchor
        Also run the whole scan shrunk to one tile and tie the tiles to it.
    """

    def __init__(
        self,
        ref: str,
        device: torch.device | None = None,
        *,
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int = 4,
        anchor: bool = True,
    ) -> None:
        self.ref = ref
        self.name = f"hf:{ref}"
        self.model_id = f"hf:{ref}"
        self.device = device or torch.device("cpu")
        model, processor = _load(ref)
        self.config = model.config
        self.weights_sha256: str | None = state_dict_sha256(model)
        self.model = prepare_model(model, self.device)
        native, self.multiple = _processor_geometry(processor, model.config)
        self.tile = tile or native
        if self.tile % self.multiple:
            raise MonitorError(f"hf: tile {self.tile} must be a multiple of {self.multiple}")
        self.overlap = overlap if overlap is not None else max(self.multiple, self.tile // 6)
        self.batch_size = batch_size
        self.anchor = anchor
        self.sign = height_sign(model.config)
        normalise = getattr(processor, "do_normalize", True)
        mean = getattr(processor, "image_mean", None) if normalise else None
        std = getattr(processor, "image_std", None) if normalise else None
        self.mean = torch.tensor(mean if mean is not None else [0.0] * 3).view(1, 3, 1, 1)
        self.std = torch.tensor(std if std is not None else [1.0] * 3).view(1, 3, 1, 1)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) linear light -> (B, h', w') height-convention output."""
        with full_precision(x.device):  # encoding and normalisation in float32
            pixels = linear_to_srgb_torch(x.float())
            pixels = (pixels - self.mean.to(x.device)) / self.std.to(x.device)
        if x.device.type == "cuda":
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        out = self.model(pixel_values=pixels).predicted_depth
        if out.dim() == 4:
            out = out[:, 0]
        return self.sign * out.float()

    def estimate(self, rgb_linear: np.ndarray, light: Light) -> DepthMap:
        """Relative height of one scan (the light is not used).

        Parameters
        ----------
        rgb_linear
            H x W x 3 float32 linear light in [0, 1].
        light
            Ignored (monocular depth networks do not take it).

        Returns
        -------
        DepthMap
            ``height`` H x W float32 in the model's relative units, larger =
            towards the viewer.
        """
        check_image(rgb_linear, "H W 3", name="hf depth: linear RGB")
        h, w = rgb_linear.shape[:2]
        if min(h, w) < self.multiple:
            raise MonitorError(f"hf depth: image {w}x{h} is smaller than the model's patch")
        anchor = None
        if self.anchor and max(h, w) > self.tile:
            anchor = self._anchor(rgb_linear)
        height = tiled_predict(
            rgb_linear, self._forward, tile=self.tile, overlap=self.overlap,
            batch_size=self.batch_size, device=self.device, multiple=self.multiple,
            harmonise="affine", anchor=anchor,
        )
        return DepthMap(
            height=height, model_id=self.model_id, weights_sha256=self.weights_sha256,
            device=str(self.device),
        )

    def _anchor(self, rgb_linear: np.ndarray) -> np.ndarray:
        """The model on the whole scan shrunk so its long side is one tile."""
        h, w = rgb_linear.shape[:2]
        s = self.tile / max(h, w)
        m = self.multiple
        sh, sw = max(m, round(h * s / m) * m), max(m, round(w * s / m) * m)
        small = cv2.resize(np.ascontiguousarray(rgb_linear, np.float32), (sw, sh),
                           interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(small.transpose(2, 0, 1).copy())[None].to(self.device)
        with torch.inference_mode():
            out = self._forward(x)
        return out[0].cpu().numpy().astype(np.float32)
