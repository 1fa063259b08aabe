"""The evaluation pages in-process, on the real evaluation service (fake runner, real worker):
tasks and leaderboards, comparisons, a job's page, the model page's sections and its three forms.

The world is the evaluation API's (:mod:`tests.evaluations_api.conftest`):
the canteen fixture model ``cantine-essai`` answers 185 meals everywhere,
three canteen benchmarks (public, members, hidden truth), two organisations.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from bibia.web import results
from bibia.web.render import templates
from tests.evaluations_api import conftest as evaluation_world
from tests.evaluations_api.conftest import (
    BENCHMARKS,
    MODEL,
    TASK,
    EvalWorld,
    cantine_csv,
    insert_evaluation,
)
from tests.web.webdata import CSRF_INPUT, csrf_token, sign_in

HTML = {"accept": "text/html"}
PUBLIC = BENCHMARKS["public"]

# The evaluation API's world, shared by this module (its fixtures, under their own names).
eval_world = evaluation_world.eval_world
short_tmp = evaluation_world.short_tmp


@pytest.fixture(scope="module")
def ev(eval_world: EvalWorld) -> EvalWorld:
    return eval_world


# ------------------------------------------------------------------ helpers


def page(ev: EvalWorld, path: str, role: str | None = None) -> Any:
    return ev.client.get(path, headers={**HTML, **ev.headers(role)}, follow_redirects=False)


def browser(ev: EvalWorld, role: str) -> TestClient:
    """A client signed in through the form (a web session and its CSRF cookie), as a browser is."""
    client = TestClient(ev.world.app)
    response = sign_in(client, ev.world.tokens[role])
    assert response.status_code == 303, response.text
    return client


def run(ev: EvalWorld) -> None:
    ev.world.app.state.evaluations.run_queued()


def verified(ev: EvalWorld, benchmark: str = PUBLIC) -> str:
    """A done verified evaluation of the fixture model on ``benchmark``, as the worker leaves it."""
    from bibia.db.models import Evaluation

    evaluation_id = insert_evaluation(ev.services, kind="benchmark", benchmark_slug=benchmark)
    with ev.services.db.session() as session:
        session.execute(
            update(Evaluation)
            .where(Evaluation.id == evaluation_id)
            .values(
                metrics={"mae": 12.5, "wmape": 0.0671, "surproduction": 3.0, "n_jours_test": 30},
                baseline_metrics={"mae": 20.0, "wmape": 0.1, "surproduction": 8.0},
                chart=CHART,
                bibia_version="0.9.0",
                runner="FakeRunner",
                duration_s=4.2,
                cpu_seconds=1.5,
                peak_memory_bytes=180 * 1024 * 1024,
                energy_wh=0.004,
                co2e_g=0.0002,
            )
        )
    return evaluation_id


CHART = {
    "kind": "series",
    "x": ["2023-09-11", "2023-09-12", "2023-09-13", "2023-09-14"],
    "observed": [370, 372, 330, 380],
    "model": [370, 370, 370, 370],
    "baseline": [365, 369, 331, 376],
    "x_label": "jour",
    "y_label": "repas servis",
}


def assert_page(response: Any, status: int = 200) -> str:
    """A French page, without script or meta refresh, and never a traceback."""
    assert response.status_code == status, (response.status_code, response.text[:800])
    assert response.headers["content-type"].startswith("text/html")
    text = str(response.text)
    assert '<html lang="fr">' in text
    assert "<script" not in text and 'http-equiv="refresh"' not in text
    assert "Traceback" not in text
    return text


def assert_french_error_page(response: Any, status: int) -> str:
    text = assert_page(response, status)
    assert "erreur-page" in text and f"Erreur {status}" in text
    return text


def upload(client: TestClient, data: bytes, *, token_page: str, **fields: str) -> Any:
    """The « Évaluer sur mes données » form posted as a browser does (the CSRF token first)."""
    token = csrf_token(client, token_page)
    return client.post(
        f"/modeles/{MODEL}/evaluer",
        data={"csrftoken": token, "version": "alias:production", **fields},
        files={"fichier": ("mes-cantines.csv", data, "text/csv")},
        headers=HTML,
        follow_redirects=False,
    )


# ------------------------------------------------------------------ figures and charts (no service)


def test_figures_are_french() -> None:
    assert results.measure(0.1234, "fraction") == "12,3\u202f%"
    assert results.measure(12.5, "repas", with_unit=True) == "12,5\u00a0repas"
    assert results.measure(1234.0) == "1\u202f234"
    assert results.measure(None) == "—"
    assert results.measure(float("nan")) == "—" and results.measure("<b>") == "—"
    assert results.seconds(3.5) == "3,5\u00a0s"
    assert results.seconds(185) == "3\u00a0min\u00a005\u00a0s"
    assert results.memory(256 * 1024 * 1024) == "256\u00a0Mio"
    assert results.energy(0.5) == "0,5\u00a0Wh"
    assert results.carbon(0.02) == "0,02\u00a0g\u00a0CO₂e"


def test_a_chart_drops_what_is_not_a_finite_number() -> None:
    chart = results.series_chart(
        {
            "kind": "series",
            "x": ["2018-01-08", "2018-01-09", "2018-01-10", "2018-01-11"],
            "observed": [100, float("nan"), "beaucoup", 120],
            "model": [110, 105, float("inf"), None],
            "baseline": [90, 95, 100, [1, 2]],
        },
        "essai",
    )
    assert chart is not None and chart.kind == "series"
    points = {line.key: line.points.split() for line in chart.lines}
    assert len(points["observed"]) == 2 and len(points["model"]) == 2
    assert len(points["baseline"]) == 3
    assert chart.table[1] == ("9 janv. 2018", ["—", "105", "95"])
    for line in chart.lines:  # every point inside the drawing
        for point in line.points.split():
            x, y = (float(v) for v in point.split(","))
            assert results.LEFT <= x <= results.WIDTH - results.RIGHT
            assert results.TOP <= y <= results.HEIGHT - results.BOTTOM
    assert results.series_chart({"kind": "series", "x": ["a"], "model": ["x"]}, "t") is None
    huge = results.series_chart({"x": ["a", "b", "c"], "model": [1e308, -1e308, 2.0]}, "t")
    assert huge is not None and len(huge.lines[0].points.split()) == 1
    assert results.evaluation_chart({"kind": "autre"}, "t") is None
    assert results.evaluation_chart("pas un graphique", "t") is None


def test_a_charts_dates_are_french() -> None:
    days = [f"2017-12-{d:02d}" for d in range(1, 32)]
    chart = results.series_chart({"x": days, "model": list(range(31))}, "t")
    assert chart is not None
    assert [t.text for t in chart.x_ticks] == [
        "1er déc. 2017",
        "7 déc. 2017",
        "13 déc. 2017",
        "19 déc. 2017",
        "25 déc. 2017",
        "31 déc. 2017",
    ]
    assert chart.labels[11] == "12 déc. 2017"
    months = [f"{y}-{m:02d}-01" for y in (2017, 2018) for m in range(1, 13)]
    chart = results.series_chart({"x": months, "model": list(range(24))}, "t")
    assert chart is not None
    assert [t.text for t in chart.x_ticks][:3] == ["janv. 2017", "mai 2017", "sept. 2017"]
    assert chart.labels[11] == "déc. 2017"
    years = results.series_chart({"x": ["2016-01-01", "2017-01-01"], "model": [1, 2]}, "t")
    assert years is not None and [t.text for t in years.x_ticks] == ["2016", "2017"]
    # weeks over years: the ticks name their month, the table keeps each Monday
    weeks = [str(dt.date(2016, 1, 4) + dt.timedelta(weeks=i)) for i in range(300)]
    chart = results.series_chart({"x": weeks, "model": list(range(300))}, "t")
    assert chart is not None
    assert chart.x_ticks[1].text == "déc. 2016" and chart.labels[1] == "11 janv. 2016"
    svg = templates.get_template("_evaluation_macros.html").module.svg_chart(chart, "g")
    assert "déc. 2016" in svg and "2016-12" not in svg


def test_a_chart_is_bounded() -> None:
    many = list(range(5000))
    chart = results.series_chart({"x": many, "model": many}, "t")
    assert chart is not None and len(chart.labels) == results.MAX_POINTS
    assert len(chart.lines[0].points.split()) == results.MAX_POINTS
    bars = results.bars_chart(["v1", "v2"], [("model", "MAE", [3.0, -1.0])], "t")
    assert bars is not None
    assert all(bar.height >= 0 for bar in bars.bars)


# ------------------------------------------------------------------ tasks and leaderboards


def test_the_tasks_page_lists_shared_and_generic_tasks(ev: EvalWorld) -> None:
    text = assert_page(page(ev, "/taches"))
    assert f'href="/taches/{TASK}"' in text
    assert "Prévision de la fréquentation des cantines scolaires" in text
    assert "Tâches génériques" in text and 'href="/taches/regression"' in text


def test_a_leaderboard_ranks_the_model_beside_the_highlighted_baseline(
    ev: EvalWorld,
) -> None:
    evaluation_id = verified(ev)
    text = assert_page(page(ev, f"/taches/{TASK}?jeu={PUBLIC}"))
    assert "<caption>" in text and 'scope="col"' in text
    table = text[text.index('<table class="tableau classement">') :]
    table = table[: table.index("</table>")]
    assert table.count('class="ligne-reference"') == 1
    assert "Référence : moyenne du même jour de la semaine" in table
    assert f'href="/evaluations/{evaluation_id}"' in table
    assert f'href="/modeles/{MODEL}"' in table
    # every metric is a sort link; the current one carries aria-sort
    for metric in ("mae", "wmape", "surproduction"):
        assert re.search(
            rf'href="/taches/{TASK}\?jeu={PUBLIC}&amp;tri={metric}&amp;ordre=(asc|desc)"', table
        )
    # the percentage of a fraction metric, in French
    assert re.search(r"\d+,\d\u202f%", table)

    asc = assert_page(page(ev, f"/taches/{TASK}?jeu={PUBLIC}&tri=mae&ordre=asc"))
    assert 'aria-sort="ascending"' in asc
    assert "tri=mae&amp;ordre=desc" in asc  # clicking the sorted column again reverses it
    desc = assert_page(page(ev, f"/taches/{TASK}?jeu={PUBLIC}&tri=mae&ordre=desc"))
    assert 'aria-sort="descending"' in desc

    # bad parameters: a French note, the usual order
    odd = assert_page(page(ev, f"/taches/{TASK}?jeu={PUBLIC}&tri=%3Cscript%3E&ordre=n%27importe"))
    assert "inconnue pour cette tâche" in odd and "&lt;script&gt;" in odd
    assert "rdre « n&#39;importe » inconnu" in odd


def test_a_leaderboard_follows_the_benchmarks_visibility(ev: EvalWorld) -> None:
    anonymous = assert_page(page(ev, f"/taches/{TASK}"))
    assert BENCHMARKS["membres"] not in anonymous
    member = assert_page(page(ev, f"/taches/{TASK}", "member"))
    assert f'<option value="{BENCHMARKS["membres"]}"' in member
    assert_french_error_page(page(ev, f"/taches/{TASK}?jeu={BENCHMARKS['membres']}"), 404)
    # hidden truth: the inputs are for members, the truth for nobody
    hidden = assert_page(page(ev, f"/taches/{TASK}?jeu={BENCHMARKS['verite-cachee']}", "member"))
    assert "entrees.csv" in hidden and "verite.csv" not in hidden


def test_unknown_tasks_and_benchmarks_are_french_404_pages(ev: EvalWorld) -> None:
    for path in (
        "/taches/tache-inconnue",
        "/taches/..%2F..%2Fetc",
        f"/taches/{TASK}?jeu=jeu-inconnu",
        f"/taches/{TASK}?jeu=%3Cb%3E",
    ):
        assert_french_error_page(page(ev, path), 404)


# ------------------------------------------------------------------ comparison


def test_comparing_two_references_of_one_model(ev: EvalWorld) -> None:
    verified(ev)
    text = assert_page(page(ev, f"/comparer?modeles={MODEL}@production,{MODEL}/1"))
    table = text[text.index('<table class="tableau comparaison">') :]
    assert f"{MODEL}@production" in table and f"{MODEL}/1" in table
    assert "vérifié par la plateforme" in table
    assert 'href="/evaluations/' in table
    assert 'scope="row"' in table and "<caption>" in table


def test_comparison_input_errors_are_french(ev: EvalWorld) -> None:
    empty = assert_page(page(ev, "/comparer"))
    assert '<label for="modeles">' in empty and "comparaison" not in empty.split("</form>")[1]
    assert_french_error_page(page(ev, "/comparer?modeles=Pas%20un%20nom!"), 400)
    many = ",".join(f"{MODEL}/{i}" for i in range(1, 12))
    assert "au plus" in assert_french_error_page(page(ev, f"/comparer?modeles={many}"), 400)
    assert_french_error_page(page(ev, "/comparer?modeles=modele-inconnu@production"), 404)


# ------------------------------------------------------------------ one evaluation


def test_a_finished_evaluation_in_plain_french(ev: EvalWorld) -> None:
    evaluation_id = verified(ev)
    text = assert_page(page(ev, f"/evaluations/{evaluation_id}"))
    assert "vérifié par la plateforme" in text
    assert "meilleur que la référence" in text or "moins bon que la référence" in text
    assert "Actualiser" not in text and "<progress" not in text
    assert "Coût mesuré" in text and "Wh" in text
    assert "sha256:" in text and "Version de bibia" in text
    assert f"{PUBLIC}/" in text  # the benchmark's slug and version
    job = ev.client.get(f"/api/v1/evaluations/{evaluation_id}").json()
    if job["chart"]:
        assert '<svg class="graphe"' in text and 'role="img"' in text and "<title id=" in text
        assert "Voir les données du graphique" in text


def test_a_queued_evaluation_has_a_progress_bar_and_a_refresh_link(ev: EvalWorld) -> None:
    evaluation_id = insert_evaluation(
        ev.services, kind="benchmark", state="queued", benchmark_slug=PUBLIC
    )
    text = assert_page(page(ev, f"/evaluations/{evaluation_id}"))
    assert re.search(r'<progress id="progression" max="1" value="0\.000">', text)
    assert (
        f'<a class="bouton bouton-secondaire" href="/evaluations/{evaluation_id}">Actualiser</a>'
        in text
    )
    assert "en attente" in text


def test_a_member_cancels_a_queued_evaluation_from_its_page(ev: EvalWorld) -> None:
    evaluation_id = insert_evaluation(
        ev.services, kind="benchmark", state="queued", benchmark_slug=PUBLIC
    )
    path = f"/evaluations/{evaluation_id}"
    # another organisation sees the public job, but no button; the owner's member does
    outsider = browser(ev, "other_member")
    assert "Annuler l'évaluation" not in assert_page(outsider.get(path))
    refused = outsider.post(
        f"{path}/annuler", data={"csrftoken": csrf_token(outsider, path)}, follow_redirects=False
    )
    assert_french_error_page(refused, 404)
    member = browser(ev, "member")
    assert "Annuler l'évaluation" in assert_page(member.get(path))
    response = member.post(
        f"{path}/annuler", data={"csrftoken": csrf_token(member, path)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == path
    text = assert_page(member.get(path))
    assert "L'évaluation a été annulée" in text and "Annuler l'évaluation" not in text


def test_a_private_evaluation_is_its_organisations_only(ev: EvalWorld) -> None:
    evaluation_id = insert_evaluation(ev.services, kind="donnees")
    for role in (None, "other_member"):
        assert_french_error_page(page(ev, f"/evaluations/{evaluation_id}", role), 404)
    text = assert_page(page(ev, f"/evaluations/{evaluation_id}", "member"))
    assert "Sur vos données" in text and "mes-cantines.csv" in text
    assert "6,7\u202f%" in text and "10,0\u202f%" in text  # wmape 0.0671 against 0.1
    assert "meilleur que la référence" in text


def test_a_hostile_chart_is_escaped_and_bounded(ev: EvalWorld) -> None:
    from bibia.db.models import Evaluation

    evaluation_id = insert_evaluation(ev.services, kind="donnees")
    chart = {
        "kind": "series",
        "x": ['<script>alert("x")</script>', "</svg><img src=x onerror=alert(1)>", "ok"],
        "model": [1.0, 1e308, -1e308],
        "observed": ["<b>", None, 3],
        "x_label": "<i>jour</i>",
    }
    with ev.services.db.session() as session:
        session.execute(
            update(Evaluation).where(Evaluation.id == evaluation_id).values(chart=chart)
        )
    text = assert_page(page(ev, f"/evaluations/{evaluation_id}", "member"))
    assert "<img src=x" not in text and "<i>jour</i>" not in text
    assert "&lt;script&gt;" in text
    assert text.count("<svg") == 1


def test_unknown_evaluations_are_french_404_pages(ev: EvalWorld) -> None:
    for ident in ("inconnue", "0" * 32, "a" * 200, "%3Cscript%3E"):
        assert_french_error_page(page(ev, f"/evaluations/{ident}"), 404)


# ------------------------------------------------------------------ the model page


def test_the_model_page_marks_verified_results_beside_declared_ones(ev: EvalWorld) -> None:
    evaluation_id = verified(ev)
    text = assert_page(page(ev, f"/modeles/{MODEL}"))
    section = text[text.index('id="resultats-verifies"') :]
    section = section[: section.index("</section>")]
    assert 'Résultats <span class="marque-verifie">vérifiés par la plateforme</span>' in section
    assert f'href="/evaluations/{evaluation_id}"' in section
    assert "version 1" in section
    assert 'role="img"' in section  # the versions side by side
    # anonymous: no form to evaluate, a sign-in invitation instead
    assert f'action="/modeles/{MODEL}/evaluer"' not in text
    assert "Ils réutilisent ce modèle" in text and "Retours d" in text


def test_a_member_sees_the_forms_with_their_csrf_token_first(ev: EvalWorld) -> None:
    client = browser(ev, "member")
    text = assert_page(client.get(f"/modeles/{MODEL}", headers=HTML))
    for action in (f"/modeles/{MODEL}/evaluer", f"/modeles/{MODEL}/reutilisations"):
        form = text[text.index(f'action="{action}"') :]
        form = form[: form.index("</form>")]
        first = form[form.index(">") + 1 :].lstrip()
        assert CSRF_INPUT.match(first), (action, first[:200])
        for field in re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', form):
            assert f'<label for="{field}"' in form, (action, field)
    assert 'enctype="multipart/form-data"' in text


def test_evaluating_on_my_data_from_the_model_page(ev: EvalWorld) -> None:
    client = browser(ev, "member")
    sent = upload(client, cantine_csv(weeks=6), token_page=f"/modeles/{MODEL}")
    assert sent.status_code == 303, sent.text[:800]
    location = sent.headers["location"]
    assert re.fullmatch(r"/evaluations/[0-9a-zA-Z-]+", location)
    waiting = assert_page(client.get(location, headers=HTML))
    assert "<progress" in waiting and ">Actualiser</a>" in waiting
    run(ev)
    done = assert_page(client.get(location, headers=HTML))
    assert "terminée" in done and "mes-cantines.csv" in done
    assert "meilleur que la référence" in done or "moins bon que la référence" in done
    # private: another organisation and the public do not see it
    assert_french_error_page(page(ev, location), 404)
    assert_french_error_page(page(ev, location, "other_member"), 404)

    # publish it as a report, to members
    token = CSRF_INPUT.search(done)
    assert token and f'action="{location}/publier"' in done
    published = client.post(
        f"{location}/publier",
        data={
            "csrftoken": token.group(1),
            "texte": "Testé sur nos cantines de 2023.",
            "audience": "membres",
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert published.status_code == 303, published.text[:800]
    assert published.headers["location"] == f"/modeles/{MODEL}#retours"
    assert "Testé sur nos cantines de 2023." in assert_page(
        page(ev, f"/modeles/{MODEL}", "other_member")
    )
    assert "Testé sur nos cantines de 2023." not in assert_page(page(ev, f"/modeles/{MODEL}"))


def test_the_upload_form_refuses_bad_input_in_french(ev: EvalWorld) -> None:
    client = browser(ev, "member")
    model_page = f"/modeles/{MODEL}"
    bad = upload(client, b"date;cantine_nom\n01/02/2024;A\n", token_page=model_page)
    assert bad.status_code in (400, 422), bad.text[:500]
    assert_french_error_page(bad, bad.status_code)
    not_csv = upload(client, b"\x00\x01\x02binaire", token_page=model_page)
    assert not_csv.status_code in (400, 422)
    assert_french_error_page(not_csv, not_csv.status_code)
    too_big = upload(client, b"a;b\n" + b"1;2\n" * 300_000, token_page=model_page)
    assert too_big.status_code == 413
    assert_french_error_page(too_big, 413)
    empty = upload(client, b"", token_page=model_page)
    assert_french_error_page(empty, 400)
    wrong_version = upload(client, cantine_csv(), token_page=model_page, version="n'importe")
    assert_french_error_page(wrong_version, 400)
    # without the CSRF token: refused before anything is read
    forged = client.post(
        f"/modeles/{MODEL}/evaluer",
        data={"version": "alias:production"},
        files={"fichier": ("x.csv", cantine_csv(), "text/csv")},
        headers=HTML,
    )
    assert_french_error_page(forged, 403)


def test_anonymous_forms_lead_to_the_sign_in_page(ev: EvalWorld) -> None:
    client = TestClient(ev.world.app)
    token = csrf_token(client)  # an anonymous model page has no form: the sign-in page's token
    sent = client.post(
        f"/modeles/{MODEL}/evaluer",
        data={"csrftoken": token, "version": "alias:production"},
        files={"fichier": ("x.csv", cantine_csv(), "text/csv")},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"].startswith("/connexion?next=")
    reuse = client.post(
        f"/modeles/{MODEL}/reutilisations",
        data={"csrftoken": token, "texte": "x"},
        follow_redirects=False,
    )
    assert reuse.status_code == 303 and reuse.headers["location"].startswith("/connexion?next=")


def test_declaring_a_reuse(ev: EvalWorld) -> None:
    client = browser(ev, "other_member")
    token = csrf_token(client, f"/modeles/{MODEL}")
    bad = client.post(
        f"/modeles/{MODEL}/reutilisations",
        data={"csrftoken": token, "texte": "Nous l'utilisons.", "lien": "javascript:alert(1)"},
        headers=HTML,
    )
    assert "https://" in assert_french_error_page(bad, 400)
    empty = client.post(
        f"/modeles/{MODEL}/reutilisations", data={"csrftoken": token, "texte": "  "}, headers=HTML
    )
    assert_french_error_page(empty, 400)
    sent = client.post(
        f"/modeles/{MODEL}/reutilisations",
        data={
            "csrftoken": token,
            "texte": "Lille prévoit ses commandes de repas avec ce modèle.",
            "lien": "https://www.lille.fr/cantines",
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text[:800]
    assert sent.headers["location"] == f"/modeles/{MODEL}#reutilisations"
    shown = assert_page(page(ev, f"/modeles/{MODEL}"))
    section = shown[shown.index('id="reutilisations"') :]
    assert "Lille prévoit ses commandes de repas avec ce modèle." in section
    assert "Métropole Européenne de Lille" in section
    assert 'href="https://www.lille.fr/cantines"' in section


@pytest.mark.parametrize(
    "path",
    [
        "/taches",
        f"/taches/{TASK}",
        "/comparer",
        f"/comparer?modeles={MODEL}@production",
        f"/modeles/{MODEL}",
    ],
)
def test_every_page_answers_anonymous_visitors(ev: EvalWorld, path: str) -> None:
    assert_page(page(ev, path))
