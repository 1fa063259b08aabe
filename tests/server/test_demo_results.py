"""Result pages that survive a refresh, their downloads, the series picker, the template CSV and the
ways back to bibia — in-process on fixture models."""

from __future__ import annotations

import re
import shutil
from html import unescape

from tests.server.conftest import ANOMALY_CARD, FORECAST_CARD

# French Excel's « CSV (séparateur : point-virgule) »: BOM, `;`, dd/mm/yyyy, decimal comma, CRLF.
FRENCH_EXCEL = (
    "\ufeffjour;site;comptage;observe\r\n"
    "01/03/2024;Gare de l'Île;100;101,5\r\n"
    "02/03/2024;Gare de l'Île;130;128,25\r\n"
    "01/03/2024;Quai Ceineray;10;11\r\n"
    "02/03/2024;Quai Ceineray;12;12\r\n"
)
RESULT_LINK = re.compile(r"^resultats/([\w-]{22})$")


def _send(client, content: bytes):
    """POST the file without following the redirect."""
    return client.post(
        "/upload", files={"file": ("donnees.csv", content, "text/csv")}, follow_redirects=False
    )


def _result(client, content: bytes) -> str:
    sent = _send(client, content)
    assert sent.status_code == 303, unescape(sent.text)
    match = RESULT_LINK.match(sent.headers["location"])
    assert match, sent.headers["location"]
    return match.group(1)


def test_an_upload_redirects_to_a_result_page_that_survives_a_refresh(demo_client) -> None:
    client = demo_client("series", card=FORECAST_CARD)
    result = _result(client, FRENCH_EXCEL.encode("utf-8"))
    first = client.get(f"/resultats/{result}")
    assert first.status_code == 200
    again = client.get(f"/resultats/{result}")  # a refresh: a GET, the same result
    assert again.text == first.text
    html = unescape(first.text)
    assert "<h1>Prédictions sur vos données</h1>" in html and "4 lignes calculées" in html
    # links are relative to the result page: downloads beside it, the home one level up
    assert f'href="{result}.csv"' in html and f'href="{result}.csv?format=international"' in html
    assert 'href="../"' in html and 'href="../#essayer"' in html
    # the file was read the French way
    assert "<td>01/03/2024</td>" in html and "<td>Gare de l'Île</td>" in html
    assert '<td class="num">101,5</td>' in html and '<td class="num">128,25</td>' in html
    # another upload gets another id; the first stays
    other = _result(client, FRENCH_EXCEL.encode("utf-8"))
    assert other != result and client.get(f"/resultats/{result}").status_code == 200


def test_a_latin_1_file_from_excel_is_read_with_its_accents(demo_client) -> None:
    client = demo_client("series", card=FORECAST_CARD)
    latin = FRENCH_EXCEL.lstrip("\ufeff").encode("cp1252")
    result = _result(client, latin)
    html = unescape(client.get(f"/resultats/{result}").text)
    assert "<td>Gare de l'Île</td>" in html


def test_unknown_or_malformed_result_ids_get_a_french_404_page(demo_client) -> None:
    client = demo_client("series", card=FORECAST_CARD)
    for path in ("/resultats/AAAAAAAAAAAAAAAAAAAAAA", "/resultats/x%2E%2E", "/resultats/x.csv"):
        page = client.get(path)
        assert page.status_code == 404, path
        html = unescape(page.text)
        assert '<html lang="fr">' in html and "<h1>Résultat introuvable</h1>" in html
        assert "renvoyez votre fichier" in html and 'href="../"' in html
    page = client.get("/pas/une/page")
    assert page.status_code == 404 and "<h1>Page introuvable</h1>" in unescape(page.text)


def test_downloads_french_excel_by_default_and_international_on_demand(demo_client) -> None:
    client = demo_client("series", card=ANOMALY_CARD)
    result = _result(client, FRENCH_EXCEL.encode("utf-8"))
    french = client.get(f"/resultats/{result}.csv")
    assert french.status_code == 200 and french.content.startswith("\ufeff".encode())
    assert "attachment" in french.headers["content-disposition"]
    lines = french.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "jour;site;comptage;observe;prevu;anomalie"
    assert lines[1].startswith("01/03/2024;Gare de l'Île;100;101,5;")
    assert {line.rsplit(";", 1)[1] for line in lines[1:]} <= {"oui", "non"}
    assert any(line.endswith(";oui") for line in lines[1:])  # the table's oui/non, not True/False
    international = client.get(f"/resultats/{result}.csv?format=international").text.splitlines()
    assert international[0] == "jour,site,comptage,observe,prevu,anomalie"
    assert international[1].startswith("2024-03-01,Gare de l'Île,100,101.5,")
    assert {line.rsplit(",", 1)[1] for line in international[1:]} <= {"true", "false"}
    # both read back: the download is a valid upload
    assert _send(client, french.content).status_code == 303
    assert _send(client, international_bytes(international)).status_code == 303


