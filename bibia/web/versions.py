"""« Fichiers et versions »: a version's files and downloads, its pull snippet, and the model's aliases.

- ``GET /modeles/{name}/versions/{version}/fichiers``: the version's files as a
  tree with French sizes, the lines that pull it (stock MLflow client,
  ``bibia pull``), the model's aliases, and for the experts of the owner the
  forms that move and remove them.
- ``GET /modeles/{name}/versions/{version}/fichiers/{path}``: one file, with the
  browser's session (or a bearer token), streamed as an attachment.
- ``POST /modeles/{name}/alias`` and ``POST /modeles/{name}/alias/supprimer``:
  the API's alias writes (:func:`bibia.catalogue.set_alias`, with the
  promotion gate, and :func:`~bibia.catalogue.delete_alias`; audit-logged).

Files are for the callers the MLflow gateway serves, through the same check
and the same code (:mod:`bibia.artifacts`); aliases for the experts of the
owning organisation (:func:`bibia.policy.may_move_alias`). A member reads a
French 403, an anonymous visitor is asked to sign in. Every path that is not
one of the version's files (``..``, an absolute path, a link out of it, an
unknown name) is a French 404.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from bibia import artifacts, catalogue, policy
from bibia.auth import Caller
from bibia.deps import RegistryDep, SessionDep
from bibia.web.pages import PageCallerDep, _model_name
from bibia.web.render import PageRoute, render
from domain import french
from domain.errors import Conflict, InvalidInput, NotFound
from registry.refs import ALIAS_HELP, ALIAS_RE, check_alias, check_version
from registry.store import Registry

router = APIRouter(include_in_schema=False, route_class=PageRoute)

SIGN_IN = " ; connectez-vous avec un compte expert"
DONE = {
    "alias": "L'alias « {alias} » désigne maintenant la version {version}.",
    "alias-supprime": "L'alias « {alias} » est supprimé.",
}


def files_url(name: str, version: int | str) -> str:
    return f"/modeles/{quote(name, safe='')}/versions/{version}/fichiers"


def _version(name: str, raw: str) -> int:
    """A version number from an address; anything else is not found."""
    try:
        return check_version(raw)
    except InvalidInput as exc:
        raise NotFound(f"le modèle « {name} » n'a pas de version « {raw[:20]} »") from exc


def _file(raw: str, version: int) -> str:
    """A path inside a version as the address gives it; one that cannot be a file of it is not found."""
    parts = raw.split("/")
    if (
        raw.startswith("/")
        or "\\" in raw
        or any(ord(c) < 32 or c == "\x7f" for c in raw)
        or any(p in {"", ".", ".."} for p in parts)
        or len(raw) > 1000
    ):
        raise NotFound(f"aucun fichier « {_shown(raw)} » dans la version {version}")
    return raw


def _shown(path: str) -> str:
    """A path as an error message shows it: 200 characters at most, control characters replaced."""
    return "".join("\ufffd" if ord(c) < 32 or c == "\x7f" else c for c in path[:200])


def base_url(request: Request) -> str:
    """The address the snippets point the MLflow client at: ``public_url``, else this request's."""
    public: str | None = request.app.state.services.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def pull_snippets(url: str, name: str, version: int, aliases: list[str]) -> dict[str, str]:
    """The copy-paste lines that pull ``name`` version ``version`` (never anybody's real token)."""
    alias = "production" if "production" in aliases else (sorted(aliases)[0] if aliases else None)
    uris = [f"models:/{name}/{version}"] + ([f"models:/{name}@{alias}"] if alias else [])
    python = "\n".join(
        [
            "import os",
            "import mlflow",
            "",
            f'os.environ["MLFLOW_TRACKING_URI"] = "{url}"',
            'os.environ["MLFLOW_TRACKING_TOKEN"] = "<votre jeton expert>"',
            "",
            f'modele = mlflow.pyfunc.load_model("{uris[0]}")',
        ]
        + (
            [
                f"# ou, la version que désigne l'alias « {alias} » :",
                f'modele = mlflow.pyfunc.load_model("{uris[1]}")',
            ]
            if alias
            else []
        )
    )
    ref = f"{name}@{alias}" if alias else f"{name}/{version}"
    shell = (
        f"export BIBIA_URL={url}\n"
        "export BIBIA_TOKEN='<votre jeton expert>'\n"
        f"bibia pull {ref} -o {name}-{alias or version}"
    )
    return {"python": python, "shell": shell, "alias": alias or ""}


def _page(
    request: Request,
    caller: Caller,
    registry: Registry,
    name: str,
    version: int,
    *,
    status: int = 200,
    alias_error: str | None = None,
    alias_value: str = "",
    fait: str | None = None,
    alias_done: str | None = None,
) -> HTMLResponse:
    artifacts.check_may_pull(caller, how_to_sign_in=SIGN_IN)
    model = catalogue.model_detail(registry, caller, name)
    detail = catalogue.version_detail(registry, caller, name, version)  # the version exists
    entries = artifacts.tree(registry, caller, name, version)
    owner = registry.get(name).owner_siren or None
    aliases: dict[str, int] = model["aliases"]
    done = None
    if fait in DONE and alias_done and ALIAS_RE.fullmatch(alias_done):  # never any text of a link
        now = aliases.get(alias_done)
        if (fait == "alias" and now is not None) or (fait == "alias-supprime" and now is None):
            done = DONE[fait].format(alias=alias_done, version=now)
    files = [e for e in entries if not e.is_dir]
    ident = (model.get("card") or {}).get("identification") or {}
    return render(
        request,
        "version_fichiers.html",
        status=status,
        title=f"Fichiers de la version {version} — {ident.get('title') or name}",
        model=model,
        ident=ident,
        version=version,
        versions=[v["version"] for v in model["versions"]],
        registered=detail.get("created"),
        aliases=aliases,
        entries=entries,
        n_files=len(files),
        total=french.size(sum(e.size or 0 for e in files)),
        size=french.size,
        by_version={
            v: sorted(a for a, at in aliases.items() if at == v) for v in set(aliases.values())
        },
        file_href=lambda path: f"{files_url(name, version)}/{quote(path, safe='/')}",
        snippets=pull_snippets(
            base_url(request),
            name,
            version,
            [a for a, v in aliases.items() if v == version] or list(aliases),
        ),
        may_move=policy.may_move_alias(caller, owner),
        owner_name=ident.get("owner", {}).get("name"),
        alias_error=alias_error,
        alias_value=alias_value,
        alias_hint=ALIAS_HELP,
        done=done,
    )


