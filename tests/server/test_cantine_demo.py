"""The demonstrator on the cantine reference model, in-process: French Excel files, messages that
name what the agent can fix, optional cells, French headers from the card."""

from __future__ import annotations

import re
from html import unescape


def _send(client, content: bytes):
    return client.post("/upload", files={"file": ("cantines.csv", content, "text/csv")})


def _error(html: str) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.S)
    assert match, "the page shows no error message"
    return unescape(match.group(1))


FRENCH = (
    "\ufeffdate;cantine_nom;greve\r\n"
    "06/11/2017;LONGCHAMP;\r\n"
    "07/11/2017;LONGCHAMP;non\r\n"
    "07/11/2017;JEAN ZAY M;oui\r\n"
)


def test_a_french_excel_file_with_empty_optional_cells_is_predicted(cantine_client) -> None:
    page = _send(cantine_client, FRENCH.encode("utf-8"))
    assert page.status_code == 200, _error(page.text)
    html = unescape(page.text)
    assert "3 lignes calculées" in html and "<td>06/11/2017</td>" in html
    # French headers from the card, the column's name beside them
    assert (
        '<th scope="col">Prédiction : Repas attendus<span class="name">repas_prevus</span></th>'
        in html
    )
    assert "<td>oui</td>" in html and "True" not in html


def test_a_latin_1_file_and_an_all_empty_optional_column(cantine_client) -> None:
    latin = "date;cantine_nom;greve;remarque\n06/11/2017;LONGCHAMP;;été\n".encode("cp1252")
    page = _send(cantine_client, latin)
    assert page.status_code == 200, _error(page.text)
    html = unescape(page.text)
    assert "Colonnes facultatives laissées vides : greve" in html and "<td>été</td>" in html


def test_an_unknown_canteen_names_the_line_and_lists_the_known_ones(cantine_client) -> None:
    page = _send(cantine_client, b"date;cantine_nom\n06/11/2017;LONGCHAMP\n06/11/2017;LONGCHAMPS\n")
    assert page.status_code == 400
    message = _error(page.text)
    assert message.startswith("Le modèle a refusé ces données : Cantine inconnue : « LONGCHAMPS »")
    assert "Noms proches : « LONGCHAMP »" in message and "AIME CESAIRE" in message
    assert "(Valeur concernée : colonne cantine_nom, ligne 3.)" in message
    assert "Error" not in message and ".csv" not in message


def test_a_bad_date_and_a_missing_column_say_what_to_fix(cantine_client) -> None:
    message = _error(_send(cantine_client, b"date;cantine_nom\n31/02/2017;LONGCHAMP\n").text)
    assert message == (
        "La colonne « date » doit contenir des valeurs de type date (JJ/MM/AAAA ou AAAA-MM-JJ), "
        "par exemple « 06/11/2017 » ; valeurs invalides ligne 2 : « 31/02/2017 »."
    )
    message = _error(_send(cantine_client, b"Date;cantine\n06/11/2017;LONGCHAMP\n").text)
    assert "Colonne(s) manquante(s) : date, cantine_nom." in message
    assert "la colonne « Date » existe : nommez-la « date »" in message
    assert "greve (booléen (vrai/faux), facultative)" in message
    assert "ValueError" not in message


def test_the_template_round_trips(cantine_client) -> None:
    template = cantine_client.get("/modele.csv").content.decode("utf-8-sig").splitlines()
    assert template[0] == "date;cantine_nom;greve"
    assert template[1] == "06/11/2017;LONGCHAMP;non"
    page = _send(cantine_client, ("\n".join(template) + "\n").encode("utf-8"))
    assert page.status_code == 200 and "2 lignes calculées" in unescape(page.text)
    assert (
        '<a href="/modeles/cantine-nantes">Revenir à la fiche du modèle</a>'
        in cantine_client.get("/").text
    )


def test_the_staff_order_variant_asks_for_the_staff_order(cantine_staff_client) -> None:
    """The variant's template and sample follow its signature: the staff's order is a column."""
    template = cantine_staff_client.get("/modele.csv").content.decode("utf-8-sig").splitlines()
    assert template[0] == "date;cantine_nom;greve;prevision"
    assert template[1].startswith("06/11/2017;LONGCHAMP;non;")
    page = _send(cantine_staff_client, ("\n".join(template) + "\n").encode("utf-8"))
    assert page.status_code == 200 and "2 lignes calculées" in unescape(page.text)
    message = _error(_send(cantine_staff_client, b"date;cantine_nom\n06/11/2017;LONGCHAMP\n").text)
    assert "prevision" in message and "ValueError" not in message
