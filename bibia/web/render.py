"""Rendering of the web pages: the Jinja environment, French labels, error pages.

Pages only ever receive data that ``bibia.catalogue`` already filtered for
the caller's tier; templates decide what to show from the *presence* of a
field (a restricted field is absent, not empty, for a public caller).
Every HTML answer carries the same security headers as the demonstrator
proxy: a strict Content-Security-Policy, no scripts at all; a page that
needs one of bibia's own scripts asks for a nonce (``scripts=True``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bibia import oidc, policy
from bibia.auth import ANONYMOUS, Caller
from bibia.db.engine import unavailable as database_unavailable
from bibia.deps import COOKIE
from bibia.errors import error_response
from bibia.guards import security_headers
from bibia.web.csrf import hidden_field
from domain import french
from domain.errors import BibiaError, InvalidInput
from registry.card import Automation, Status, Task, Theme
from registry.tiers import Tier

log = logging.getLogger("bibia.web")

HERE = Path(__file__).parent

THEMES = {
    Theme.TRANSITION_ECOLOGIQUE: "Transition écologique",
    Theme.MAINTENANCE: "Maintenance",
    Theme.MOBILITES: "Mobilités",
    Theme.SOCIAL: "Social",
    Theme.SANTE: "Santé",
    Theme.EDUCATION: "Éducation",
    Theme.URBANISME: "Urbanisme",
    Theme.SECURITE: "Sécurité",
    Theme.RELATION_USAGER: "Relation aux usagers",
    Theme.AUTRE: "Autre",
}
STATUSES = {
    Status.EXPERIMENTATION: "Expérimentation",
    Status.PILOTE: "Pilote",
    Status.PRODUCTION: "En production",
    Status.RETIRE: "Retiré",
}
TASKS = {
    Task.PREVISION_SERIE_TEMPORELLE: "Prévision de série temporelle",
    Task.DETECTION_ANOMALIES: "Détection d'anomalies",
    Task.CLASSIFICATION: "Classification",
    Task.REGRESSION: "Régression",
    Task.DETECTION_OBJETS: "Détection d'objets",
    Task.SEGMENTATION_IMAGE: "Segmentation d'images",
    Task.TRAITEMENT_TEXTE: "Traitement du texte",
    Task.AUTRE: "Autre",
}
AUTOMATION = {
    Automation.AIDE_A_LA_DECISION: "Aide à la décision",
    Automation.DECISION_AUTOMATISEE: "Décision automatisée",
}
TIER_LABELS = {tier: tier.display for tier in Tier}  # public, membre, expert, administrateur
LABELS: dict[str, dict[str, str]] = {
    "theme": {k.value: v for k, v in THEMES.items()},
    "status": {k.value: v for k, v in STATUSES.items()},
    "task": {k.value: v for k, v in TASKS.items()},
    "automation": {k.value: v for k, v in AUTOMATION.items()},
}


def label(value: Any, kind: str) -> str:
    """The French label of an enum value (``theme``, ``status``, ``task``, ``automation``)."""
    if value is None:
        return ""
    return LABELS[kind].get(str(value), str(value))


# The French figures of every page: one home, domain.french (the charts and the CLI use it too).
number = french.number  # « 12,35 », « 1 235 », « — » for nothing
date_fr = french.date  # « 1er mars 2026 »
percent = french.percent  # 0.054 → « 5,4 % »
measure = french.measure  # a score in its unit: « 12,3 % », « 4,2 repas »
plural = french.plural  # « 0 modèle », « 1 jour », « 2 jours »
moment = french.moment  # « 3 mars 2026 à 15 h 05 », Paris time
duration = french.duration  # « 2 min 30 s », « 4 jours »


def or_dash(value: Any) -> Any:
    """``value``, or « — » when there is nothing to show (never ``None``)."""
    return french.MISSING if value is None or value == "" else value


def compare(value: float | None, baseline: float | None, higher_is_better: bool) -> str | None:
    """``"meilleur"``, ``"moins-bon"`` or ``"egal"`` against the baseline; None without a baseline."""
    if value is None or baseline is None:
        return None
    if value == baseline:
        return "egal"
    better = value > baseline if higher_is_better else value < baseline
    return "meilleur" if better else "moins-bon"


def card_metrics(card: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The metrics of a card's evaluation by name, in the card's order."""
    metrics = ((card or {}).get("model") or {}).get("evaluation", {}).get("metrics") or []
    return {m["name"]: m for m in metrics}


def metric_label(metric: dict[str, Any] | Any) -> str:
    """What a person reads as a metric's name: its French label (else its description, else its
    name, for the cards that give neither)."""
    get = metric.get if isinstance(metric, dict) else lambda key: getattr(metric, key, None)
    return str(get("label") or get("description") or get("name") or "")


def metric_order(values: dict[str, Any], infos: dict[str, Any]) -> list[str]:
    """The names of ``values`` in the card's order (``infos``), the unknown ones after."""
    known = [name for name in infos if name in values]
    return known + sorted(name for name in values if name not in infos)


def key_metric(card: dict[str, Any] | None) -> dict[str, Any] | None:
    """The first score of a card's evaluation that has a baseline (else the first score).

    Facts about the evaluation (``kind: contexte``, a count of test days) are never a key metric.
    """
    scores = [m for m in card_metrics(card).values() if m.get("kind") != "contexte"]
    if not scores:
        return None
    chosen = next((m for m in scores if m.get("baseline") is not None), scores[0])
    return {
        **chosen,
        "verdict": compare(
            chosen["value"], chosen.get("baseline"), chosen.get("higher_is_better", False)
        ),
    }


