"""The demonstrator's JSON API: MLflow scoring-server payloads, in-process."""

from __future__ import annotations

import pytest


def test_dataframe_records_and_split_give_the_same_predictions(demo_client) -> None:
    client = demo_client("ok")
    records = client.post("/predict", json={"dataframe_records": [{"x": 1}, {"x": 2.5}]})
    split = client.post(
        "/predict", json={"dataframe_split": {"columns": ["x"], "data": [[1], [2.5]]}}
    )
    assert records.status_code == split.status_code == 200
    assert records.json() == split.json() == {"predictions": [{"y": 2.0}, {"y": 5.0}]}


def test_dates_text_and_booleans_come_back_as_json(demo_client) -> None:
    answer = demo_client("series").post(
        "/predict",
        json={
            "dataframe_records": [
                {"jour": "2024-03-04", "site": "Gare", "comptage": 500},
                {"jour": "2024-03-09", "site": "Gare", "comptage": 104},
            ]
        },
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "predictions": [{"prevu": 124.0, "anomalie": True}, {"prevu": 104.0, "anomalie": False}]
    }


def test_non_dataframe_output_is_a_plain_list(demo_client) -> None:
    answer = demo_client("wrong_shape").post("/predict", json={"dataframe_records": [{"x": 1}]})
    assert answer.status_code == 500
    assert answer.json()["message"].startswith(
        "Le modèle a renvoyé 2 prédiction(s) pour 1 ligne(s)"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [1, 2]}, "Format non reconnu"),
        ({"dataframe_records": [1, 2]}, "doit être une liste d'objets"),
        ({"dataframe_split": {"columns": ["x"]}}, "doit contenir « columns » et « data »"),
        ({"dataframe_split": {"columns": ["x", "y"], "data": [[1]]}}, "mal formé"),
        ({"dataframe_records": []}, "aucune ligne"),
        ({"dataframe_records": [{"z": 1}]}, "Colonne(s) manquante(s) : x"),
        ({"dataframe_records": [{"x": "abc"}]}, "valeurs invalides enregistrement 1 : « abc »"),
        ({"dataframe_records": [{"x": None}]}, "valeurs manquantes (enregistrement 1)"),
        ([1, 2, 3], "Format non reconnu"),
    ],
)
def test_bad_payloads_get_a_400_with_a_message(demo_client, body, message) -> None:
    answer = demo_client("ok").post("/predict", json=body)
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "BAD_REQUEST"
    assert message in answer.json()["message"]


def test_invalid_json_and_oversized_bodies(demo_client) -> None:
    client = demo_client("ok", max_upload_bytes=100, max_rows=3)
    answer = client.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400 and "pas du JSON valide" in answer.json()["message"]
    answer = client.post("/predict", json={"dataframe_records": [{"x": 1}] * 40})
    assert answer.status_code == 413 and answer.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    answer = client.post("/predict", json={"dataframe_records": [{"x": 1}] * 4})
    assert answer.status_code == 413 and "Trop de lignes" in answer.json()["message"]


def test_health_describes_the_model(demo_client) -> None:
    health = demo_client("series").get("/health").json()
    assert health["status"] == "ok"
    assert [c["name"] for c in health["model"]["inputs"]] == ["jour", "site", "comptage"]
    assert health["model"]["outputs"] == ["prevu", "anomalie"]