def international_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_the_series_picker_chooses_the_series_the_chart_draws(demo_client) -> None:
    client = demo_client("series", card=FORECAST_CARD)
    result = _result(client, FRENCH_EXCEL.encode("utf-8"))
    html = unescape(client.get(f"/resultats/{result}").text)
    form = re.search(r'<form class="picker" method="get" action="([^"]+)">(.*?)</form>', html, re.S)
    assert form and form.group(1) == f"{result}#graphique"  # GET, to this result: no script needed
    assert '<label for="serie-graphique">Série à afficher (Site) :</label>' in form.group(2)
    assert '<select id="serie-graphique" name="serie">' in form.group(2)
    assert re.findall(r'<option value="([^"]+)"', form.group(2)) == [
        "Gare de l'Île",
        "Quai Ceineray",
    ]
    assert '<option value="Gare de l\'Île" selected>' in form.group(2)  # the first by default
    assert "Série affichée : Site = « Gare de l'Île » (2 séries dans les données)" in html
    chosen = unescape(client.get(f"/resultats/{result}", params={"serie": "Quai Ceineray"}).text)
    assert "Série affichée : Site = « Quai Ceineray »" in chosen
    assert '<option value="Quai Ceineray" selected>' in chosen
    unknown = unescape(client.get(f"/resultats/{result}", params={"serie": "Nulle part"}).text)
    assert "Série affichée : Site = « Gare de l'Île »" in unknown  # back to the first
    # the sample's chart on the home page has its own picker, kept in the URL too
    home = unescape(client.get("/", params={"serie": "Quai Ceineray"}).text)
    assert 'action="./#graphique-exemple"' in home
    assert "Série affichée : Site = « Quai Ceineray »" in home


def test_the_template_csv_has_the_columns_and_round_trips(demo_client) -> None:
    client = demo_client("series", card=FORECAST_CARD)
    template = client.get("/modele.csv")
    assert template.status_code == 200 and template.headers["content-type"].startswith("text/csv")
    assert 'filename="modele.csv"' in template.headers["content-disposition"]
    assert template.content.startswith("\ufeff".encode())
    lines = template.content.decode("utf-8-sig").splitlines()
    assert lines == [
        "jour;site;comptage",
        "01/03/2024;Pont Anne de Bretagne;139",
        "02/03/2024;Pont Anne de Bretagne;120",
    ]
    result = _result(client, template.content)
    html = unescape(client.get(f"/resultats/{result}").text)
    assert "2 lignes calculées" in html


def test_a_template_without_sample_data_uses_typed_examples(fixture_model, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from demos.server.app import create_app
    from demos.server.model import DemoModel
    from demos.server.settings import Settings

    model_dir = tmp_path / "model"
    shutil.copytree(fixture_model("ok"), model_dir)
    (model_dir / "bibia" / "sample.csv").unlink()
    app = create_app(DemoModel.load(model_dir), Settings(model_dir=model_dir, results_dir=tmp_path))
    lines = TestClient(app).get("/modele.csv").content.decode("utf-8-sig").splitlines()
    assert lines == ["x", "12,5", "12,5"]


def test_every_page_links_back_to_the_model_page_and_my_demonstrators(demo_client) -> None:
    client = demo_client("series", card=FORECAST_CARD, model_name="frequentation-cantines")
    result = _result(client, FRENCH_EXCEL.encode("utf-8"))
    pages = {
        "home": client.get("/"),
        "result": client.get(f"/resultats/{result}"),
        "refused upload": client.post("/upload", files={"file": ("x.csv", b"", "text/csv")}),
        "missing result": client.get("/resultats/AAAAAAAAAAAAAAAAAAAAAA"),
        "missing page": client.get("/pas/une/page"),
    }
    for name, page in pages.items():
        html = page.text
        assert (
            '<a href="/modeles/frequentation-cantines">Revenir à la fiche du modèle</a>' in html
        ), name
        assert '<a href="/mes-demonstrateurs">Mes démonstrateurs</a>' in html, name
        # every other link stays inside the demonstrator
        absolute = re.findall(r'(?:href|src|action)="(/[^"]*)"', html)
        assert set(absolute) == {"/modeles/frequentation-cantines", "/mes-demonstrateurs"}, name


def test_a_model_name_is_escaped_in_the_way_back(demo_client) -> None:
    html = demo_client("ok", model_name='a"b/c').get("/").text
    assert 'href="/modeles/a%22b%2Fc"' in html
