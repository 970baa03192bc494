"""PDF condition report: content, escaping of metadata, the fetcher's sandbox, the history chart."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import PIL.ImageFile
import pytest
from PIL import Image
from test_store import make_comparison, write_image

from monitor import pipeline
from monitor.errors import MonitorError
from monitor.pipeline import write_outputs
from monitor.report import render
from monitor.report.charts import history_chart_png
from monitor.results import AppearanceRegion, Comparison, Outline, Region
from monitor.store import db, repository

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed"
)
HOSTILE_TITLE = "<img src=file:///etc/passwd>"


def pdf_text(path: Path, *, layout: bool = True) -> str:
    args = ["pdftotext", *(["-layout"] if layout else []), str(path), "-"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def full_write(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """The pipeline's own writer, on a hand-made comparison with a preview and a stain."""
    preview = np.asarray(Image.open(SCAN_0))
    comparison = dataclasses.replace(
        comparison,
        preview=preview,
        appearance_regions=(STAIN,),
        outline=Outline((2.0, 1.0, 62.0, 47.0), "found"),
    )
    return pipeline.write_outputs(comparison, out_dir)


SCAN_0: Path = Path()
STAIN = AppearanceRegion(1, "discoloration", (50.0, 12.0), (45.0, 8.0, 56.0, 17.0), 80.0, 7.5,
                         12.0, -3.0, 4.0, 5.0)


def stored_comparison(
    tmp_path: Path, title: str = "The Night Watch", *, writer: object = None, **artwork: str
) -> tuple[db.Store, int]:
    store = db.init_home(tmp_path / "home")
    repository.add_artwork(store, "nw", title, width_mm=16.0, height_mm=12.0, **artwork)
    for i, month in enumerate((1, 6)):
        repository.ingest_scan(
            store,
            "nw",
            write_image(tmp_path / f"s{i}.png", i),
            repository.ScanMeta(
                captured_at=datetime(2024, month, 1, tzinfo=UTC),
                px_per_mm=4.0,
                light_azimuth=180.0,
                light_elevation=25.0,
            ),
        )
    global SCAN_0
    SCAN_0 = tmp_path / "s0.png"
    stored = repository.compare_and_store(
        store, "nw", lambda *a: make_comparison(), writer or write_outputs  # type: ignore[arg-type]
    )
    return store, stored.id


def test_importing_the_renderer_leaves_pil_strict() -> None:
    # WeasyPrint switches this on at import; monitor.io.read_image refuses to run with it on.
    assert PIL.ImageFile.LOAD_TRUNCATED_IMAGES is False


