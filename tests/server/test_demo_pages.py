"""The demonstrator's pages and CSV upload, in-process on fixture models."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.server.conftest import ANOMALY_CARD, FORECAST_CARD

ABSOLUTE_LINK = re.compile(r'(?:href|src|action)="/')
# Links out of the demonstrator, back to bibia: the only absolute ones a page may have.
WAYS_BACK = re.compile(r'(?:href)="/(?:modeles/[\w.%-]+|mes-demonstrateurs)"')


def _upload(client, content: bytes, name: str = "donnees.csv"):
    return client.post("/upload", files={"file": (name, content, "text/csv")})


def _csv_lines(data: bytes) -> list[str]:
    return data.decode("utf-8-sig").splitlines()


def _error(html: str) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.S)
    assert match, "the page shows no error message"
    return unescape(match.group(1))


def test_home_page_shows_the_card_the_sample_chart_table_and_form(demo_client) -> None:
    client = demo_client("series", card=FORECAST_CARD)
    page = client.get("/")
    assert page.status_code == 200
    html = unescape(page.text)
    assert '<html lang="fr">' in html
    assert "Fréquentation des cantines" in html and "Nantes Métropole" in html
    assert "Prévision de série temporelle" in html and "Réduire le gaspillage." in html
    assert "Grèves imprévues" in html and "commandes du personnel" in html
    assert "<svg" in html and "comparée aux valeurs observées « Observe »" in html
    assert "<table>" in html and "Prédiction : Prevu" in html
    assert 'action="upload"' in html and 'href="sample.csv"' in html
    assert 'href="modele.csv"' in html and "Télécharger un modèle de fichier CSV" in html
    assert "<h1>Essayer le modèle</h1>" in html and "mae : 12,5 — référence : 20" in html
    # scrollable tables are keyboard-reachable regions with headers
    assert html.count('role="region"') == html.count("<table>") >= 2
    assert html.count('tabindex="0"') >= 2 and '<th scope="col">' in html
    # not behind bibia (no bibia/demo.json): no way out, no absolute link at all
    assert "Revenir à la fiche du modèle" not in html and not ABSOLUTE_LINK.search(html)


def test_anomaly_task_highlights_flagged_points(demo_client) -> None:
    html = unescape(demo_client("series", card=ANOMALY_CARD).get("/").text)
    assert "Compteurs vélo" in html and "Détection d'anomalies" in html
    assert re.search(r"en rouge, les [1-9]\d* point\(s\) signalé\(s\) comme anomalies", html)
    assert "Série affichée : Site = « Pont Anne de Bretagne » (2 séries dans les données)" in html


def test_without_a_card_the_page_still_works(demo_client) -> None:
    html = unescape(demo_client("ok").get("/").text)
    assert "<strong>Démonstrateur</strong>" in html and "<h1>Essayer le modèle</h1>" in html
    assert "Prédiction « Y » selon « X »" in html
    assert '<th scope="row"><code>x</code></th><td>X</td><td>nombre décimal</td>' in html


def test_sample_and_health(demo_client) -> None:
    client = demo_client("ok")
    assert client.get("/sample.csv").text.startswith("x\n")
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/evaluation.png").status_code == 404


def test_upload_shows_predictions_and_offers_them_as_csv(demo_client) -> None:
    client = demo_client("ok")
    page = _upload(client, b"x;commentaire\n1,5;a\n2;b\n")
    assert page.status_code == 200
    html = unescape(page.text)
    assert "<h1>Prédictions sur vos données</h1>" in html and "2 lignes calculées" in html
    assert "Colonnes ignorées (le modèle ne les utilise pas) : commentaire" in html
    assert "<svg" in html and not ABSOLUTE_LINK.search(html)
    result = re.search(r'href="([\w-]{22})\.csv"', html).group(1)
    download = client.get(f"/resultats/{result}.csv")
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="predictions.csv"' in download.headers["content-disposition"]
    assert download.content.startswith("\ufeff".encode())  # Excel reads the accents
    assert _csv_lines(download.content) == ["x;commentaire;y", "1,5;a;3", "2;b;4"]
    international = client.get(f"/resultats/{result}.csv?format=international")
    assert international.text.splitlines() == ["x,commentaire,y", "1.5,a,3", "2,b,4"]


def test_upload_of_dates_and_text(demo_client) -> None:
    client = demo_client("series", card=FORECAST_CARD)
    page = _upload(client, b"jour,site,comptage\n2024-03-01,Gare,100\n02/03/2024,Gare,130\n")
    assert page.status_code == 200, _error(page.text)
    assert "<td>01/03/2024</td>" in page.text and "<td>02/03/2024</td>" in page.text


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"", 400, "Le fichier est vide"),
        (b"   \n", 400, "Le fichier est vide"),
        (b"x\n", 400, "qu'une ligne d'en-tête"),
        (
            b"z,w\n1,2\n",
            400,
            "Colonne(s) manquante(s) : x. Le modèle attend les colonnes : x (nombre décimal)",
        ),
        (b"X ;w\n1;2\n", 400, "la colonne « X » existe : nommez-la « x »"),
        (
            b"x\n1\ndeux\n3\n",
            400,
            "doit contenir des valeurs de type nombre décimal, par exemple « 0 » ; "
            "valeurs invalides ligne 3 : « deux »",
        ),
        (b"x\n1\n\n", 400, None),
        (b"x\n1\nNA\n", 400, "valeurs manquantes (ligne 3)"),
        (b"x,x\n1,2\n", 400, "Colonne(s) en double : x"),
        (b"x;y\n1;2;3\n", 400, "Ligne 2 : 3 valeur(s) pour 2 colonne(s)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", 415, "n'est pas un fichier texte CSV"),
    ],
)
def test_bad_uploads_get_a_french_message_saying_what_to_fix(
    demo_client, content, status, message
) -> None:
    page = _upload(demo_client("ok"), content)
    if message is None:  # a blank line is skipped: the file is valid
        assert page.status_code == 200
        return
    assert page.status_code == status
    assert message in _error(page.text)
    assert 'action="upload"' in page.text  # the form is there to try again


def test_integer_and_boolean_columns_are_checked(demo_client) -> None:
    page = _upload(demo_client("series"), b"jour,site,comptage\n2024-03-01,Gare,1.5\nhier,Gare,2\n")
    message = _error(page.text)
    assert "« comptage » doit contenir des valeurs de type nombre entier" in message
    assert "« jour » doit contenir des valeurs de type date" in message


def test_too_large_and_too_many_rows(demo_client) -> None:
    small = demo_client("ok", max_upload_bytes=1000, max_rows=5)
    page = _upload(small, b"x\n" + b"1\n" * 600)
    assert page.status_code == 413 and "trop volumineux" in _error(page.text)
    page = _upload(small, b"x\n" + b"1\n" * 6)
    assert page.status_code == 413 and "Trop de lignes : la limite est de 5 lignes" in _error(
        page.text
    )


def test_upload_without_a_file_or_not_multipart(demo_client) -> None:
    client = demo_client("ok")
    page = client.post("/upload", data={"autre": "x"}, files={"rien": ("a.txt", b"", "text/plain")})
    assert page.status_code == 400 and "Aucun fichier reçu" in _error(page.text)
    page = client.post("/upload", content=b"x\n1\n", headers={"content-type": "text/csv"})
    assert page.status_code == 415 and "multipart/form-data" in _error(page.text)


def test_a_model_answering_the_wrong_shape_gets_a_clear_error(demo_client) -> None:
    page = _upload(demo_client("wrong_shape"), b"x\n1\n2\n")
    assert page.status_code == 500
    assert "3 prédiction(s) pour 2 ligne(s)" in _error(page.text)
