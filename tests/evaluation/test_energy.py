"""evaluation.energy: the cost of a run, computed by hand."""

from __future__ import annotations

import math

import pytest

from evaluation.energy import EnergyFactors, Footprint, footprint

DEFAULTS = EnergyFactors()


def test_the_defaults_are_the_documented_ones() -> None:
    assert EnergyFactors(10.0, 0.375, 1.5, 52.0) == DEFAULTS


def test_one_core_hour_and_no_memory() -> None:
    # 3600 s × 10 W = 10 Wh; × PUE 1.5 = 15 Wh; 15 Wh = 0.015 kWh × 52 g = 0.78 g
    result = footprint(3600, 0, 120, DEFAULTS)
    assert result.energy_wh == pytest.approx(15.0)
    assert result.co2e_g == pytest.approx(0.78)


def test_memory_held_for_the_sandboxs_lifetime() -> None:
    # 2 GB × 0.375 W/GB = 0.75 W for 2 h = 1.5 Wh; no CPU; × 1.5 = 2.25 Wh; × 52 g/kWh = 0.117 g
    result = footprint(0, 2_000_000_000, 7200, DEFAULTS)
    assert result.energy_wh == pytest.approx(2.25)
    assert result.co2e_g == pytest.approx(0.117)


def test_cpu_and_memory_add_up_with_other_factors() -> None:
    factors = EnergyFactors.of(
        cpu_watts_per_core=4.0, memory_watts_per_gb=0.5, pue=1.2, carbon_intensity_g_per_kwh=100.0
    )
    # CPU: 90 s × 4 W = 360 J = 0.1 Wh. Memory: 0.5 GB × 0.5 W × 360 s = 90 J = 0.025 Wh.
    # (0.1 + 0.025) × 1.2 = 0.15 Wh = 0.00015 kWh × 100 g = 0.015 g
    result = footprint(90, 500_000_000, 360, factors)
    assert result == Footprint(pytest.approx(0.15), pytest.approx(0.015))


def test_an_unknown_peak_counts_no_memory() -> None:
    assert footprint(36, None, 3600, DEFAULTS) == footprint(36, 0, 3600, DEFAULTS)
    assert footprint(36, None, 3600, DEFAULTS).energy_wh == pytest.approx(0.15)


def test_nothing_used_costs_nothing() -> None:
    assert footprint(0, None, 0, DEFAULTS) == Footprint(0.0, 0.0)


@pytest.mark.parametrize(
    ("cpu", "peak", "duration"),
    [(-1, 0, 0), (math.nan, 0, 0), (math.inf, 0, 0), (0, -1, 0), (0, 0, -5), (0, 0, math.nan)],
)
def test_impossible_figures_are_refused(cpu: float, peak: int, duration: float) -> None:
    with pytest.raises(ValueError):
        footprint(cpu, peak, duration, DEFAULTS)


@pytest.mark.parametrize(
    "fields",
    [
        {"cpu_watts_per_core": -1.0},
        {"memory_watts_per_gb": math.nan},
        {"pue": 0.9},
        {"carbon_intensity_g_per_kwh": -52.0},
        {"pue": True},
    ],
)
def test_impossible_factors_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EnergyFactors(**fields)
