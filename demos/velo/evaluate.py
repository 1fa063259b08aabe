"""Evaluation protocol: clean series, injected anomalies, the baseline, metrics.

The baseline (:func:`baseline_flags`) and the task's metrics (:func:`prf`,
:func:`by_type`) are defined once, in :mod:`evaluation.tasks.velo`, which the
platform scores every model with; they are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demos.velo.pyfunc_model import zero_runs
from evaluation.tasks.velo import baseline_flags, by_type, prf

__all__ = [
    "InjectionSpec",
    "baseline_flags",
    "by_type",
    "clean_series",
    "dice",
    "family",
    "inject",
    "nantes_comparable",
    "prf",
]

MIN_CLEAN_DAYS = 150
EVENTS_PER_COUNTER = {"panne": 3, "derive": 3, "pic": 4}
GAP_DAYS = 7
RATIO_NANTES = 3.0


def clean_series(year: pd.DataFrame) -> pd.DataFrame:
    """The clean series of one year, into which anomalies are injected.

    A day is kept when its count is present and positive, neither neighbour
    is a zero or a missing day (partial days around outages), Nantes'
    published detector did not flag it, and its count is within a factor 3
    of Nantes' published ``Valeur modélisée`` (an outside reference: neither
    the evaluated model nor the baseline decides what is clean). Counters with fewer than ``MIN_CLEAN_DAYS``
    clean days in the year are dropped (in 2019: the long outages of 785,
    947 and 948).

    Args:
        year: rows of one year from :func:`demos.velo.data.load_daily`.

    Returns:
        Columns ``compteur``, ``jour``, ``comptage`` (clean days only).
    """
    keep = []
    for _, part in year.groupby("compteur"):
        s = part.set_index("jour")["comptage"]
        grid = s.reindex(pd.date_range(s.index.min(), s.index.max(), freq="D"))
        bad = grid.isna() | grid.eq(0)
        near = bad | bad.shift(1, fill_value=True) | bad.shift(-1, fill_value=True)
        ok = (~near).reindex(s.index).to_numpy() & ~part["drapeau_nantes"].to_numpy()
        ratio = (part["comptage"] / part["valeur_modelisee"].clip(lower=1)).to_numpy()
        ok &= (ratio >= 1 / RATIO_NANTES) & (ratio <= RATIO_NANTES)
        if ok.sum() >= MIN_CLEAN_DAYS:
            keep.append(part.loc[ok, ["compteur", "jour", "comptage"]])
    return pd.concat(keep, ignore_index=True)


@dataclass(frozen=True)
class InjectionSpec:
    """One draw of the injection protocol: what is injected, how much, how big.

    Attributes:
        seed: numpy seed of the draw (positions, lengths, factors).
        events: per counter, how many events of each kind
            (``panne``, ``derive``, ``pic``).
        panne_jours: shortest and longest outage (days at zero), inclusive.
        derive_jours: shortest and longest sensor drift (days), inclusive.
        derive_facteur: range of the drift factor (drawn log-uniformly; the
            counts are multiplied or divided by it, one or the other at random).
        pic_facteur: range of the spike factor (one day multiplied, log-uniform).
        ecart_jours: least number of days between two events of a counter.
        melange: name of the mix of kinds (for reports).
    """

    seed: int
    events: tuple[tuple[str, int], ...] = (("panne", 3), ("derive", 3), ("pic", 4))
    panne_jours: tuple[int, int] = (2, 10)
    derive_jours: tuple[int, int] = (3, 10)
    derive_facteur: tuple[float, float] = (2.0, 10.0)
    pic_facteur: tuple[float, float] = (3.0, 10.0)
    ecart_jours: int = GAP_DAYS
    melange: str = "equilibre"


#: The mixes of kinds the family draws from (events per counter).
MIXES: dict[str, tuple[tuple[str, int], ...]] = {
    "equilibre": (("panne", 3), ("derive", 3), ("pic", 4)),
    "pannes": (("panne", 5), ("derive", 1), ("pic", 1)),
    "derives": (("panne", 1), ("derive", 5), ("pic", 1)),
    "pics": (("panne", 1), ("derive", 1), ("pic", 6)),
    "rares": (("panne", 1), ("derive", 1), ("pic", 1)),
}
#: The ranges each draw of the family picks from (one of each, at random).
PANNE_RANGES = ((1, 3), (2, 10), (5, 20))
DERIVE_RANGES = ((2, 5), (3, 10), (7, 21))
DERIVE_FACTORS = ((1.5, 3.0), (2.0, 10.0), (3.0, 10.0))
PIC_FACTORS = ((2.0, 5.0), (3.0, 10.0))
GAPS = (3, 7, 14)


def family(base_seed: int, n: int) -> list[InjectionSpec]:
    """The injection protocol as a family of ``n`` draws.

    Draw 0 is the original protocol (``InjectionSpec(base_seed)``: 3 outages
    of 2-10 days, 3 drifts of 3-10 days by 2-10, 4 spikes by 3-10, 7 days
    apart). Each other draw ``i`` has its own seed and picks, with a
    generator seeded by ``(base_seed, i)``, a mix of kinds (the mixes in
    turn) and one range of each of: outage length, drift length, drift
    factor, spike factor, gap between events.

    Args:
        base_seed: the family's seed (the year, by convention).
        n: number of draws (at least 1).

    Returns:
        The draws, reproducible from ``base_seed``.
    """
    specs = [InjectionSpec(base_seed)]
    names = list(MIXES)
    for i in range(1, n):
        rng = np.random.default_rng((base_seed, i))
        mix = names[i % len(names)]
        specs.append(
            InjectionSpec(
                seed=int(rng.integers(0, 2**31 - 1)),
                events=MIXES[mix],
                panne_jours=_pick(rng, PANNE_RANGES),
                derive_jours=_pick(rng, DERIVE_RANGES),
                derive_facteur=_pick(rng, DERIVE_FACTORS),
                pic_facteur=_pick(rng, PIC_FACTORS),
                ecart_jours=_pick(rng, GAPS),
                melange=mix,
            )
        )
    return specs


def _pick(rng: np.random.Generator, options: tuple):
    return options[int(rng.integers(0, len(options)))]


def inject(clean: pd.DataFrame, seed: int | InjectionSpec) -> pd.DataFrame:
    """Inject known anomalies into clean series (seeded, reproducible).

    Per counter, the events of the draw (by default 3 outages, runs of 2-10
    zero days; 3 sensor drifts, 3-10 days multiplied or divided by a factor
    drawn log-uniformly in [2, 10]; 4 isolated spikes, one day multiplied by
    3-10), at random places, at least ``ecart_jours`` apart.

    Args:
        clean: output of :func:`clean_series`.
        seed: a numpy seed (the original protocol with that seed) or one
            draw of :func:`family`.

    Returns:
        ``clean`` with modified ``comptage`` plus ``anomalie_injectee`` (bool),
        ``type_injection`` ("", "panne", "derive", "pic") and ``evenement``
        (event number, 0 for untouched days).
    """
    spec = seed if isinstance(seed, InjectionSpec) else InjectionSpec(int(seed))
    rng = np.random.default_rng(spec.seed)
    out = clean.copy()
    comptage = out["comptage"].to_numpy(dtype=float).copy()
    injected = np.zeros(len(out), dtype=bool)
    kind_of = np.full(len(out), "", dtype=object)
    event_of = np.zeros(len(out), dtype=np.int64)
    jours = out["jour"].to_numpy()
    event = 0
    pad = np.timedelta64(spec.ecart_jours, "D")
    for _, pos in sorted(out.groupby("compteur", sort=True).indices.items()):
        days = jours[pos]
        taken = np.zeros(len(pos), dtype=bool)
        kinds = [k for k, n in spec.events for _ in range(n)]
        for kind in rng.permutation(kinds):
            # Both lengths are drawn every time (the original protocol's sequence).
            lengths = {
                "panne": rng.integers(spec.panne_jours[0], spec.panne_jours[1] + 1),
                "derive": rng.integers(spec.derive_jours[0], spec.derive_jours[1] + 1),
                "pic": 1,
            }
            length = lengths[kind]
            for _ in range(200):
                start = days[rng.integers(0, len(days))]
                end = start + np.timedelta64(int(length) - 1, "D")
                inside = (days >= start) & (days <= end)
                near = (days >= start - pad) & (days <= end + pad)
                if inside.any() and not (taken & near).any():
                    break
            else:
                continue
            taken |= inside
            idx = pos[inside]
            counts = comptage[idx]
            if kind == "panne":
                new = counts * 0.0
            elif kind == "derive":
                lo, hi = spec.derive_facteur
                factor = np.exp(rng.uniform(np.log(lo), np.log(hi)))
                new = np.round(counts * factor if rng.random() < 0.5 else counts / factor)
            else:
                lo, hi = spec.pic_facteur
                new = np.round(counts * np.exp(rng.uniform(np.log(lo), np.log(hi))))
            comptage[idx] = new
            injected[idx] = True
            kind_of[idx] = kind
            event += 1
            event_of[idx] = event
    out["comptage"] = comptage
    out["anomalie_injectee"] = injected
    out["type_injection"] = kind_of
    out["evenement"] = event_of
    return out


def dice(a, b) -> float:
    """Agreement on positives, 2|A and B| / (|A| + |B|) (the symmetric F1)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    return float(2 * np.sum(a & b) / max(a.sum() + b.sum(), 1))


def nantes_comparable(year: pd.DataFrame) -> pd.Series:
    """Days on which Nantes' published flag is defined: an observed count
    outside runs of 3+ zeros (Nantes sets those to NA before its model)."""
    mask = year["comptage"].notna().copy()
    for _, part in year.groupby("compteur"):
        s = part.set_index("jour")["comptage"].dropna()
        runs = zero_runs(s)
        mask.loc[part.index[part["comptage"].notna()]] &= ~runs.to_numpy()
    return mask
