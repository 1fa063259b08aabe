"""The energy and carbon cost of running a model, from what its sandbox consumed (pure arithmetic).

The figures come from the runner's own accounting of the sandbox
(:meth:`runners.base.Runner.usage`: CPU time, peak memory) and the time the
sandbox lived; the factors turn them into watt-hours and grams of CO2e. The
method is CodeCarbon's (https://mlco2.github.io/codecarbon/methodology.html,
``docs/edit/methodology.rst`` of mlco2/codecarbon): energy = power × time,
summed over the hardware, CO2e = energy × the carbon intensity of the
electricity. It is an estimate, of the same order as CodeCarbon's own
fallback when no power counter can be read; it is never a measurement of
watts.

The factors and their defaults (``bibia/settings.py``: ``energy_*`` and
``carbon_intensity_g_per_kwh``):

- ``cpu_watts_per_core`` = 10 W: the power of one core kept busy. CodeCarbon
  reads RAPL counters when it can; without them (a sandbox never has them)
  it falls back to the CPU's thermal design power (its table of 2000+ Intel
  and AMD CPUs), taking 50 % of the TDP as a whole machine's average draw.
  One fully used core draws about its share of the TDP (TDP / cores): a few
  watts to about 10 W on current server and desktop CPUs (85 W over 8 cores
  is 10.6 W). 10 W per core-second used sits at the upper end, so the
  estimate errs on the side of more, not less. Energy: ``cpu_seconds`` (the
  sandbox's user + system time, all its processes) × this power.
- ``memory_watts_per_gb`` = 0.375 W/GB: CodeCarbon v2's ratio of 3 W per
  8 GB (its source: Crucial, "How much power does memory use?"). CodeCarbon
  v3 (2025) models a whole machine's RAM per module instead (5 W per DIMM,
  DIMMs guessed from the machine's memory size); a sandbox holds a share of a
  machine's memory, not modules, so the per-GB ratio is the one that can be
  attributed to it. Energy: the sandbox's peak memory (GB, 10^9 bytes) ×
  this power × the time the sandbox lived (its memory was held all along;
  the peak is an upper bound of what it held).
- ``pue`` = 1.5: power usage effectiveness, the data centre's total power
  over its IT power (cooling, power supply losses). CodeCarbon's own default
  is 1.0 (none counted); 1.5 is a typical value for an ordinary (not
  hyperscale) data centre such as a local government's, counted so that the
  cost is not understated. Both energies are multiplied by it.
- ``carbon_intensity_g_per_kwh`` = 52 gCO2e/kWh: France's (continental)
  average electricity mix, ADEME's Base Empreinte® factor "Électricité -
  mix moyen - consommation" (documentation:
  https://prod-basecarbonesolo.ademe-dri.fr/documentation/UPLOAD_DOC_FR/mix_electrique.htm;
  for a greenhouse gas assessment ADEME prescribes this average mix, not the
  per-use factors). The figure moves every year with the mix (secondary
  sources give 55 g for 2021 and 73 g for 2022 by other conventions); check
  the current Base Empreinte value when deploying. CodeCarbon would use Our
  World in Data's figure for the country, or 475 g (world average) without
  one: a deployment outside France sets its own.

Formulas (:func:`footprint`)::

    cpu_wh    = cpu_seconds × cpu_watts_per_core / 3600
    memory_wh = peak_bytes / 1e9 × memory_watts_per_gb × duration_s / 3600
    energy_wh = (cpu_wh + memory_wh) × pue
    co2e_g    = energy_wh / 1000 × carbon_intensity_g_per_kwh

Idle cores count nothing: the sandbox shares a machine, and only the CPU time
it used is its own. An unknown peak memory (a runner that cannot tell) counts
no memory energy: the result is then a lower bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EnergyFactors", "Footprint", "footprint"]

SECONDS_PER_HOUR = 3600.0
BYTES_PER_GB = 1e9
WH_PER_KWH = 1000.0


def _check(name: str, value: float, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} doit être un nombre, pas {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(
            f"{name} doit être un nombre fini supérieur ou égal à {minimum:g}, pas {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class EnergyFactors:
    """How CPU time and memory become energy, and energy carbon (see the module's sources).

    Attributes:
        cpu_watts_per_core: power of one fully used core, in W.
        memory_watts_per_gb: power of one GB of memory held, in W.
        pue: the data centre's power usage effectiveness (≥ 1).
        carbon_intensity_g_per_kwh: gCO2e per kWh of the electricity used.
    """

    cpu_watts_per_core: float = 10.0
    memory_watts_per_gb: float = 0.375
    pue: float = 1.5
    carbon_intensity_g_per_kwh: float = 52.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "cpu_watts_per_core",
            _check("cpu_watts_per_core", self.cpu_watts_per_core, minimum=0),
        )
        object.__setattr__(
            self,
            "memory_watts_per_gb",
            _check("memory_watts_per_gb", self.memory_watts_per_gb, minimum=0),
        )
        object.__setattr__(self, "pue", _check("pue", self.pue, minimum=1))
        object.__setattr__(
            self,
            "carbon_intensity_g_per_kwh",
            _check("carbon_intensity_g_per_kwh", self.carbon_intensity_g_per_kwh, minimum=0),
        )

    @classmethod
    def of(
        cls,
        *,
        cpu_watts_per_core: float,
        memory_watts_per_gb: float,
        pue: float,
        carbon_intensity_g_per_kwh: float,
    ) -> EnergyFactors:
        """The factors from plain numbers (the service passes its settings' ``energy_*`` values)."""
        return cls(cpu_watts_per_core, memory_watts_per_gb, pue, carbon_intensity_g_per_kwh)


@dataclass(frozen=True)
class Footprint:
    """What running the model cost.

    Attributes:
        energy_wh: electricity, in Wh (PUE included).
        co2e_g: greenhouse gases, in grams of CO2 equivalent.
    """

    energy_wh: float
    co2e_g: float


def footprint(
    cpu_seconds: float,
    peak_memory_bytes: int | None,
    duration_s: float,
    factors: EnergyFactors,
) -> Footprint:
    """The energy and CO2e of a sandbox that used ``cpu_seconds`` and held ``peak_memory_bytes`` for ``duration_s``.

    ``peak_memory_bytes`` None (unknown) counts no memory energy: a lower bound.

    Raises:
        ValueError: a negative or non-finite figure.
    """
    cpu = _check("cpu_seconds", cpu_seconds, minimum=0)
    duration = _check("duration_s", duration_s, minimum=0)
    peak = (
        0.0
        if peak_memory_bytes is None
        else _check("peak_memory_bytes", peak_memory_bytes, minimum=0)
    )
    cpu_wh = cpu * factors.cpu_watts_per_core / SECONDS_PER_HOUR
    memory_wh = peak / BYTES_PER_GB * factors.memory_watts_per_gb * duration / SECONDS_PER_HOUR
    energy_wh = (cpu_wh + memory_wh) * factors.pue
    return Footprint(energy_wh, energy_wh / WH_PER_KWH * factors.carbon_intensity_g_per_kwh)
