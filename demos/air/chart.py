"""The evaluation chart: forecasts vs observations, and a reliability diagram."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from demos.air import evaluate as ev
from demos.air.data import TARGET
from demos.air.pyfunc_model import POLLUTANTS

# Test seasons shown: the winter/spring PM10 season and the summer O3 season.
SEASONS = {"PM10": ("2023-12-01", "2024-04-30"), "O3": ("2022-06-01", "2022-08-31")}
_LABELS = {"PM10": "PM10, moyenne journalière", "O3": "O3, maximum horaire"}


def draw(test: pd.DataFrame, path: Path) -> None:
    """Write the three-panel evaluation chart to ``path`` (PNG).

    Args:
        test: the test rows of :func:`demos.air.protocol.run` (with
            ``concentration_prevue``, ``probabilite_depassement``,
            ``p_persistance``, ``evenement``).
        path: where to write the image.
    """
    fig, axes = plt.subplots(3, 1, figsize=(10, 12), gridspec_kw={"height_ratios": [1, 1, 1.1]})
    for ax, (pollutant, (start, end)) in zip(axes[:2], SEASONS.items()):
        rows = test[(test["polluant"] == pollutant) & test["date"].between(start, end)]
        target_day = pd.to_datetime(rows["date"]) + pd.Timedelta(days=1)
        ax.plot(target_day, rows[TARGET], color="black", lw=1.4, label="observé")
        ax.plot(
            target_day,
            rows["concentration_prevue"],
            color="tab:blue",
            lw=1.2,
            label="prévu la veille (modèle)",
        )
        ax.plot(
            target_day,
            rows["concentration_jour"],
            color="tab:gray",
            lw=0.9,
            ls=":",
            label="persistance (valeur de la veille)",
        )
        ax.axhline(
            POLLUTANTS[pollutant],
            color="tab:red",
            ls="--",
            lw=1,
            label=f"seuil d'information ({POLLUTANTS[pollutant]:.0f} µg/m³)",
        )
        ax.set_title(
            f"{_LABELS[pollutant]} : prévision à J+1 et observation ({start[:7]} à {end[:7]})"
        )
        ax.set_ylabel("µg/m³")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)

    ax = axes[2]
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=1, label="fiabilité parfaite")
    for column, label, color in [
        ("probabilite_depassement", "modèle", "tab:blue"),
        ("p_persistance", "persistance calibrée", "tab:gray"),
    ]:
        table = ev.reliability(test[column], test["evenement"])
        ax.plot(
            table["probabilite_moyenne"],
            table["frequence_observee"],
            marker="o",
            color=color,
            label=label,
        )
        for _, row in table.iloc[
            1:
        ].iterrows():  # the first bin (thousands of calm days) would clutter
            ax.annotate(
                f"n={int(row['effectif'])}",
                (row["probabilite_moyenne"], row["frequence_observee"]),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color=color,
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("probabilité de dépassement prévue")
    ax.set_ylabel("fréquence de dépassement observée")
    ax.set_title("Diagramme de fiabilité (jeu de test 2022–2024, PM10 et O3)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)

    fig.suptitle("Pics de pollution, Lille : évaluation sur données synthétiques", fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