@router.get("/modeles/{name}/versions/{version}/fichiers", response_class=HTMLResponse)
def files_page(
    request: Request,
    name: str,
    version: str,
    caller: PageCallerDep,
    registry: RegistryDep,
    fait: str | None = None,
    alias: str | None = None,
) -> HTMLResponse:
    model = _model_name(name)
    artifacts.check_may_pull(caller, how_to_sign_in=SIGN_IN)
    return _page(
        request, caller, registry, model, _version(model, version), fait=fait, alias_done=alias
    )


@router.get("/modeles/{name}/versions/{version}/fichiers/{path:path}")
def download(
    name: str, version: str, path: str, caller: PageCallerDep, registry: RegistryDep
) -> FileResponse:
    model = _model_name(name)
    artifacts.check_may_pull(caller, how_to_sign_in=SIGN_IN)
    number = _version(model, version)
    wanted = _file(path, number)
    try:
        local = artifacts.file_path(registry, caller, model, number, wanted)
    except (
        InvalidInput
    ) as exc:  # a path that leaves the version (a link out of it): not one of its files
        raise NotFound(f"aucun fichier « {_shown(wanted)} » dans la version {number}") from exc
    except NotFound as exc:
        registry.version(model, number)  # an unknown model or version says so
        raise NotFound(f"aucun fichier « {_shown(wanted)} » dans la version {number}") from exc
    return artifacts.file_response(local)


# ------------------------------------------------------------------ aliases


def _login(name: str, version: str) -> RedirectResponse:
    try:
        back = files_url(name, check_version(version))
    except InvalidInput:
        back = f"/modeles/{quote(name, safe='')}"
    return RedirectResponse(f"/connexion?next={quote(back)}", status_code=303)


def _check_may_move(registry: Registry, caller: Caller, name: str) -> None:
    """The alias rule, before anything in the form is read (a refused caller learns nothing more)."""
    owner = registry.get(name).owner_siren or None
    if policy.may_move_alias(caller, owner):
        return
    who = f"les experts de la collectivité propriétaire (SIREN {owner})" if owner else "les experts"
    policy.refuse(
        caller, f"accès refusé : seuls {who} peuvent déplacer ou supprimer les alias de « {name} »"
    )


def _done(name: str, version: int, fait: str, alias: str) -> RedirectResponse:
    query = urlencode({"fait": fait, "alias": alias})
    return RedirectResponse(f"{files_url(name, version)}?{query}#alias", status_code=303)


@router.post("/modeles/{name}/alias")
def move_alias(
    request: Request,
    name: str,
    caller: PageCallerDep,
    registry: RegistryDep,
    session: SessionDep,
    alias: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
) -> Response:
    model = _model_name(name)
    if not caller.is_authenticated:
        return _login(model, version)
    _check_may_move(registry, caller, model)
    number = _version(model, version)
    alias = alias.strip()
    try:
        check_alias(alias)
    except InvalidInput as exc:
        return _refused(request, caller, registry, model, number, 400, exc.message, alias[:60])
    try:
        catalogue.set_alias(
            registry,
            session,
            caller,
            model,
            alias,
            number,
            promotion_gate=request.app.state.evaluations.check_promotion,
        )
    except Conflict as exc:  # the promotion gate (PromotionRefused): nothing changed
        return _refused(request, caller, registry, model, number, 409, exc.message, alias)
    return _done(model, number, "alias", alias)


@router.post("/modeles/{name}/alias/supprimer")
def remove_alias(
    request: Request,
    name: str,
    caller: PageCallerDep,
    registry: RegistryDep,
    session: SessionDep,
    alias: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
) -> Response:
    model = _model_name(name)
    if not caller.is_authenticated:
        return _login(model, version)
    _check_may_move(registry, caller, model)
    number = _version(model, version)
    if alias not in registry.get(model).aliases:
        return _refused(
            request,
            caller,
            registry,
            model,
            number,
            404,
            f"le modèle « {model} » n'a pas d'alias « {alias[:60]} » : rien n'est supprimé",
        )
    catalogue.delete_alias(registry, session, caller, model, alias)
    return _done(model, number, "alias-supprime", alias)


def _refused(
    request: Request,
    caller: Caller,
    registry: Registry,
    name: str,
    version: int,
    status: int,
    message: str,
    value: str = "",
) -> HTMLResponse:
    """The version's page again, with why the alias was not changed next to the form."""
    return _page(
        request,
        caller,
        registry,
        name,
        version,
        status=status,
        alias_error=message,
        alias_value=value,
    )
