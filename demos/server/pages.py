"""The demonstrator's HTML pages, in French.

Every link is relative (``./``, ``upload``, ``predictions/...``): the service
proxies this server under ``/demos/{id}/``, so an absolute path would leave
the demonstrator. Everything shown is escaped; the only raw markup inserted
is the SVG drawn by :mod:`demos.server.charts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from demos.server.card import CardInfo
from demos.server.charts import Chart
from demos.server.model import Column

TABLE_ROWS = 50

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;background:#f6f6f6}
main{max-width:62rem;margin:0 auto;padding:1rem 1.25rem 3rem}
header{background:#000091;color:#fff;padding:1rem 1.25rem}
header h1{margin:.2rem 0;font-size:1.5rem}header p{margin:.2rem 0;opacity:.9}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1rem 1.25rem;margin:1rem 0}
h2{font-size:1.15rem;margin:.2rem 0 .8rem}
table{border-collapse:collapse;font-size:.85rem;width:100%;display:block;overflow-x:auto}
th,td{border-bottom:1px solid #e4e4e4;padding:.3rem .5rem;text-align:left;white-space:nowrap}
th{background:#f0f0f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{max-width:100%;height:auto}
.error{background:#fdecea;border:1px solid #c0392b;color:#7a1c12;padding:.75rem 1rem;border-radius:6px}
.note{color:#555;font-size:.9rem}.tag{background:#e3e3fd;border-radius:4px;padding:.1rem .4rem;font-size:.85rem}
code{background:#f0f0f0;padding:0 .25rem;border-radius:3px}
a.button,button{background:#000091;color:#fff;border:0;border-radius:4px;padding:.5rem 1rem;text-decoration:none;cursor:pointer;font-size:.95rem}
"""


@dataclass(frozen=True)
class TableView:
    """Rows to show: the inputs, then the predictions, side by side."""

    inputs: pd.DataFrame
    predictions: pd.DataFrame
    total_rows: int


def layout(card: CardInfo, body: str) -> str:
    """The page skeleton, with the card's title and owner in the header."""
    subtitle = " · ".join(escape(x) for x in (card.owner, card.territory) if x)
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(card.title)} · démonstrateur</title><style>{STYLE}</style></head><body>"
        f'<header><p class="note" style="color:#ddd">Démonstrateur bibia</p><h1>{escape(card.title)}</h1>'
        f"{f'<p>{subtitle}</p>' if subtitle else ''}</header><main>{body}</main></body></html>"
    )


def index_page(
    card: CardInfo,
    columns: list[Column],
    *,
    chart: Chart | None,
    table: TableView | None,
    sample_error: str | None,
    has_sample: bool,
    has_evaluation: bool,
    max_upload_bytes: int,
    max_rows: int,
    error: str | None = None,
    csrf_token: str | None = None,
) -> str:
    """The home page: what the model does, the model on its sample, the upload form.

    ``csrf_token`` (from bibia's proxy: valid for this demonstrator and this
    browser session only) goes into the form's action, where the proxy looks
    for it on a browser's post.
    """
    parts = (
        [
            f'<section id="erreur"><h2>Votre fichier n\'a pas pu être utilisé</h2><p class="error" role="alert">{escape(error)}</p>'
            '<p><a href="#essayer">Corriger et renvoyer le fichier ↓</a></p></section>'
        ]
        if error
        else []
    )
    parts.append(_about(card, columns))
    sample = ['<section id="exemple"><h2>Le modèle sur les données d\'exemple</h2>']
    if sample_error:
        sample.append(f'<p class="error">{escape(sample_error)}</p>')
    elif not has_sample:
        sample.append(
            "<p>Ce modèle n'a pas de données d'exemple : essayez-le avec vos propres données ci-dessous.</p>"
        )
    else:
        sample.append(_chart(chart))
        if table is not None:
            sample.append(_table(table))
    if has_evaluation:
        sample.append(
            '<h3>Évaluation</h3><p><img src="evaluation.png" alt="Graphique d\'évaluation du modèle" '
            'style="max-width:100%"></p>'
        )
    sample.append("</section>")
    parts.append("".join(sample))
    parts.append(_upload_form(columns, has_sample, max_upload_bytes, max_rows, csrf_token))
    parts.append(_api_help(columns))
    return layout(card, "".join(parts))


def result_page(
    card: CardInfo, *, chart: Chart | None, table: TableView, token: str, ignored: list[str]
) -> str:
    """The predictions on an uploaded file, with the CSV download link."""
    note = (
        f'<p class="note">Colonnes ignorées (le modèle ne les utilise pas) : {escape(", ".join(ignored))}.</p>'
        if ignored
        else ""
    )
    body = (
        '<p><a href="./">← Retour au démonstrateur</a></p>'
        f"<section><h2>Prédictions sur vos données ({table.total_rows} ligne(s))</h2>{note}"
        f'<p><a class="button" href="predictions/{escape(token)}.csv" download>Télécharger les prédictions (CSV)</a></p>'
        f"{_chart(chart)}{_table(table)}</section>"
    )
    return layout(card, body)


def message_page(card: CardInfo, title: str, message: str) -> str:
    """A page that says what went wrong and how to go back."""
    return layout(
        card,
        f'<section><h2>{escape(title)}</h2><p class="error" role="alert">{escape(message)}</p>'
        '<p><a href="./">← Retour au démonstrateur</a></p></section>',
    )


