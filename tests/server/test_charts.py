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


def test_date_axes_and_numbers_are_french() -> None:
    import pandas as pd

    from demos.server.charts import build_chart
    from demos.server.formats import axis_dates, axis_number

    days = pd.date_range("2017-11-06", "2018-01-31", freq="D")
    data = pd.DataFrame({"date": days})
    predictions = pd.DataFrame({"repas_prevus": [0.5 + i for i in range(len(days))]})
    chart = build_chart(
        "prevision-serie-temporelle",
        data,
        predictions,
        ["date"],
        labels={"repas_prevus": "Repas attendus", "date": "Jour"},
    )
    assert chart is not None
    assert "déc." in chart.svg and "Dec" not in chart.svg and "Nov" not in chart.svg
    assert "prévision (Repas attendus)" in chart.svg and ">Jour<" in chart.svg
    assert axis_number(1200) == "1\u202f200" and axis_number(0.5) == "0,5"
    stamps = [pd.Timestamp(d) for d in ("2017-11-01", "2017-12-01", "2018-01-01")]
    assert axis_dates(stamps) == ["nov. 2017", "déc.", "janv. 2018"]
    assert axis_dates([pd.Timestamp("2017-11-06"), pd.Timestamp("2017-11-07")]) == [
        "6 nov. 2017",
        "7 nov.",
    ]
