"""Pages of a session: log in and out (the ``bibia_session`` cookie), launch and wait for a demonstrator.

The cookie is HttpOnly, SameSite=Lax, Secure over HTTPS, and only web pages
and the demonstrator proxy read it (the JSON API never does). Launching is a
POST from our own form: SameSite=Lax keeps the cookie off cross-site POSTs,
and a foreign ``Origin`` is refused as well.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bibia.auth import ANONYMOUS, authenticate
from bibia.deps import COOKIE, ServicesDep
from bibia.web.pages import PageCallerDep, _model_name
from bibia.web.render import PageRoute, render
from registry.errors import Forbidden, InvalidInput, Unauthorized
from registry.refs import ModelRef, check_alias, check_version
from registry.tiers import Tier

router = APIRouter(include_in_schema=False, route_class=PageRoute)

SESSION_SECONDS = 12 * 3600
WAITING_STATES = {"pending", "starting"}


def safe_next(target: str | None) -> str:
    """Only ever redirect to a local path (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target and "://" not in target:
        return target
    return "/"


def _login(request: Request, next_url: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "connexion.html", status=status, title="Connexion", next_url=next_url, error=error, caller=ANONYMOUS)


@router.get("/connexion", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _login(request, safe_next(next))


@router.post("/connexion")
def login(request: Request, services: ServicesDep, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    target = safe_next(next)
    try:
        with services.db.session() as session:
            caller = authenticate(session, token.strip())
    except Unauthorized as exc:
        return _login(request, target, exc.message, status=401)
    if caller.tier < Tier.RESTRICTED:
        return _login(request, target, "ce jeton ne donne pas accès aux contenus réservés", status=403)
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        token.strip(),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
        max_age=SESSION_SECONDS,
    )
    return response


@router.post("/deconnexion", response_class=HTMLResponse)
def logout(request: Request) -> HTMLResponse:
    response = render(request, "message.html", title="Déconnexion", message="Vous êtes déconnecté.", caller=ANONYMOUS)
    response.delete_cookie(COOKIE, path="/")
    return response


def _check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        raise Forbidden("requête refusée : elle ne vient pas d'une page de bibia")


def _launch_ref(name: str, choice: str) -> ModelRef:
    """``choice`` from the launch form: ``alias:production`` or ``version:3``."""
    kind, _, value = choice.partition(":")
    if kind == "alias":
        return ModelRef(name=name, alias=check_alias(value))
    if kind == "version":
        return ModelRef(name=name, version=check_version(value))
    raise InvalidInput("choisissez une version ou un alias du modèle à lancer")


@router.post("/modeles/{name}/demonstrateur")
def launch(request: Request, name: str, caller: PageCallerDep, version: Annotated[str, Form()] = "") -> Response:
    _check_origin(request)
    if not caller.is_authenticated:
        return RedirectResponse(f"/connexion?next={quote(f'/modeles/{name}')}", status_code=303)
    view = request.app.state.demos.launch(caller, _launch_ref(_model_name(name), version))
    return RedirectResponse(f"/demonstrateurs/{quote(view.id)}", status_code=303)


@router.get("/demonstrateurs/{demo_id}", response_class=HTMLResponse)
def waiting_page(request: Request, demo_id: str, caller: PageCallerDep) -> Response:
    if not caller.is_authenticated:
        return RedirectResponse(f"/connexion?next={quote(request.url.path)}", status_code=303)
    demo = request.app.state.demos.get(caller, demo_id)
    return render(
        request,
        "demonstrateur.html",
        title=f"Démonstrateur de {demo.model}",
        demo=demo,
        waiting=demo.state in WAITING_STATES,
    )