def _about(card: CardInfo, columns: list[Column]) -> str:
    rows = []
    if card.summary:
        rows.append(f"<p>{escape(card.summary)}</p>")
    if card.task_label:
        rows.append(f'<p>Tâche : <span class="tag">{escape(card.task_label)}</span></p>')
    if card.context:
        rows.append(f"<p><strong>Contexte et objectif.</strong> {escape(card.context)}</p>")
    if card.automation_label:
        rows.append(f"<p><strong>Automatisation.</strong> {escape(card.automation_label)}</p>")
    if card.human_oversight:
        rows.append(f"<p><strong>Contrôle humain.</strong> {escape(card.human_oversight)}</p>")
    if card.risks:
        rows.append(
            "<p><strong>Risques et limites.</strong></p><ul>"
            + "".join(f"<li>{escape(r)}</li>" for r in card.risks)
            + "</ul>"
        )
    if card.out_of_scope:
        rows.append(
            "<p><strong>Usages hors périmètre.</strong></p><ul>"
            + "".join(f"<li>{escape(r)}</li>" for r in card.out_of_scope)
            + "</ul>"
        )
    if card.metrics:
        baseline = f" (référence : {escape(card.baseline)})" if card.baseline else ""
        items = "".join(
            f"<li>{escape(str(m['name']))} : {_number(m['value'])}"
            + (f" — référence : {_number(m['baseline'])}" if m.get("baseline") is not None else "")
            + "</li>"
            for m in card.metrics[:12]
        )
        rows.append(f"<p><strong>Performances{baseline}.</strong></p><ul>{items}</ul>")
    if not rows:
        rows.append("<p>La fiche de ce modèle n'est pas disponible dans le démonstrateur.</p>")
    if columns:
        rows.append(
            "<p><strong>Entrées du modèle.</strong> "
            + ", ".join(
                f"<code>{escape(c.name)}</code> ({escape(c.label)}{'' if c.required else ', facultatif'})"
                for c in columns
            )
            + "</p>"
        )
    return '<section id="modele"><h2>Ce que fait le modèle</h2>' + "".join(rows) + "</section>"


def _upload_form(
    columns: list[Column],
    has_sample: bool,
    max_upload_bytes: int,
    max_rows: int,
    csrf_token: str | None,
) -> str:
    expected = (
        "Le fichier doit avoir une ligne d'en-tête avec les colonnes "
        + ", ".join(f"<code>{escape(c.name)}</code>" for c in columns)
        + ". Les autres colonnes sont ignorées."
        if columns
        else "Le fichier doit avoir une ligne d'en-tête avec les colonnes du modèle."
    )
    template = (
        " <a href=\"sample.csv\" download>Télécharger les données d'exemple</a> pour partir d'un fichier au bon format."
        if has_sample
        else ""
    )
    size = (
        f"{max_upload_bytes / (1024 * 1024):.0f} Mio"
        if max_upload_bytes >= 1024 * 1024
        else f"{max_upload_bytes // 1024} Kio"
    )
    return (
        '<section id="essayer"><h2>Essayer avec vos données</h2>'
        f"<p>{expected}{template}</p>"
        f'<p class="note">Fichier CSV encodé en UTF-8, séparateur virgule ou point-virgule, {size} et {max_rows} lignes au plus. '
        "Vos données restent dans ce démonstrateur isolé, sans accès au réseau, et disparaissent à son arrêt.</p>"
        f'<form action="{_action("upload", csrf_token)}" method="post" enctype="multipart/form-data">'
        '<label for="file">Fichier CSV :</label> '
        '<input id="file" type="file" name="file" accept=".csv,text/csv" required> '
        '<button type="submit">Calculer les prédictions</button></form></section>'
    )


def _action(path: str, token: str | None) -> str:
    """A form action; behind bibia, with the demonstrator's form token its proxy asks of a browser's post."""
    if not token:
        return path
    return escape(f"{path}?{urlencode({'csrftoken': token})}")


def _api_help(columns: list[Column]) -> str:
    example = ", ".join(f'"{escape(c.name)}": …' for c in columns[:4])
    return (
        '<section id="api"><h2>API JSON</h2><p>Envoyez <code>POST predict</code> avec '
        f'<code>{{"dataframe_records": [{{{example}}}]}}</code> ou <code>dataframe_split</code>, '
        'comme au serveur de scoring MLflow ; la réponse est <code>{"predictions": [...]}</code>.</p></section>'
    )


def _chart(chart: Chart | None) -> str:
    if chart is None:
        return '<p class="note">Aucun graphique ne peut être tracé pour ces prédictions.</p>'
    return (
        f'<figure>{chart.svg}<figcaption class="note">{escape(chart.caption)}</figcaption></figure>'
    )


def _table(view: TableView) -> str:
    inputs = view.inputs.head(TABLE_ROWS)
    predictions = view.predictions.head(TABLE_ROWS)
    head = "".join(f"<th>{escape(str(c))}</th>" for c in inputs.columns)
    head += "".join(f'<th scope="col">→ {escape(str(c))}</th>' for c in predictions.columns)
    body = []
    for (_, left), (_, right) in zip(inputs.iterrows(), predictions.iterrows()):
        cells = [_cell(v) for v in left.tolist()] + [_cell(v, strong=True) for v in right.tolist()]
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="note">{TABLE_ROWS} premières lignes sur {view.total_rows}.</p>'
        if view.total_rows > TABLE_ROWS
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _cell(value: Any, strong: bool = False) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    text = (
        _number(value)
        if numeric
        else (
            ""
            if value is None or (isinstance(value, float) and math.isnan(value))
            else escape(_plain(value))
        )
    )
    if strong:
        text = f"<strong>{text}</strong>"
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def _plain(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return (
            value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat(sep=" ")
        )
    if isinstance(value, bool):
        return "oui" if value else "non"
    return str(value)


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return escape(str(value))
    if math.isnan(number):
        return ""
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}".replace(",", "\u202f")
    return f"{number:,.3f}".rstrip("0").rstrip(".").replace(",", "\u202f").replace(".", ",")
