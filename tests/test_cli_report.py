"""CLI of the condition report and of history: loan fields, annotate, scans, reversed pairs,
output options on every listing, did-you-mean, examples in every help, --version."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from test_cli_history import APP, invoke, ok_json
from test_store import make_comparison, write_image
from typer.testing import CliRunner

from monitor import cli
from monitor.errors import MonitorError
from monitor.pipeline import write_outputs
from monitor.store import db, repository


def _home_with_comparison(tmp_path: Path) -> tuple[Path, int]:
    home = tmp_path / "h"
    ok_json(home, "init")
    ok_json(home, "artwork", "add", "night-watch", "--title", "The Night Watch",
            "--accession-number", "SK-C-5", "--owner", "City of Amsterdam",
            "--frame", "gilt, original", "--glazing", "none")
    for i, when in enumerate(("2024-01-01", "2024-07-01", "2024-12-01")):
        ok_json(home, "ingest", "night-watch", str(write_image(tmp_path / f"{i}.png", i)),
                "--captured-at", when, "--px-per-mm", "4")
    store = db.open_store(home)
    stored = repository.compare_and_store(store, "night-watch", lambda *a: make_comparison(),
                                          write_outputs, baseline="1", current="2")
    store.engine.dispose()
    return home, stored.id


def test_loan_fields_annotate_and_show(tmp_path: Path) -> None:
    home, cid = _home_with_comparison(tmp_path)
    shown = ok_json(home, "artwork", "show", "night-watch")
    assert shown["artwork"]["accession_number"] == "SK-C-5"
    assert shown["artwork"]["glazing"] == "none" and len(shown["scans"]) == 3
    edited = ok_json(home, "artwork", "edit", "night-watch", "--venue", "Rijksmuseum",
                     "--exhibition", "Operation Night Watch")
    assert edited["venue"] == "Rijksmuseum" and edited["owner"] == "City of Amsterdam"
    note = ok_json(home, "comparison", "annotate", str(cid), "--examiner", "A. Registrar",
                   "--date", "2024-07-03", "--condition", "Stable overall.",
                   "--recommendations", "Fit for travel.")
    assert note["examiner"] == "A. Registrar" and note["examined_at"] == "2024-07-03"
    # a field not given is kept
    again = ok_json(home, "comparison", "annotate", str(cid), "--conditions", "RH 52 %")
    assert again["condition"] == "Stable overall." and again["conditions"] == "RH 52 %"
    code, _out, err = invoke(home, "comparison", "annotate", str(cid), "--date", "July")
    assert code == 1 and "YYYY-MM-DD" in err
    code, _out, err = invoke(home, "comparison", "annotate", "999", "--examiner", "x")
    assert code == 1 and "no comparison 999" in err
    # the user sets the work's edges: locations are then measured from them
    ok_json(home, "comparison", "annotate", str(cid), "--outline", "4,2,60,46")
    code, _out, err = invoke(home, "comparison", "annotate", str(cid), "--outline", "4,2,99,46")
    assert code == 1 and "leaves the baseline image" in err
    store = db.open_store(home)
    detail = repository.comparison_detail(store, cid)
    assert detail.annotation.recommendations == "Fit for travel."
    assert detail.outline is not None and detail.outline.source == "user"
    assert detail.outline.bbox == (4.0, 2.0, 60.0, 46.0)
    assert detail.artwork.exhibition == "Operation Night Watch"


def test_scans_and_listings_take_every_output_option(tmp_path: Path) -> None:
    home, cid = _home_with_comparison(tmp_path)
    listings = (("scans", "night-watch"), ("artwork", "list"), ("history", "night-watch"),
                ("comparison", "show", str(cid)))
    for args in listings:
        for flag in ("--json", "--csv", "--nl", "--table"):
            code, out, err = invoke(home, *args, flag)
            assert code == 0, (args, flag, err)
            assert out.strip(), (args, flag)
            if flag == "--csv":
                rows = list(csv.DictReader(io.StringIO(out)))
                assert rows, (args, flag)
            if flag == "--nl":
                assert all(json.loads(line) for line in out.splitlines())
        code, _out, err = invoke(home, *args, "--json", "--csv")
        assert code == 1 and "choose one of" in err
    scans = ok_json(home, "scans", "night-watch")
    assert [s["id"] for s in scans] == [1, 2, 3]
    assert scans[0]["width_mm"] == 16.0  # 64 px at 4 px/mm
    findings = ok_json(home, "comparison", "show", str(cid))
    assert findings["regions"][0]["centroid_mm"] == [5.12, 3.12]  # (20.5, 12.5) px / 4


def test_a_reversed_pair_is_refused_unless_asked(tmp_path: Path) -> None:
    home, _cid = _home_with_comparison(tmp_path)
    code, _out, err = invoke(home, "compare", "night-watch", "--baseline", "3",
                             "--current", "1")
    assert code == 1 and "older than baseline" in err and "--allow-reversed" in err
    store = db.open_store(home)
    with pytest.raises(MonitorError, match="older than baseline"):
        repository.compare_and_store(store, "night-watch", lambda *a: make_comparison(),
                                     write_outputs, baseline="3", current="1")
    stored = repository.compare_and_store(store, "night-watch", lambda *a: make_comparison(),
                                          write_outputs, baseline="3", current="1",
                                          allow_reversed=True)
    hist = repository.history(store, "night-watch")
    entry = next(e for e in hist.entries if e.comparison_id == stored.id)
    assert entry.series == "other"  # never mixed into the since-first or scan-to-scan reading


def test_history_reads_a_stable_rescan_as_stable(tmp_path: Path) -> None:
    home, _cid = _home_with_comparison(tmp_path)
    store = db.open_store(home)
    repository.compare_and_store(store, "night-watch", lambda *a: make_comparison(regions=()),
                                 write_outputs, baseline="2", current="3")
    hist = ok_json(home, "history", "night-watch")
    words = [c["wording"] for c in hist["comparisons"]]
    assert words[0].startswith("changed since the first scan: 3 regions")
    assert words[1] == "stable since the last scan"
    assert hist["trend"] != "falling"
    assert hist["summary"].startswith("stable since the last scan")


def test_unknown_slug_suggests_and_never_invites_a_duplicate(tmp_path: Path) -> None:
    home, _cid = _home_with_comparison(tmp_path)
    code, _out, err = invoke(home, "history", "nightwatch")
    assert code == 1 and "did you mean 'night-watch'" in err
    assert "artwork add" not in err


def test_every_command_has_an_example_and_version(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("monitor ")
    commands = [["compare"], ["init"], ["ingest"], ["history"], ["scans"], ["report"],
                ["verify"], ["gc"], ["run"], ["schedule", "print"], ["artwork", "add"],
                ["artwork", "edit"], ["artwork", "list"], ["artwork", "show"],
                ["comparison", "annotate"], ["comparison", "show"], ["db", "upgrade"],
                ["db", "downgrade"], ["db", "current"], ["version"]]
    for args in commands:
        out = runner.invoke(cli.app, [*args, "--help"], terminal_width=200).stdout
        assert "Example" in out, args
        # plain boolean flags: no --x/--no-x pairs, no value shown after a flag
        assert "--no-force" not in out and "--json  <bool>" not in out, args
    assert APP is not None


def test_report_pdf_holds_loan_fields_and_the_examiner(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("pdftotext") is None:
        pytest.skip("needs pdftotext")
    home, cid = _home_with_comparison(tmp_path)
    ok_json(home, "comparison", "annotate", str(cid), "--examiner", "A. Registrar",
            "--condition", "Stable overall.", "--recommendations", "Fit for travel.")
    pdf = tmp_path / "r.pdf"
    ok_json(home, "report", str(cid), "-o", str(pdf))
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], check=True,
                                   capture_output=True, text=True).stdout.split())
    for expected in ("SK-C-5", "City of Amsterdam", "gilt, original", "A. Registrar",
                     "Stable overall.", "Fit for travel.", "Signature"):
        assert expected in text, expected
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True,
                          text=True).stdout
    assert "Condition report: The Night Watch" in info and "A. Registrar" in info
    assert "Tagged:          yes" in info
