"""Accelerator profiles (`profiles/hardware/*.yaml`), one accelerator per file.

Peaks are DENSE tensor/matrix FLOP/s per accelerator (never the 2:4-sparsity figure); memory is the
vendor label; bandwidths are per accelerator with their direction in the field name. Every number
traces to the `source` list (shared reference hardware.md / hardware.yaml).
"""

from typing import Literal

from pydantic import Field

from planner.schemas.base import Fraction, NonNegativeFloat, PositiveFloat, StrictInput

Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4"]


class Price(StrictInput):
    kind: str = Field(description="on_demand, reserved, capacity_block_reserved, assumed_rental, ...")
    usd_per_hour: PositiveFloat
    provider: str
    as_of: str
    source: str


class HardwareProfile(StrictInput):
    schema_version: Literal[1] = 1
    kind: Literal["accelerator"] = "accelerator"
    name: str = Field(min_length=1, description="id used with --gpu, e.g. h100-sxm5-80gb")
    title: str
    vendor: str
    peak_tflops_dense: dict[Dtype, PositiveFloat | None] = Field(
        description="dense peak TFLOP/s (1e12 FLOP/s) per dtype; null = not supported or not published"
    )
    memory_gb: PositiveFloat = Field(description="device memory, vendor label (GB = 1e9 bytes unless memory_unit)")
    memory_unit: Literal["GB", "GiB"] = "GB"
    memory_bw_tbps: PositiveFloat = Field(description="memory bandwidth, TB/s (1e12 bytes/s)")
    scale_up_gbps_unidirectional: NonNegativeFloat | None = Field(
        description="scale-up (NVLink/IF/ICI) GB/s per accelerator, one direction, all links summed"
    )
    scale_up_domain: int | None = Field(default=None, ge=1, description="accelerators in one scale-up domain")
    scale_out_gbit_per_accelerator: NonNegativeFloat | None = Field(description="NIC Gbit/s per accelerator")
    accelerators_per_node: int = Field(ge=1)
    tdp_w: PositiveFloat | None = None
    price_usd_per_hour: PositiveFloat | None = Field(
        description="indicative default USD per accelerator-hour (which entry of `prices`, see price_note)"
    )
    price_note: str | None = None
    prices: list[Price] = Field(default_factory=list)
    mfu_prior: Fraction = Field(description="default steady-state training MFU for dense bf16 models")
    mfu_prior_source: str
    source: list[str] = Field(min_length=1)
    confidence: dict[str, str] = Field(default_factory=dict)
    notes: str | None = None

    def peak_flops_per_s(self, dtype: str) -> float:
        """Dense peak FLOP/s for a dtype; raises KeyError listing the dtypes this device has."""
        value = self.peak_tflops_dense.get(dtype)  # type: ignore[call-overload]
        if value is None:
            have = ", ".join(k for k, v in self.peak_tflops_dense.items() if v is not None)
            raise KeyError(f"{self.name} has no published dense {dtype} peak (has: {have})")
        return value * 1e12