@needs_poppler
def test_report_holds_identification_regions_history_and_page_numbers(tmp_path: Path) -> None:
    store, cid = stored_comparison(
        tmp_path, artist="Rembrandt", date="1642", medium="oil on canvas", location="Gallery 2",
        writer=full_write,
    )
    out = tmp_path / "report.pdf"
    rendered = render.write_report(store, cid, out, now=datetime(2025, 3, 4, 5, 6, tzinfo=UTC))
    assert out.read_bytes().startswith(b"%PDF")
    assert rendered.refused == ()
    assert rendered.pages >= 2
    # every resource came from the templates or the report's staging folder
    assert any(u.endswith("report.css") for u in rendered.requested)
    names = [u.rsplit("/", 1)[-1] for u in rendered.requested]
    for name in ("heatmap.png", "overlay.jpg", "locator.png", "baseline_thumb.jpg",
                 "current_thumb.jpg", "region-1.jpg", "region-2.jpg", "region-3.jpg",
                 "appearance-1.jpg"):
        assert name in names, name
    assert "history.png" not in names  # one comparison: no trend chart
    text = " ".join(pdf_text(out, layout=False).split())
    for expected in (
        "The Night Watch",
        "Rembrandt",
        "oil on canvas",
        "Gallery 2",
        "12 × 16 mm",
        "two raised areas (bulges) and one depressed area (recession)",
        "Raised area",
        "Depressed area",
        "Discoloration",
        "ΔE₀₀ 7.5",
        "not counted as bulges or recessions",
        f"Page 1 of {rendered.pages}",
        f"Page {rendered.pages} of {rendered.pages}",
        "generated 2025-03-04 05:06 UTC",
        "monitor 0.1.0",
        "shading",
        "2024-01-01",
        "2024-06-01",
        # centroid (20.5, 12.5) px from the found edge (2, 1) at 4 px/mm
        "5 mm from left, 3 mm from top",
        "edges as found in the baseline",
        "+0.2 mm",  # peak 0.8 px / 4 px/mm, in mm
        "Appendix: technical details",
        "Signature",
        "Accession number",
        "Owner / lender",
        "Glazing",
    ):
        assert expected in text, expected
    # technical settings stay out of the findings: they come after the appendix heading
    assert text.index("Appendix") < text.index("monitor 0.1.0")
    assert text.index("Findings") < text.index("Appendix")
    # no staging left behind, no partial PDF beside the output
    assert not any(store.tmp_dir.iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


@needs_poppler
def test_hostile_metadata_is_escaped_and_reads_no_file(tmp_path: Path) -> None:
    store, cid = stored_comparison(
        tmp_path,
        title=HOSTILE_TITLE,
        artist='<link rel="stylesheet" href="file:///etc/passwd">',
        notes="<style>@import url(http://evil.example/x.css);</style>",
    )
    out = tmp_path / "report.pdf"
    rendered = render.write_report(store, cid, out)
    assert "&lt;img src=file:///etc/passwd&gt;" in rendered.html
    assert "<img src=file:///etc/passwd" not in rendered.html
    assert "<link rel=\"stylesheet\" href=\"file:///etc/passwd" not in rendered.html
    assert "<style>@import" not in rendered.html
    asked = " ".join(rendered.requested)
    assert "passwd" not in asked and "evil.example" not in asked
    text = pdf_text(out)
    assert HOSTILE_TITLE in text  # shown as text, literally


def test_fetcher_refuses_everything_outside_its_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    inside = root / "a.png"
    Image.new("RGB", (4, 4)).save(inside)
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (root / "link.txt").symlink_to(outside)
    fetcher = render.StoreURLFetcher([root])
    response = fetcher.fetch(inside.as_uri())
    assert response.read() == inside.read_bytes()
    assert response.content_type == "image/png"
    for url in (
        "file:///etc/passwd",
        outside.as_uri(),
        (root / "link.txt").as_uri(),  # symlink pointing out of the root
        root.as_uri() + "/../secret.txt",
        root.as_uri(),  # a folder
        "http://example.com/a.png",
        "https://example.com/a.png",
        "data:text/plain,hello",
        "file://otherhost" + str(inside),
    ):
        with pytest.raises(PermissionError):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 9
    assert fetcher.requested[0] == inside.as_uri()


def test_renderer_refuses_injected_markup_even_unescaped(tmp_path: Path) -> None:
    """Defence in depth: were markup ever to reach the HTML, the fetcher still reads nothing."""
    html = (
        "<html><body><p>x</p><img src='file:///etc/passwd'>"
        "<link rel='stylesheet' href='http://evil.example/x.css'></body></html>"
    )
    fetcher = render.StoreURLFetcher([tmp_path])
    pages = render.html_to_pdf(html, tmp_path / "x.pdf", fetcher, tmp_path)
    assert pages == 1
    assert "file:///etc/passwd" in fetcher.refused
    assert "http://evil.example/x.css" in fetcher.refused
    assert set(fetcher.refused) == set(fetcher.requested)


def test_report_checks_its_target(tmp_path: Path) -> None:
    store, cid = stored_comparison(tmp_path)
    with pytest.raises(MonitorError, match=".pdf"):
        render.write_report(store, cid, tmp_path / "report.html")
    with pytest.raises(MonitorError, match="no comparison"):
        render.write_report(store, cid + 100, tmp_path / "r.pdf")
    with pytest.raises(MonitorError, match="does not exist"):
        render.write_report(store, cid, tmp_path / "missing" / "r.pdf")


@pytest.mark.parametrize(
    ("centroid", "px_per_mm", "expected"),
    [
        ((8.0, 6.0), 2.0, "upper left; 4 mm from left, 3 mm from top"),
        ((50.0, 30.0), None, "centre; 50% from left, 50% from top"),
        ((95.0, 58.0), None, "lower right; 95% from left, 97% from top"),
        ((50.0, 2.0), 1.0, "upper centre; 50 mm from left, 2 mm from top"),
    ],
)
def test_region_location(
    centroid: tuple[float, float], px_per_mm: float | None, expected: str
) -> None:
    region = Region(1, "bulge", centroid, (0.0, 0.0, 1.0, 1.0), 1.0, 1.0, 1.0, 5.0)
    assert render.region_location(region, 100, 60, px_per_mm).replace("\u00a0", " ") == expected


def test_region_location_from_the_works_edge() -> None:
    # measured from the work's outline (20, 10)-(90, 55), not from the image corner
    region = Region(1, "bulge", (60.0, 36.0), (0.0, 0.0, 1.0, 1.0), 1.0, 1.0, 1.0, 5.0)
    where = render.region_location(region, 100, 60, 2.0, (20.0, 10.0, 90.0, 55.0))
    assert where.replace("\u00a0", " ") == "centre; 20 mm from left, 13 mm from top"


def test_registration_quality() -> None:
    assert render.registration_quality(0.4, 90, 100).startswith("good (0.40 px")
    assert render.registration_quality(1.5, 90, 100).startswith("acceptable")
    assert render.registration_quality(4.0, 10, 100).startswith("poor")


def test_history_chart(tmp_path: Path) -> None:
    store, cid = stored_comparison(tmp_path)
    hist = repository.history(store, "nw")
    path = history_chart_png(hist, tmp_path / "h.png", highlight=cid, size_in=(4.0, 2.0), dpi=50)
    with Image.open(path) as im:
        assert im.size == (200, 100)
        pixels = np.asarray(im.convert("RGB"))
    # the highlighted bar is drawn in its own colour (e0a030)
    assert np.any(np.all(np.abs(pixels.astype(int) - [0xE0, 0xA0, 0x30]) < 30, axis=-1))
    empty = repository.ArtworkHistory(hist.artwork, (), "insufficient data", "px")
    with pytest.raises(MonitorError, match="no comparison"):
        history_chart_png(empty, tmp_path / "e.png")


def test_findings_never_turn_could_not_tell_into_no_change(tmp_path: Path) -> None:
    store, cid = stored_comparison(tmp_path)
    detail = repository.comparison_detail(store, cid)
    blind = dataclasses.replace(
        detail, regions=(), params={**detail.params, "status": "insufficient",
                                    "usable_fraction": 0.12})
    (sentence,) = render.findings_sentences(blind, [], "first comparison")
    assert "could not tell" in sentence and "12%" in sentence
    assert "No change" not in sentence
    same = dataclasses.replace(detail, regions=(), params={**detail.params,
                                                           "status": "identical"})
    (sentence,) = render.findings_sentences(same, [], "first comparison")
    assert "identical pixels" in sentence
    ok = dataclasses.replace(detail, regions=())
    assert render.findings_sentences(ok, [], "first comparison")[0].startswith("No change")
    store.engine.dispose()


@needs_poppler
def test_report_shows_the_scale_each_region_was_found_at(tmp_path: Path) -> None:
    # scale = "auto": every region carries the pitch of the pyramid level it was found at
    from monitor.results import ScaledRegion

    scaled = (
        ScaledRegion(1, "bulge", (20.5, 12.5), (14.0, 8.0, 27.0, 17.0), 96.0, 0.8, 0.4, 9.5,
                     scale_px=1.0, scale_mm=0.25, level=0),
        ScaledRegion(2, "recession", (44.0, 30.0), (40.0, 26.0, 48.0, 34.0), 60.0, -0.5, -0.2,
                     6.1, scale_px=8.0, scale_mm=2.0, level=3),
    )
    store = db.init_home(tmp_path / "home")
    repository.add_artwork(store, "nw", "The Night Watch", width_mm=16.0, height_mm=12.0)
    for i, month in enumerate((1, 6)):
        repository.ingest_scan(
            store, "nw", write_image(tmp_path / f"s{i}.png", i),
            repository.ScanMeta(captured_at=datetime(2024, month, 1, tzinfo=UTC), px_per_mm=4.0,
                                light_azimuth=180.0, light_elevation=25.0),
        )
    stored = repository.compare_and_store(
        store, "nw", lambda *a: make_comparison(scaled), write_outputs  # type: ignore[arg-type]
    )
    out = tmp_path / "report.pdf"
    render.write_report(store, stored.id, out, now=datetime(2025, 3, 4, tzinfo=UTC))
    text = " ".join(pdf_text(out, layout=False).split())
    assert "Found at scale" in text
    assert "0.25 mm" in text and "2 mm" in text
    # the single grid's regions carry no scale: no column for it
    (tmp_path / "plain").mkdir()
    plain_store, plain = stored_comparison(tmp_path / "plain")
    out2 = tmp_path / "plain.pdf"
    render.write_report(plain_store, plain, out2, now=datetime(2025, 3, 4, tzinfo=UTC))
    assert "Found at scale" not in " ".join(pdf_text(out2, layout=False).split())


def test_a_killed_writers_leftovers_are_swept_and_a_live_writers_kept(tmp_path: Path) -> None:
    # kill -9 during a report leaves its staging folder and .part file beside the PDF;
    # the next report into that place removes them, but never a live writer's
    store, cid = stored_comparison(tmp_path)
    out = tmp_path / "report.pdf"
    child = subprocess.Popen(["true"])
    child.wait()
    gone = child.pid
    stale_dir = tmp_path / f".report.pdf.{gone}-x1y2.figures"
    stale_dir.mkdir()
    (stale_dir / "heatmap.png").write_bytes(b"\x89PNG")
    stale_part = tmp_path / f".report.pdf.{gone}-ab12cd34.part"
    stale_part.write_bytes(b"%PDF-1.7 half")
    live_part = tmp_path / f".report.pdf.{os.getpid()}-ffff0000.part"
    live_part.write_bytes(b"%PDF-1.7 being written")
    other = tmp_path / f".other.pdf.{gone}-ab12cd34.part"
    other.write_bytes(b"not ours")
    render.write_report(store, cid, out)
    assert out.read_bytes().startswith(b"%PDF")
    assert not stale_dir.exists() and not stale_part.exists()
    assert live_part.exists() and other.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".report.pdf.")]
    assert leftovers == [live_part.name]
