"""planner/calibrate_results.py helpers without fitting: units, curves, CBS rows, bootstrap draws."""

from __future__ import annotations

import pytest
import yaml

from planner import calibrate_results as cres


def test_units_are_honest_about_bytes(synthetic_results):
    u = cres.units_of(synthetic_results)
    assert u.byte_level and u.tokens == "training bytes" and u.loss.startswith("nats per byte (stdlib")
    tokens = [r.model_copy(update={"data": "/d/tokens.bin", "data_unit": None}) for r in synthetic_results]
    assert cres.units_of(tokens).loss.startswith("nats per token (/d/tokens.bin)")  # old lines: by suffix
    text = [r.model_copy(update={"data": "/d/corpus", "data_unit": None}) for r in synthetic_results]
    assert cres.units_of(text).byte_level


def test_curve_rows_write_every_evaluation_once(synthetic_results):
    rows = cres.curve_rows(synthetic_results)
    main = next(r for r in synthetic_results if r.kind == "ladder" and r.id == r.probe_id)
    mine = [row for row in rows if row["id"] == main.id]
    assert len(mine) == len(main.curve) and mine[-1]["phase"] == "post-decay"
    assert {row["phase"] for row in mine[:-1]} == {"stable"}
    branch = next(r for r in synthetic_results if r.probe_id == main.id and r.id != main.id)
    assert [row["phase"] for row in rows if row["id"] == branch.id] == ["post-decay"]  # its prefix is the main run's


def test_cbs_rows_take_d_from_the_smallest_batch(synthetic_results):
    rows = cres.cbs_rows(synthetic_results)
    assert rows
    for target in {r["target"] for r in rows}:
        group = [r for r in rows if r["target"] == target]
        assert len(group) >= cres.MIN_BATCHES
        ref = min(group, key=lambda r: r["batch_size_sequences"])
        assert {r["tokens_at_target"] for r in group} == {ref["steps_to_target"] * ref["batch_size_sequences"] * 128}
    assert len({r["tokens_at_target"] for r in rows}) == len({r["target"] for r in rows})  # one D per group
    assert cres.cbs_rows([r for r in synthetic_results if r.kind == "ladder"]) == []


def test_bootstrap_draws_written_only_when_they_are_laws():
    unc = {"samples": [[1.0, 2.0, 3.0, 0.3, 0.3], [1.0, 0.0, 3.0, 0.3, 0.3], [1.0, 2.0, 3.0, 0.0, 0.3]]}
    assert "2 of 3" in cres._usable_samples(unc, ())[0] and unc["samples"] == [[1.0, 2.0, 3.0, 0.3, 0.3]]
    unc = {"samples": [[1.0, 2.0, 3.0, 0.3, 0.3]]}
    assert cres._usable_samples(unc, ("unidentified: alpha spans 0-10",)) and "samples" not in unc


def test_law_records_what_it_was_fitted_on(tmp_path, synthetic_results):
    """provenance carries the D/N range, seq_len and vocab that `recommend` reads for its defaults."""
    cres.write_results(tmp_path, synthetic_results, date="2026-01-01", n_bootstrap=0, plots=False)
    prov = yaml.safe_load((tmp_path / "law.yaml").read_text())["provenance"]
    ladder = [r for r in synthetic_results if r.kind == "ladder"]
    low, high = prov["tokens_per_param"]
    assert low == pytest.approx(min(r.tokens / r.n_params for r in ladder))
    assert high == pytest.approx(max(r.tokens / r.n_params for r in ladder))
    assert prov["seq_len"] == ladder[0].seq_len and prov["vocab_size"] == ladder[0].vocab_size
