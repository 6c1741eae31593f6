"""report.md, law.yaml and the summary of a results directory: the entropy floor, boundary fits, cbs.png."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import yaml

from planner import calibrate_fits as cfits
from planner import calibrate_report as crep
from planner import calibrate_results as cres

ZIPF_H = 2.9878784  # calibrate.data.zipf_entropy(64, 1.2): synthetic:zipf's default source


def _on(results, data, unit="tokens"):
    return [r.model_copy(update={"data": data, "data_unit": unit}) for r in results]


def _write(tmp_path, results, **kw):
    return cres.write_results(tmp_path, results, date="2025-01-01", n_bootstrap=0, plots=False, **kw)


def test_known_entropy_comes_from_the_data_string():
    from calibrate import data

    assert cfits.known_entropy("synthetic:zipf") == pytest.approx(ZIPF_H)
    big = "synthetic:zipf?vocab=32&a=1.5&order=3&tokens=100000000"  # rebuilt small: H needs only vocab and a
    assert cfits.known_entropy(big) == pytest.approx(data.zipf_entropy(32, 1.5))
    assert cfits.known_entropy("stdlib") is None and cfits.known_entropy("/d/tokens.bin") is None
    assert cfits.known_entropy("synthetic:markov") is None


def test_floor_flags_e_or_its_interval_below_the_entropy():
    units = cres.Units("nats per token", "training tokens", False, "synthetic:zipf", ZIPF_H)
    fit = lambda E, lo=None, hi=None: SimpleNamespace(
        E=E, intervals=None if lo is None else {"params": {"E": {"low": lo, "high": hi}}})
    assert not cfits.floor_flags(fit(3.1, 2.5, 3.4), units)  # E above; the interval may reach below
    assert not cfits.floor_flags(fit(0.995 * ZIPF_H), units)  # within the 1% tolerance
    (flag,) = cfits.floor_flags(fit(2.87, 1.30, 2.96), units)  # the audit's fit
    assert flag.startswith("below the floor: E = 2.87 (95% interval 1.3–2.96)")
    assert "2.988 nats per token" in flag and "fails the recovery check" in flag
    assert cfits.floor_flags(fit(3.0, 2.0, 2.9), units)  # E passes, its whole interval does not
    assert not cfits.floor_flags(fit(1.0), dataclasses.replace(units, entropy_nats=None))  # real data: no floor


def test_synthetic_source_reports_its_floor_and_flags_e(tmp_path, synthetic_results):
    w = _write(tmp_path, _on(synthetic_results, "synthetic:zipf"))  # the fixture's E is 0.9, far below 2.988
    report = (tmp_path / "report.md").read_text()
    assert "**Known entropy floor**: the synthetic source's exact entropy rate is 2.988 nats per token" in report
    assert "**fails the recovery check**" in report and "- **below the floor: E = " in report
    law = yaml.safe_load((tmp_path / "law.yaml").read_text())
    assert law["provenance"]["entropy_floor_nats"] == pytest.approx(ZIPF_H)
    assert any(f.startswith("below the floor") for f in law["provenance"]["flags"])
    assert "exact entropy rate is 2.988" in law["notes"] and "FLAG below the floor" in law["notes"]
    assert any(x.startswith("loss law: below the floor") for x in w.warnings)  # the CLI prints these on stderr
    summary = w.to_dict()
    assert summary["units"]["entropy_nats"] == pytest.approx(ZIPF_H)
    assert summary["recovery_check"]["passes"] is False
    assert summary["recovery_check"]["E"] == pytest.approx(summary["loss_law"]["E"])


def test_floor_below_e_passes(tmp_path, synthetic_results):
    w = _write(tmp_path, _on(synthetic_results, "synthetic:zipf?vocab=2"))  # H = 0.61 < E = 0.9
    report = (tmp_path / "report.md").read_text()
    assert "Known entropy floor" in report and "passes the recovery check" in report
    assert "below the floor" not in report and w.to_dict()["recovery_check"]["passes"] is True


def test_boundary_fit_is_called_one_in_the_report(tmp_path, synthetic_results):
    w = _write(tmp_path, synthetic_results)
    assert "entropy floor" not in (tmp_path / "report.md").read_text().lower()  # real data: no floor stated
    assert w.to_dict()["recovery_check"] is None
    assert "entropy_floor_nats" not in yaml.safe_load((tmp_path / "law.yaml").read_text())["provenance"]
    flag = ("boundary: alpha = 10 sits on the fitter's upper bound 10 (box [0, 10]), with A = 1.7e+38: a boundary "
            "solution, not an interior optimum")
    w.law.fit = dataclasses.replace(w.law.fit, flags=(flag, "unidentified: alpha spans 0–10 over the bootstrap"))
    report = crep.report_markdown(w, synthetic_results, None, [])
    assert f"- **{flag}**" in report
    assert "**Boundary solution**: alpha sits on the fitter's bound" in report
    assert "E sits at its boundary (0)" not in report


def test_cbs_plot_has_plain_ticks_and_loss_units(monkeypatch, tmp_path, synthetic_results):
    figures = []
    monkeypatch.setattr(crep, "_save", lambda fig, plt, path: figures.append(fig))
    units = cres.units_of(synthetic_results)
    batch = cres.fit_batch(synthetic_results, units=units)
    crep.plot_cbs(tmp_path / "cbs.png", batch, units)
    (ax,) = figures[0].axes
    figures[0].canvas.draw()
    sizes = sorted({r["batch_size_sequences"] for r in batch.rows})
    x = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert x == [f"{b:g}" for b in sizes]  # the measured batch sizes, not "3×10⁰ 4×10⁰ 6×10⁰"
    labels = x + [t.get_text() for t in ax.get_yticklabels() + ax.get_xminorticklabels() + ax.get_yminorticklabels()]
    assert not any("10^" in s or "times" in s or "×" in s for s in labels)
    assert [t.get_text() for t in ax.get_yticklabels() if t.get_text()]  # the steps axis still has numbers
    assert ax.get_legend().get_title().get_text() == "EWA loss target, nats per byte"


def test_suggested_mfu_is_the_6n_one_recommend_divides_by(tmp_path, synthetic_results):
    """recommend's wall-clock is 6·N·D/(GPUs·peak·MFU): the report must suggest the 6N MFU of the
    largest ladder probe, not the attention-inclusive one (which understated time by 1.17-1.6x)."""
    w = _write(tmp_path, synthetic_results)
    row = lambda probe, params, mfu, mfu_6n: {
        "probe": probe, "params": params, "n_procs": 1, "device": "cuda", "tokens_per_s": 1e6,
        "flops_per_s": 1e14, "mfu": mfu, "mfu_6n": mfu_6n, "kind": "ladder"}
    mfu = [row("L1", 3_500_000, 0.30, 0.19), row("L6", 203_000_000, 0.460, 0.395)]
    report = crep.report_markdown(w, synthetic_results, None, mfu)
    assert "--mfu 0.395" in report and "--mfu 0.460" not in report
