"""``monitor train pair|relief``: thin command over :func:`monitor.training.train`.

:mod:`monitor.cli` calls :func:`register` to add the command to the app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli._options import JsonOption, handled


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``.

    Parameters
    ----------
    app
        The ``monitor`` Typer application.
    """

    @app.command()
    def train(
        kind: Annotated[str, typer.Argument(help="Which network: pair or relief.")],
        steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 2000,
        size: Annotated[
            int, typer.Option(help="Long side of the rendered pairs (= working grid), px.")
        ] = 512,
        pairs: Annotated[int, typer.Option(help="Training pairs rendered (TRAIN split).")] = 320,
        val_pairs: Annotated[
            int, typer.Option(help="Validation pairs (VALIDATION split); 0 skips validation.")
        ] = 40,
        batch: Annotated[int, typer.Option(help="Crops per step.")] = 8,
        crop: Annotated[int, typer.Option(help="Crop side, px (multiple of 32).")] = 192,
        out: Annotated[
            Path | None,
            typer.Option(help="Output folder (default: <data home>/weights; the package's "
                         "shipped weights are replaced only if --out names their folder)."),
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed of everything random.")] = 0,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "cpu",
        threads: Annotated[int, typer.Option(help="CPU threads for torch.")] = 2,
        small_pairs: Annotated[
            int, typer.Option(help="Further pair-training pairs with small damage (blisters, "
                              "tenting, cupping).")
        ] = 40,
        lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-3,
        init: Annotated[
            Path | None,
            typer.Option(help="Start from these weights (same architecture): fine-tuning."),
        ] = None,
        light_jitter: Annotated[
            float, typer.Option(help="Pair training: sigma (deg) of the told light's azimuth "
                                "error, as the light estimator leaves it; 0 tells the truth.")
        ] = 8.0,
        cache: Annotated[
            Path | None,
            typer.Option(help="Cache of rendered pairs (default .cache/monitor-train)."),
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Train the pair (relief change) or relief (per-scan) network on synthetic pairs.

        Example: monitor train pair --steps 2000
        """
        from monitor.depth.base import select_device
        from monitor.nets import WEIGHTS_DIR
        from monitor.training import TrainConfig
        from monitor.training import train as run_train

        with handled():
            config = TrainConfig(
                kind=kind, steps=steps, size=size, pairs=pairs, val_pairs=val_pairs,
                batch=batch, crop=crop, seed=seed, threads=threads, small_pairs=small_pairs,
                light_jitter_deg=light_jitter, lr=lr, init=str(init) if init else None,
                device=str(select_device(device)),
            )
            result = run_train(
                config, out, cache_dir=cache,
                log=(lambda s: typer.echo(s, err=True)) if as_json else None,
            )
        info = {
            "weights": str(result.weights),
            "card": str(result.card),
            "sha256": result.sha256,
            "first_loss": result.first_loss,
            "final_loss": result.final_loss,
            "seconds": round(result.seconds, 1),
            "validation": result.validation,
        }
        if as_json:
            typer.echo(json.dumps(info, indent=2))
        else:
            typer.echo(f"loss {result.first_loss:.4f} -> {result.final_loss:.4f}; wrote "
                       f"{result.weights} and {result.card} in {result.seconds:.0f} s")
            if result.weights.parent.resolve() != WEIGHTS_DIR.resolve():
                typer.echo(f"the shipped weights in {WEIGHTS_DIR} are unchanged; to use the "
                           f"new ones, copy {result.weights.name} there (or train with --out "
                           f"{WEIGHTS_DIR})")