def person(actor: Any) -> str:
    """Who did something, for a person: « alice@nantes-metropole », without the audit log's
    technical part (token, session); the platform itself is « bibia (automatique) »."""
    if not actor:
        return french.MISSING
    who = str(actor).split(" (", 1)[0].strip()
    if who in {"systeme@bibia", "systeme"}:
        return "bibia (automatique)"
    return who or french.MISSING


def with_query(params: dict[str, Any], **changes: Any) -> str:
    """A query string from ``params`` with ``changes`` applied (empty values dropped)."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        label=label,
        number=number,
        date_fr=date_fr,
        plural=plural,
        pourcentage=percent,
        mesure=measure,
        moment=moment,
        duree=duration,
        ou_tiret=or_dash,
        personne=person,
        urlquote=lambda s: quote(str(s), safe=""),
    )
    env.globals.update(
        key_metric=key_metric,
        card_metrics=card_metrics,
        metric_label=metric_label,
        metric_order=metric_order,
        compare=compare,
        with_query=with_query,
        THEMES={k.value: v for k, v in THEMES.items()},
        STATUSES={k.value: v for k, v in STATUSES.items()},
        TASKS={k.value: v for k, v in TASKS.items()},
        TIER_LABELS=TIER_LABELS,
        may_administer=policy.may_administer,  # the « Administration » entry
        may_publish_models=policy.may_register_models,  # the « Publier un modèle » entry
        may_write_model=policy.may_write_model,  # a model page's publication links
        Tier=Tier,
    )
    return env


templates = _environment()


def request_caller(request: Request) -> Caller:
    """The caller the page dependency resolved for this request (anonymous before that)."""
    return getattr(request.state, "caller", ANONYMOUS)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` in the site layout, with the security headers of every bibia page.

    ``scripts=True`` in ``context``: the page's CSP allows the scripts that carry its
    ``script_nonce`` (and no other).
    """
    caller = context.pop("caller", None) or request_caller(request)
    # a page that asks for ``scripts`` gets a nonce its own <script> elements (bibia's files under
    # /static/) carry; every other page runs no script at all
    nonce = secrets.token_urlsafe(18) if context.pop("scripts", False) else None
    here = request.url.path
    if request.url.query:
        here = f"{here}?{request.url.query}"
    body = templates.get_template(template).render(
        request=request,
        caller=caller,
        path=request.url.path,
        here=here,
        session_expired=getattr(request.state, "session_expired", False),
        csrf_field=lambda: hidden_field(request),
        script_nonce=nonce,
        **context,
    )
    headers = security_headers(form_action=_form_action(request), script_nonce=nonce)
    response = HTMLResponse(body, status_code=status, headers=headers)
    if getattr(request.state, "session_expired", False):
        forget_session(request, response)
    return response


def _form_action(request: Request) -> str:
    """Forms post to bibia; sign-in and sign-out may redirect on to the identity provider."""
    # the app is absent from the scope when a page is rendered outside it (the edge's error answers)
    app = request.scope.get("app")
    services = getattr(app.state, "services", None) if app is not None else None
    targets = oidc.form_targets(services.settings) if services is not None else ()
    return " ".join(["'self'", *targets])


def cookie_secure(request: Request) -> bool:
    return bool(request.app.state.services.settings.cookies_secure(request.url.scheme))


def forget_session(request: Request, response: Response) -> None:
    """Tell the browser to drop its session cookie (same attributes as when it was set)."""
    response.delete_cookie(
        COOKIE, path="/", secure=cookie_secure(request), httponly=True, samesite="lax"
    )


TITLES = {
    400: "Requête invalide",
    401: "Connexion nécessaire",
    403: "Accès refusé",
    404: "Page introuvable",
    405: "Méthode non autorisée",
    409: "Action impossible pour le moment",
    413: "Envoi trop volumineux",
    422: "Données invalides",
    429: "Quota atteint",
    500: "Erreur interne",
    502: "Service indisponible",
    503: "Service indisponible",
}


def error_page(
    request: Request, status: int, message: str, title: str | None = None
) -> HTMLResponse:
    """A friendly French error page (never a traceback)."""
    title = title or TITLES.get(status, "Erreur")
    return render(request, "erreur.html", status=status, title=title, message=message, code=status)


class PageRoute(APIRoute):
    """A route whose errors become French HTML pages instead of JSON.

    Bibia errors keep their HTTP status (:mod:`bibia.errors`) and message;
    invalid parameters are a 400 page; anything unexpected is logged and
    answered with a plain 500 page.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except BibiaError as exc:
                return error_response(request, exc, page=True)
            except RequestValidationError as exc:
                fields = ", ".join(
                    ".".join(
                        str(p) for p in err.get("loc", ()) if p not in {"body", "query", "path"}
                    )
                    or "(requête)"
                    for err in exc.errors()
                )
                invalid = InvalidInput(f"paramètres manquants ou invalides : {fields}")
                return error_response(request, invalid, page=True)
            except Exception as exc:
                outage = database_unavailable(exc)
                if outage is not None:
                    return error_response(request, outage, page=True)
                log.exception("unexpected error on page %s %s", request.method, request.url.path)
                internal = BibiaError(
                    "une erreur interne est survenue ; elle a été journalisée. Réessayez plus tard."
                )
                return error_response(request, internal, page=True)

        return page_handler
