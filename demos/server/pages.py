"""The demonstrator's HTML pages, in French.

Every link inside the demonstrator is relative (``./``, ``upload``,
``resultats/...``; ``../`` from a result page): the service proxies this
server under ``/demos/{id}/``, so an absolute path would leave the
demonstrator. The two links back to bibia itself (the model's page, « Mes
démonstrateurs ») are the only absolute ones, on purpose: they lead out of
the demonstrator, to the same origin. Everything shown is escaped; the only
raw markup inserted is the SVG drawn by :mod:`demos.server.charts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode

import pandas as pd

from demos.server import formats
from demos.server.card import CardInfo
from demos.server.charts import Chart
from demos.server.model import Column

TABLE_ROWS = 50
MY_DEMOS = "/mes-demonstrateurs"

STYLE = """
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;background:#f6f6f6;line-height:1.5;overflow-wrap:anywhere}
main{max-width:62rem;margin:0 auto;padding:1rem 1rem 3rem}
header{background:#000091;color:#fff;padding:1rem}
header .kicker{margin:0;color:#e3e3fd;font-size:.9rem}
header h1{margin:.2rem 0;font-size:1.5rem;line-height:1.25}header p{margin:.2rem 0}
nav.back{max-width:62rem;margin:0 auto;padding:.6rem 1rem 0;display:flex;flex-wrap:wrap;gap:.4rem 1.5rem}
nav.back a{color:#000091;font-weight:600}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1rem;margin:1rem 0}
h2{font-size:1.15rem;margin:.2rem 0 .8rem}h3{font-size:1rem}
a{color:#000091}
.table{overflow-x:auto;max-width:100%;margin:.5rem 0}
.table:focus{outline:3px solid #0a76f6;outline-offset:2px}
table{border-collapse:collapse;font-size:.85rem;min-width:100%}
th,td{border-bottom:1px solid #e4e4e4;padding:.3rem .5rem;text-align:left;vertical-align:top}
td{white-space:nowrap}th{overflow-wrap:normal;min-width:6rem}
th{background:#f0f0f7;font-weight:600}th .name,td .name{display:block;font-weight:400;color:#3a3a3a;font-size:.8rem}
td.num{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{max-width:100%;height:auto}
figure{margin:0}
.error{background:#fdecea;border:1px solid #c0392b;color:#6b150c;padding:.75rem 1rem;border-radius:6px}
.note{color:#3a3a3a;font-size:.9rem}.tag{background:#e3e3fd;border-radius:4px;padding:.1rem .4rem;font-size:.85rem}
code{background:#f0f0f0;padding:0 .25rem;border-radius:3px}
.actions{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}
a.button,button{display:inline-block;background:#000091;color:#fff;border:0;border-radius:4px;padding:.5rem 1rem;text-decoration:none;cursor:pointer;font-size:.95rem}
a.button.secondary{background:#fff;color:#000091;border:1px solid #000091}
form.picker{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.5rem 0}
select,input[type=file]{max-width:100%;font-size:.95rem}
"""


@dataclass(frozen=True)
class TableView:
    """Rows to show: the inputs, then the predictions, side by side."""

    inputs: pd.DataFrame
    predictions: pd.DataFrame
    total_rows: int


def layout(card: CardInfo, body: str, *, root: str = "", title: str | None = None) -> str:
    """The page skeleton: the card's title and owner, the ways back to bibia, ``body``.

    Args:
        root: the relative path from this page to the demonstrator's home
            (``""`` for a page at its top, ``"../"`` one level down).
        title: the page's own title, before the model's in ``<title>``.
    """
    subtitle = " · ".join(escape(x) for x in (card.owner, card.territory) if x)
    links = [f'<a href="{root or "./"}">Accueil du démonstrateur</a>']
    if card.model_name:
        links.insert(
            0,
            f'<a href="/modeles/{quote(card.model_name, safe="")}">Revenir à la fiche du modèle</a>',
        )
        links.append(f'<a href="{MY_DEMOS}">Mes démonstrateurs</a>')
    heading = f"{escape(title)} · " if title else ""
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{heading}{escape(card.title)} · démonstrateur</title><style>{STYLE}</style></head><body>"
        f'<header><p class="kicker">Démonstrateur bibia</p><p><strong>{escape(card.title)}</strong></p>'
        f"{f'<p>{subtitle}</p>' if subtitle else ''}</header>"
        f'<nav class="back" aria-label="Liens de retour">{"".join(links)}</nav>'
        f"<main>{body}</main></body></html>"
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
    parts = ["<h1>Essayer le modèle</h1>"]
    if error:
        parts.append(
            '<section id="erreur"><h2>Votre fichier n\'a pas pu être utilisé</h2>'
            f'<p class="error" role="alert">{escape(error)}</p>'
            '<p><a href="#essayer">Corriger et renvoyer le fichier ↓</a></p></section>'
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
        sample.append(_chart(card, chart, "./", "graphique-exemple"))
        if table is not None:
            sample.append(_table(card, table, "Données d'exemple et prédictions"))
    if has_evaluation:
        sample.append(
            '<h3>Évaluation</h3><p><img src="evaluation.png" alt="Graphique d\'évaluation du modèle" '
            'style="max-width:100%;height:auto"></p>'
        )
    sample.append("</section>")
    parts.append("".join(sample))
    parts.append(_upload_form(card, columns, has_sample, max_upload_bytes, max_rows, csrf_token))
    parts.append(_api_help(columns))
    return layout(card, "".join(parts))


def result_page(
    card: CardInfo,
    *,
    result_id: str,
    chart: Chart | None,
    table: TableView,
    ignored: Sequence[str],
    defaulted: Sequence[str],
) -> str:
    """The predictions on an uploaded file (``resultats/<id>``), with its CSV downloads."""
    notes = []
    if ignored:
        notes.append(
            f'<p class="note">Colonnes ignorées (le modèle ne les utilise pas) : {escape(", ".join(ignored))}.</p>'
        )
    if defaulted:
        notes.append(
            '<p class="note">Colonnes facultatives laissées vides : '
            f"{escape(', '.join(defaulted))} ; le modèle a utilisé sa valeur par défaut.</p>"
        )
    rows = formats.number(table.total_rows)
    body = (
        f"<h1>Prédictions sur vos données</h1><section><h2>{rows} ligne{'s' if table.total_rows > 1 else ''} calculée{'s' if table.total_rows > 1 else ''}</h2>"
        f"{''.join(notes)}"
        '<p class="actions">'
        f'<a class="button" href="{escape(result_id)}.csv" download>Télécharger les prédictions (CSV pour Excel)</a>'
        f'<a class="button secondary" href="{escape(result_id)}.csv?format=international" download>CSV international (virgule, point décimal)</a></p>'
        '<p class="note">Cette page a sa propre adresse : vous pouvez la recharger ou y revenir tant que le '
        "démonstrateur tourne (les derniers résultats sont gardés).</p>"
        f"{_chart(card, chart, escape(result_id), 'graphique')}"
        f"{_table(card, table, 'Vos données et les prédictions')}</section>"
        '<p><a href="../#essayer">Envoyer un autre fichier</a></p>'
    )
    return layout(card, body, root="../", title="Résultats")


def message_page(card: CardInfo, title: str, message: str, *, root: str = "") -> str:
    """A page that says what went wrong and how to go back."""
    return layout(
        card,
        f'<h1>{escape(title)}</h1><section><p class="error" role="alert">{escape(message)}</p>'
        f'<p><a href="{root or "./"}">Revenir à l\'accueil du démonstrateur</a></p></section>',
        root=root,
        title=title,
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
            f"<li>{escape(str(m.get('label') or m['name']))} : {formats.number(m['value'])}"
            + (
                f" — référence : {formats.number(m['baseline'])}"
                if m.get("baseline") is not None
                else ""
            )
            + "</li>"
            for m in card.metrics[:12]
        )
        rows.append(f"<p><strong>Performances{baseline}.</strong></p><ul>{items}</ul>")
    if not rows:
        rows.append("<p>La fiche de ce modèle n'est pas disponible dans le démonstrateur.</p>")
    return '<section id="modele"><h2>Ce que fait le modèle</h2>' + "".join(rows) + "</section>"


def _columns_table(card: CardInfo, columns: list[Column]) -> str:
    """The columns a file must have: name, what it holds, type, whether it is required, an example."""
    body = []
    for column in columns:
        description = card.columns.get(column.name) or card.label(column.name)
        example = column.example or ""
        body.append(
            f'<tr><th scope="row"><code>{escape(column.name)}</code></th>'
            f"<td>{escape(description)}</td><td>{escape(column.label)}</td>"
            f"<td>{'oui' if column.required else 'non (vide : valeur par défaut du modèle)'}</td>"
            f"<td>{escape(example)}</td></tr>"
        )
    return (
        '<div class="table" role="region" aria-label="Colonnes attendues" tabindex="0"><table>'
        '<caption class="note">Colonnes attendues dans le fichier</caption><thead><tr>'
        '<th scope="col">Colonne</th><th scope="col">Contenu</th><th scope="col">Type</th>'
        '<th scope="col">Obligatoire</th><th scope="col">Exemple</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _upload_form(
    card: CardInfo,
    columns: list[Column],
    has_sample: bool,
    max_upload_bytes: int,
    max_rows: int,
    csrf_token: str | None,
) -> str:
    expected = (
        "<p>Le fichier doit avoir une ligne d'en-tête avec les colonnes ci-dessous ; les autres "
        "colonnes sont ignorées (gardées dans le fichier téléchargé).</p>"
        + _columns_table(card, columns)
        if columns
        else "<p>Le fichier doit avoir une ligne d'en-tête avec les colonnes du modèle.</p>"
    )
    links = ['<a href="modele.csv" download>Télécharger un modèle de fichier CSV</a>']
    if has_sample:
        links.append('<a href="sample.csv" download>Télécharger les données d\'exemple</a>')
    size = (
        f"{formats.number(max_upload_bytes / (1024 * 1024), 0)} Mio"
        if max_upload_bytes >= 1024 * 1024
        else f"{max_upload_bytes // 1024} Kio"
    )
    return (
        '<section id="essayer"><h2>Essayer avec vos données</h2>'
        f"{expected}"
        f'<p class="actions">{"".join(links)}</p>'
        '<p class="note">Fichier CSV tel que l\'enregistre un tableur : séparateur point-virgule ou '
        "virgule, virgule décimale acceptée, dates JJ/MM/AAAA ou AAAA-MM-JJ, encodage UTF-8 ou "
        f"Windows (Excel) ; {size} et {formats.number(max_rows)} lignes au plus. "
        "Vos données restent dans ce démonstrateur isolé, sans accès au réseau, et disparaissent à son arrêt.</p>"
        f'<form action="{_action("upload", csrf_token)}" method="post" enctype="multipart/form-data">'
        '<p><label for="file">Fichier CSV</label><br>'
        '<input id="file" type="file" name="file" accept=".csv,text/csv" required></p>'
        '<p><button type="submit">Calculer les prédictions</button></p></form></section>'
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


def _chart(card: CardInfo, chart: Chart | None, action: str, anchor: str) -> str:
    if chart is None:
        return '<p class="note">Aucun graphique ne peut être tracé pour ces prédictions.</p>'
    picker = ""
    if chart.series_column and len(chart.series_values) > 1:
        options = "".join(
            f'<option value="{escape(v)}"{" selected" if v == chart.series else ""}>{escape(v)}</option>'
            for v in chart.series_values
        )
        label = card.label(chart.series_column)
        picker = (
            f'<form class="picker" method="get" action="{action}#{anchor}">'
            f'<label for="serie-{anchor}">Série à afficher ({escape(label)}) :</label>'
            f'<select id="serie-{anchor}" name="serie">{options}</select>'
            '<button type="submit">Afficher</button></form>'
        )
    return (
        f'<div id="{anchor}">{picker}<figure>{chart.svg}'
        f'<figcaption class="note">{escape(chart.caption)}</figcaption></figure></div>'
    )


def _table(card: CardInfo, view: TableView, name: str) -> str:
    inputs = view.inputs.head(TABLE_ROWS)
    predictions = view.predictions.head(TABLE_ROWS)
    head = "".join(_header(card, str(c)) for c in inputs.columns)
    head += "".join(_header(card, str(c), predicted=True) for c in predictions.columns)
    body = []
    for left, right in zip(
        inputs.itertuples(index=False, name=None),
        predictions.itertuples(index=False, name=None),
        strict=False,
    ):
        cells = [_cell(v) for v in left] + [_cell(v, strong=True) for v in right]
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="note">{TABLE_ROWS} premières lignes sur {formats.number(view.total_rows)} : '
        "le fichier téléchargé les contient toutes.</p>"
        if view.total_rows > TABLE_ROWS
        else ""
    )
    return (
        f'<div class="table" role="region" aria-label="{escape(name)}" tabindex="0">'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def _header(card: CardInfo, name: str, predicted: bool = False) -> str:
    label = card.label(name)
    shown = f"Prédiction : {label}" if predicted else label
    code = f'<span class="name">{escape(name)}</span>' if label != name else ""
    return f'<th scope="col">{escape(shown)}{code}</th>'


def _cell(value: object, strong: bool = False) -> str:
    text, numeric = formats.text(value)
    shown = escape(text)
    if strong:
        shown = f"<strong>{shown}</strong>"
    return f'<td class="num">{shown}</td>' if numeric else f"<td>{shown}</td>"
