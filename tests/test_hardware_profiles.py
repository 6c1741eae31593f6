"""Every shipped hardware and batch-law profile loads and validates; malformed ones name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from planner import profiles
from planner.errors import ConfigError
from planner.schemas.batch import BatchLawProfile
from planner.schemas.hardware import HardwareProfile

ROOT = Path(__file__).resolve().parents[1] / "profiles"
HARDWARE = sorted((ROOT / "hardware").glob("*.yaml"))
BATCH = sorted((ROOT / "batch").glob("*.yaml"))

# every accelerator in the shared reference hardware.yaml
REFERENCE_IDS = {
    "a100-sxm4-40gb",
    "a100-sxm4-80gb",
    "a100-pcie-80gb",
    "h100-sxm5-80gb",
    "h100-pcie-80gb",
    "h100-nvl-94gb",
    "h200-sxm-141gb",
    "b200-hgx",
    "gb200-nvl72-gpu",
    "l40s",
    "a10g",
    "l4",
    "rtx-4090",
    "mi250x",
    "mi300x",
    "mi325x",
    "tpu-v4",
    "tpu-v3",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "gaudi2",
    "gaudi3",
    "trainium1",
    "trainium2",
    "h800-sxm5",
}


def test_one_file_per_reference_accelerator():
    assert {p.stem for p in HARDWARE} == REFERENCE_IDS


@pytest.mark.parametrize("path", HARDWARE, ids=lambda p: p.stem)
def test_hardware_profile_valid(path):
    profile = profiles.load("hardware", str(path), HardwareProfile).profile
    assert profile.name == path.stem
    assert profile.peak_flops_per_s("bf16") > 0  # every device has a dense bf16 peak
    assert profile.source and profile.mfu_prior_source
    if profile.price_usd_per_hour is not None:  # the default is one of the listed entries
        assert profile.price_usd_per_hour in {p.usd_per_hour for p in profile.prices}
    assert profile.price_note


@pytest.mark.parametrize("path", HARDWARE, ids=lambda p: p.stem)
def test_hardware_numbers_are_floats_not_strings(path):
    """PyYAML reads 1e18 as a string: shipped numbers must load as numbers."""
    data = yaml.safe_load(path.read_text())
    assert all(v is None or isinstance(v, float) for v in data["peak_tflops_dense"].values())
    for key in ("memory_gb", "memory_bw_tbps", "mfu_prior"):
        assert isinstance(data[key], float), key


@pytest.mark.parametrize("path", BATCH, ids=lambda p: p.stem)
def test_batch_profile_valid(path):
    profile = profiles.load("batch", str(path), BatchLawProfile).profile
    assert profile.name == path.stem
    for law in profile.laws:
        assert law.input_units and law.output_unit and law.source


def test_batch_profiles_shipped():
    assert {p.stem for p in BATCH} == {"zhang-2024", "kaplan-2020", "deepseek-2024", "steplaw-2025"}


def test_dense_peaks_known_values():
    """Spot checks against hardware.md §2 (dense, never the sparsity figure)."""
    load = lambda name: profiles.load("hardware", str(ROOT / "hardware" / f"{name}.yaml"), HardwareProfile).profile
    assert load("h100-sxm5-80gb").peak_tflops_dense["bf16"] == 989.4
    assert load("h100-sxm5-80gb").peak_tflops_dense["int8"] == 1978.9
    assert load("a100-sxm4-80gb").peak_tflops_dense["int8"] == 624.0
    assert load("mi300x").peak_tflops_dense["bf16"] == 1307.4
    assert load("tpu-v4").memory_unit == "GiB"


def test_malformed_profile_names_field(tmp_path):
    data = yaml.safe_load((ROOT / "hardware" / "h100-sxm5-80gb.yaml").read_text())
    data["mfu_prior"] = 1.5
    data["peak_tflops_dense"]["bf17"] = 1.0
    with pytest.raises(ValidationError) as info:
        HardwareProfile.model_validate(data)
    locs = {err["loc"] for err in info.value.errors()}
    assert ("mfu_prior",) in locs and ("peak_tflops_dense", "bf17", "[key]") in locs
    bad = tmp_path / "bad-gpu.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"bad-gpu\.yaml.*(mfu_prior|peak_tflops_dense)"):
        profiles.load("hardware", str(bad), HardwareProfile)


def test_malformed_batch_profile_names_field(tmp_path):
    data = yaml.safe_load((ROOT / "batch" / "zhang-2024.yaml").read_text())
    del data["laws"][0]["input_units"]
    data["definition"] = "critical"
    with pytest.raises(ValidationError) as info:
        BatchLawProfile.model_validate(data)
    locs = {err["loc"] for err in info.value.errors()}
    assert ("definition",) in locs and ("laws", 0, "input_units") in locs
    bad = tmp_path / "bad-law.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"bad-law\.yaml"):
        profiles.load("batch", str(bad), BatchLawProfile)


def test_batch_schema_rules():
    data = yaml.safe_load((ROOT / "batch" / "zhang-2024.yaml").read_text())
    data["laws"][0]["sequence_length"] = None
    with pytest.raises(ValidationError, match="sequence_length"):
        BatchLawProfile.model_validate(data)
    data = yaml.safe_load((ROOT / "batch" / "zhang-2024.yaml").read_text())
    del data["overhead"]
    with pytest.raises(ValidationError, match="overhead"):
        BatchLawProfile.model_validate(data)
    profile = BatchLawProfile.model_validate(yaml.safe_load((ROOT / "batch" / "deepseek-2024.yaml").read_text()))
    assert profile.law("lr").exponents == {"C": -0.125}
    with pytest.raises(KeyError, match="has: b_opt, lr"):
        profile.law("cbs")


def test_a_number_written_as_a_boolean_is_refused():
    """pydantic's lax mode reads `true` as 1; every schema (Strict) refuses it for a number field."""
    data = yaml.safe_load((profiles.builtin_dir() / "hardware" / "h100-sxm5-80gb.yaml").read_text())
    data["mfu_prior"] = True
    with pytest.raises(ValidationError, match="Input should be a number, not true"):
        HardwareProfile.model_validate(data)
