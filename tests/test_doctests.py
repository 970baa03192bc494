"""The Examples sections of the stage rooms run, and say what they show.

Every public function of these rooms carries a small runnable example
(numpydoc ``Examples``); a wrong example -- or a function that stopped doing
what its example says -- fails here.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "monitor.photometry",
    "monitor.checks",
    "monitor.geometry",
    "monitor.regions",
    "monitor.registration.estimate",
    "monitor.registration.residual",
    "monitor.registration.summary",
    "monitor.registration.warp",
    "monitor.change.methods",
    "monitor.change.alignment",
    "monitor.change.multilight",
    "monitor.depth.base",
    "monitor.depth.hf",
    "monitor.depth.photometric_stereo",
    "monitor.depth.relief",
    "monitor.depth.shading",
    "monitor.depth.tiling",
    "monitor.io.colour",
    "monitor.io.files",
    "monitor.io.read",
    "monitor.io.resample",
    "monitor.topography",
    "monitor.mesh",
    "monitor.results",
    "monitor.config",
    "monitor.store.repository.trends",
    "monitor.light.check",
    "monitor.light.estimate",
    "monitor.change.multiscale",
    "monitor.change.pair_multiscale",
    "monitor.report.render",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        report=False,
    )
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_a_wrong_example_fails() -> None:
    # the harness above is not vacuous: an example whose output is wrong is counted
    def square(x: int) -> int:
        """
        >>> square(3)
        10
        """
        return x * x

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(square, "square", globs={"square": square}):
        runner.run(test, out=lambda _text: None)
    assert runner.failures == 1
