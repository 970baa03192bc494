"""History semantics: series, plain wording, region tracking (monitor.store.tracking)."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.store.tracking import (
    Sighting,
    Step,
    describe_steps,
    interval_words,
    series_of,
    summary_words,
    track_regions,
)

D = [datetime(2024, m, 1, tzinfo=UTC) for m in (1, 7, 12)] + [datetime(2025, 6, 1, tzinfo=UTC)]


def test_a_stable_rescan_after_a_change_is_stable_not_falling() -> None:
    steps = [Step(1, 1, 2, D[0], D[1], 3, 800.0, "mm²"), Step(2, 2, 3, D[1], D[2], 0, 0.0, "mm²")]
    words = describe_steps(steps, [1, 2, 3])
    assert words[1] == "changed since the first scan: 3 regions, 800 mm² in 6 months"
    assert words[2] == "stable since the last scan"
    assert summary_words(steps, [1, 2, 3]).startswith("stable since the last scan")


def test_growth_since_the_first_scan_is_read_in_time_order() -> None:
    # given out of order: the wording follows capture time, not insertion
    steps = [
        Step(9, 1, 4, D[0], D[3], 2, 300.0, "mm²"),
        Step(5, 1, 2, D[0], D[1], 2, 180.0, "mm²"),
        Step(7, 1, 3, D[0], D[2], 2, 185.0, "mm²"),
    ]
    words = describe_steps(steps, [1, 2, 3, 4])
    assert words[5].startswith("changed since the first scan")
    assert words[7].startswith("no further change in 5 months")
    assert words[9] == "growing: +115 mm² in 6 months"
    assert summary_words(steps, [1, 2, 3, 4]) == "growing: +115 mm² in 6 months"


def test_series_and_intervals() -> None:
    order = [1, 2, 3]
    assert series_of(Step(1, 1, 3, D[0], D[2], 0, 0.0, "mm²"), order) == "since first scan"
    assert series_of(Step(2, 2, 3, D[1], D[2], 0, 0.0, "mm²"), order) == "scan to scan"
    assert series_of(Step(3, 3, 2, D[2], D[1], 0, 0.0, "mm²"), order) == "other"
    assert interval_words(D[0], D[1]) == "6 months"
    assert summary_words([], order) == "no comparison yet"


def test_a_region_seen_again_keeps_its_number() -> None:
    first = [
        Sighting(1, 1, "bulge", (100, 100, 130, 130), (115, 115)),
        Sighting(1, 2, "recession", (300, 50, 320, 70), (310, 60)),
    ]
    # next comparison: numbered by significance, so the same regions come in another order,
    # the bulge has grown, and a new bulge appeared elsewhere
    second = [
        Sighting(2, 1, "recession", (298, 48, 322, 72), (310, 60)),
        Sighting(2, 2, "bulge", (500, 500, 520, 520), (510, 510)),
        Sighting(2, 3, "bulge", (95, 95, 140, 140), (117, 117)),
    ]
    tracks = track_regions(first + second, [1, 2])
    assert tracks[(1, 1)] == tracks[(2, 3)] == 1
    assert tracks[(1, 2)] == tracks[(2, 1)] == 2
    assert tracks[(2, 2)] == 3  # new
    # a recession never continues a bulge's track, however close
    flip = [Sighting(3, 1, "recession", (100, 100, 130, 130), (115, 115))]
    assert track_regions(first + flip, [1, 3])[(3, 1)] == 3
