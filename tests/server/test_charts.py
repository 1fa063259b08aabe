"""Which series the demonstrator's chart shows when the rows hold several."""

from __future__ import annotations

import pandas as pd

from demos.server.charts import build_chart


def counters_frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    days = pd.date_range("2019-07-01", periods=30).strftime("%Y-%m-%d")
    data = pd.DataFrame(
        {
            "compteur": [664] * 30 + [745] * 20 + [881] * 10,
            "jour": list(days) + list(days[:20]) + list(days[:10]),
            "comptage": list(range(100, 160)),
        }
    )
    predictions = pd.DataFrame(
        {"attendu": data["comptage"] * 1.0, "anomalie": [False] * 59 + [True], "score": 0.1}
    )
    return data, predictions


def test_an_integer_identifier_splits_the_series_not_the_dates() -> None:
    data, predictions = counters_frame()
    chart = build_chart("detection-anomalies", data, predictions, ["compteur", "jour", "comptage"])
    assert chart is not None
    assert "compteur = « 664 »" in chart.caption and "3 séries" in chart.caption
    assert "« comptage »" in chart.caption  # the observed values, not the constant identifier


def test_a_text_identifier_wins_and_a_count_is_never_a_key() -> None:
    data, predictions = counters_frame()
    data["cantine_nom"] = data["compteur"].map({664: "A", 745: "B", 881: "C"})
    chart = build_chart(
        "prevision-serie-temporelle", data, predictions, ["cantine_nom", "jour", "comptage"]
    )
    assert "cantine_nom = « A »" in chart.caption
    small = data.head(12)[["jour", "comptage"]]
    chart = build_chart(
        "prevision-serie-temporelle", small, predictions.head(12), ["jour", "comptage"]
    )
    assert chart is None or "Série affichée" not in chart.caption
