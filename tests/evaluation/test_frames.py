"""French CSV files, typing, the guard on a model's answer, canonical CSV: on real bytes."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest

from domain.errors import InvalidData, InvalidPredictions, PayloadTooLarge
from evaluation import frames
from evaluation.task import Column
from evaluation.tasks import generic

LIMITS = {"max_bytes": 1_000_000, "max_rows": 1000}
COLUMNS = (
    Column("date", "date"),
    Column("cantine_nom", "string"),
    Column("reel", "long"),
    Column("taux", "double", required=False),
    Column("greve", "boolean", required=False),
)


def read(text: str | bytes, **limits: int) -> pd.DataFrame:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return frames.read_csv(data, **{**LIMITS, **limits})


def test_french_excel_file_semicolon_decimal_comma_dates_bom():
    data = "\ufeffdate;cantine_nom;reel;taux;greve\r\n04/09/2017;Bottière;120;1,5;non\r\n05/09/2017;Bottière;98;2;oui\r\n"
    frame = read(data)
    assert list(frame.columns) == ["date", "cantine_nom", "reel", "taux", "greve"]
    assert list(frame.index) == [2, 3]  # line numbers in the file
    typed = frames.conform(frame, COLUMNS, "entrées")
    assert typed["date"].tolist() == ["2017-09-04", "2017-09-05"]
    assert typed["cantine_nom"].tolist() == ["Bottière", "Bottière"]
    assert typed["reel"].dtype == np.int64 and typed["reel"].tolist() == [120, 98]
    assert typed["taux"].tolist() == [1.5, 2.0]
    assert typed["greve"].tolist() == [False, True]
    assert list(typed.index) == [0, 1]


def test_cp1252_accents():
    data = "date;cantine_nom;reel\n2017-09-04;Chêne d'Aulnay;10\n".encode("cp1252")
    frame = read(data)
    assert frame["cantine_nom"].iloc[0] == "Chêne d'Aulnay"


def test_comma_and_tab_files_are_sniffed():
    comma = read('date,cantine_nom,reel\n2017-09-04,"Ecole, Sud",10\n')
    assert comma["cantine_nom"].iloc[0] == "Ecole, Sud"
    tab = read("date\tcantine_nom\treel\n2017-09-04\tA\t10\n")
    assert list(tab.columns) == ["date", "cantine_nom", "reel"]
    single = read("reel\n10\n11\n")
    assert single["reel"].tolist() == ["10", "11"]


def test_trailing_separator_and_blank_lines():
    frame = read("a;b;\n1;2;\n\n3;4;\n")
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == ["1", "3"]
    assert list(frame.index) == [2, 4]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "vide"),
        (b"   \n\n", "vide"),
        (b"a;b\n", "qu'une ligne d'en-tête"),
        (b"a;b\n1;2\x00;3\n", "octets binaires"),
        (bytes(range(1, 32)) * 50, "caractères de contrôle"),
        (b"a;a\n1;2\n", "Colonne(s) en double : a"),
        (b"a;;b\n1;2;3\n", "n'a pas de nom"),
        (b"a;b;c\n1;2;3\n4;5\n", "Ligne 3 : 2 valeur(s) pour 3 colonne(s)"),
        (
            ";".join(f"c{i}" for i in range(201)).encode() + b"\n" + b";" * 200 + b"\n",
            "Trop de colonnes",
        ),
        (b"a;b\n1;" + b"x" * 20_000 + b"\n", "dépasse 10000 caractères"),
        (b'a;b\n1;"' + b"x" * 200_000 + b"\n", "dépasse 10000 caractères"),
    ],
)
def test_hostile_files_are_refused_in_french(data, expected):
    with pytest.raises(InvalidData) as caught:
        frames.read_csv(data, **LIMITS)
    assert expected in caught.value.message


def test_limits():
    with pytest.raises(PayloadTooLarge, match="trop volumineux"):
        frames.read_csv(b"a\n" + b"1\n" * 100, max_bytes=50, max_rows=1000)
    with pytest.raises(InvalidData, match="Trop de lignes : la limite est de 3"):
        frames.read_csv(b"a\n1\n2\n3\n4\n", max_bytes=1000, max_rows=3)
    assert len(frames.read_csv(b"a\n1\n2\n3\n", max_bytes=1000, max_rows=3)) == 3


def test_conform_lists_every_problem_with_lines():
    frame = read("date;cantine_nom;reel;greve\n31/02/2017;A;12,5;peut-être\nhier;;x;oui\n")
    with pytest.raises(InvalidData) as caught:
        frames.conform(frame, COLUMNS, "entrées")
    message = caught.value.message
    assert (
        "« date »" in message
        and "ligne 2 : « 31/02/2017 »" in message
        and "ligne 3 : « hier »" in message
    )
    assert "« cantine_nom » a des valeurs manquantes (ligne 3)" in message
    assert "« reel » doit contenir des valeurs de type entier" in message  # 12,5 is no integer
    assert "« greve »" in message and "peut-être" in message
    assert len(caught.value.details["problems"]) == 4


def test_conform_missing_columns_names_them_and_suggests_the_case():
    frame = read("Date;reel\n2017-09-04;3\n")
    with pytest.raises(InvalidData) as caught:
        frames.conform(frame, COLUMNS, "vérité")
    message = caught.value.message
    assert "Colonne(s) manquante(s) dans les vérité : date, cantine_nom" in message
    assert "« Date » existe" in message


def test_conform_numbers_french_and_english():
    frame = read("x\n1 234,5\n1.234,5\n1,234.5\n-0,5\n2e3\n\n")
    typed = frames.conform(frame, (Column("x", "double", required=False),), "entrées")
    assert typed["x"].tolist()[:5] == [1234.5, 1234.5, 1234.5, -0.5, 2000.0]
    with pytest.raises(InvalidData, match="« inf »"):
        frames.conform(read("x\ninf\n"), (Column("x", "double"),), "entrées")
    with pytest.raises(InvalidData, match="valeurs manquantes"):
        frames.conform(read("x;y\n;1\n"), (Column("x", "double"),), "entrées")


def test_conform_optional_gaps_and_absent_optional_columns():
    frame = read("date;cantine_nom;reel;greve;autre\n2017-09-04;A;1;;z\n2017-09-05;A;2;vrai;z\n")
    typed = frames.conform(frame, COLUMNS, "entrées")
    assert list(typed.columns) == [
        "date",
        "cantine_nom",
        "reel",
        "greve",
    ]  # taux absent, autre dropped
    assert typed["greve"].tolist() == [None, True]


def test_conform_frames_not_read_from_a_file():
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2017-09-04", "2017-09-05 10:30"], format="mixed"),
            "cantine_nom": ["A", "B"],
            "reel": [1.0, 2.0],
            "greve": [True, False],
        }
    )
    typed = frames.conform(frame, COLUMNS, "entrées")
    assert typed["date"].tolist() == ["2017-09-04T00:00:00", "2017-09-05T10:30:00"]
    assert typed["reel"].tolist() == [1, 2] and typed["greve"].tolist() == [True, False]
    with pytest.raises(InvalidData, match="enregistrement 2"):
        frames.conform(pd.DataFrame({"reel": [1.0, 2.5]}), (Column("reel", "long"),), "vérité")


def test_find_date_column():
    frame = pd.DataFrame({"n": [1, 2], "site": ["a", "b"], "jour": ["04/09/2017", "2017-09-05"]})
    assert frames.find_date_column(frame) == "jour"
    assert frames.find_date_column(frame, (Column("site", "string"), Column("x", "date"))) is None
    assert frames.find_date_column(pd.DataFrame({"n": ["2017", "2018"]})) is None


# ---------------------------------------------------------------- predictions

TASK = generic.bind(
    generic.REGRESSION, {"inputs": [{"name": "x", "type": "double"}], "outputs": []}, "observe"
)
MULTI = generic.classification_task(truth="y", output="classe", label_type="boolean")


def test_predictions_scalars_records_and_columns():
    assert frames.predictions_frame({"predictions": [1, 2.5, "3,5"]}, TASK, 3)[
        "prediction"
    ].tolist() == [1.0, 2.5, 3.5]
    records = [{"prediction": 1, "extra": [1, 2]}, {"prediction": 2, "extra": {"a": 1}}]
    frame = frames.predictions_frame({"predictions": records}, TASK, 2)
    assert list(frame.columns) == ["prediction"]  # extra columns ignored
    assert frames.predictions_frame({"predictions": {"prediction": [4, 5]}}, TASK, 2)[
        "prediction"
    ].tolist() == [4.0, 5.0]
    assert frames.predictions_frame([7], TASK, 1)["prediction"].tolist() == [7.0]
    flags = frames.predictions_frame({"predictions": [True, 0, "oui", "faux"]}, MULTI, 4)
    assert flags["classe"].tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"predictions": [1, 2]}, "2 prédiction(s) pour 3 ligne(s)"),
        ({"predictions": [1, 2, 3, 4]}, "4 prédiction(s) pour 3 ligne(s)"),
        (
            {"predictions": [1, math.nan, math.inf]},
            "prédiction 2 : « nan », prédiction 3 : « inf »",
        ),
        ({"predictions": [1, None, 3]}, "prédiction 2 : vide (null)"),
        ({"predictions": ["a", "b", "c"]}, "valeurs invalides prédiction 1 : « a »"),
        ({"predictions": [True, 1, 2]}, "prédiction 1 : « True »"),
        ({"predictions": [[1], [2], [3]]}, "une valeur structurée"),
        ({"predictions": [{"x": {"y": 1}}] * 3}, "Colonne(s) de sortie manquante(s)"),
        ({"predictions": [{"prediction": {"y": 1}}] * 3}, "une valeur structurée"),
        (
            {"predictions": [{"prediction": 1}, {"autre": 2}, {"prediction": 3}]},
            "manque à la prédiction 2",
        ),
        ({"predictions": [{"prediction": 1}, 2, 3]}, "mêlant"),
        ({"predictions": {"prediction": 1}}, "n'est pas une liste"),
        ({"predictions": {"prediction": [1]}}, "1 prédiction(s) pour 3"),
        ({"predictions": "42"}, "pas un texte"),
        ({"predictions": 10**400}, "pas un nombre"),
        ({"predictions": [10**400, 1, 2]}, "prédiction 1"),
        (None, "rien (null)"),
    ],
)
def test_garbage_predictions_are_refused_with_a_reason(raw, expected):
    with pytest.raises(InvalidPredictions) as caught:
        frames.predictions_frame(raw, TASK, 3)
    assert expected in caught.value.message


def test_labels_are_bounded():
    task = generic.classification_task()
    with pytest.raises(InvalidPredictions, match="texte"):
        frames.predictions_frame(["x" * 1000], task, 1)
    assert frames.predictions_frame([1.0, "b"], task, 2)["prediction"].tolist() == ["1", "b"]


# ---------------------------------------------------------------- canonical CSV


def test_canonical_csv_same_bytes_whatever_the_dtypes():
    a = pd.DataFrame({"n": [1, 2], "x": [1.5, 2.0], "s": ["a,b", 'c"d'], "b": [True, False]})
    b = pd.DataFrame(
        {
            "n": np.array([1.0, 2.0], dtype=np.float32),
            "x": np.array([1.5, 2], dtype=object),
            "s": pd.array(["a,b", 'c"d'], dtype="str"),
            "b": np.array([True, False], dtype=object),
        },
        index=[10, 20],
    )
    assert frames.canonical_csv(a) == frames.canonical_csv(b)
    assert frames.canonical_csv(a) == b'n,x,s,b\n1,1.5,"a,b",true\n2,2,"c""d",false\n'


def test_canonical_csv_missing_values_dates_and_order():
    a = pd.DataFrame({"d": pd.to_datetime(["2017-09-04", None]), "v": [np.nan, 0.1]})
    assert frames.canonical_csv(a) == b"d,v\n2017-09-04,\n,0.1\n"
    c = pd.DataFrame({"d": ["2017-09-04", None], "v": [None, 0.1]})
    assert frames.canonical_csv(a) == frames.canonical_csv(c)
    assert frames.canonical_csv(a[["v", "d"]]) != frames.canonical_csv(a)


def test_canonical_csv_of_a_read_file_is_its_hash_input():
    one = read("date;reel\n04/09/2017;12,0\n")
    two = read("date,reel\n2017-09-04,12\n")
    columns = (Column("date", "date"), Column("reel", "double"))
    digest = [
        hashlib.sha256(frames.canonical_csv(frames.conform(f, columns, "entrées"))).hexdigest()
        for f in (one, two)
    ]
    assert digest[0] == digest[1]
