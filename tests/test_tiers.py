"""The tier matrix: every route of the app × every role, and no leak to a lower tier.

Routes are enumerated from the app itself: a route added without a line in
:data:`CASES` (or a prefix rule) fails :func:`test_every_route_is_classified`.
HEAD is not requested separately (Starlette answers it like GET).

Leaks are looked for by value (the actual contacts, team, retex, code link,
internal documents, run id, artifact location, registering actor, tokens)
in every body, and by field name in every JSON body (except the OpenAPI
schema, which documents the names on purpose).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bibia.schemas import VersionOut
from registry.card import Card, Project
from registry.tiers import Tier, hidden_paths
from tests.conftest import World, make_world, register
from tests.web.webdata import csrf_token

NAME = "eau-batiments"
SLUG = "eau-nantes"
ROLES: dict[str | None, Tier] = {
    None: Tier.PUBLIC,
    "member": Tier.RESTRICTED,
    "expert": Tier.EXPERT,
    "other_expert": Tier.EXPERT,
    "admin": Tier.ADMIN,
}
ALLOWED = "allowed"  # any answer but 401/403 and 5xx

PROJECT = {
    "slug": SLUG,
    "title": "Suivi de la consommation d'eau des bâtiments",
    "summary": "Repérer tôt les fuites d'eau dans les bâtiments municipaux.",
    "owners": [{"name": "Nantes Métropole", "siren": "244400404"}],
    "territory": "Nantes Métropole",
    "theme": "transition-ecologique",
    "status": "pilote",
    "keywords": ["eau"],
    "public_contact": "donnees@nantesmetropole.fr",
    "contacts": [{"name": "Chargée de mission eau", "email": "mission-eau@nantesmetropole.fr"}],
    "lessons_learned": "Retex confidentiel : le prestataire a livré en retard.",
    "internal_documents": [
        {"title": "Cahier des charges interne", "url": "https://intranet.example.org/cdc-eau"}
    ],
}


def _card(card_data: dict) -> dict:
    card = json.loads(json.dumps(card_data, default=str))  # YAML dates as JSON text
    card["identification"]["project"] = SLUG
    card["model"]["documentation_url"] = "https://docs.example.org/nantes/eau-batiments-interne"
    card["accountability"]["internal_documents"] = [
        {"title": "Note interne sur les seuils", "url": "https://intranet.example.org/note-seuils"}
    ]
    return card


@dataclass
class Env:
    world: World
    card: dict
    version: dict  # the registered version as an admin sees it
    secrets: dict[Tier, set[str]] = field(default_factory=dict)  # tier -> values it must not see
    names: dict[Tier, set[str]] = field(default_factory=dict)  # tier -> field names it must not see


def _leaves(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for v in node.values():
            yield from _leaves(v)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v)
    elif node is not None:
        yield str(node)


def _at(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from _keys(v)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, sklearn_model_dir: Path) -> Iterator[Env]:
    from bibia.settings import Settings

    # every route is called with bad tokens below: the brake on failed authentication must not step in
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("tiers") / "data",
        seed_on_start=False,
        runner="none",
        auth_failure_limit=100_000,
    )
    world = make_world(settings)
    with world.client:
        put = world.client.put(
            f"/api/v1/projects/{SLUG}", json=PROJECT, headers=world.headers("expert")
        )
        assert put.status_code == 201, put.text
        card = _card(
            yaml.safe_load(
                (Path(__file__).parents[1] / "examples" / "fiche-exemple.yaml").read_text()
            )
        )
        assert register(world, sklearn_model_dir, card, name=NAME).status_code == 201
        version = world.client.get(
            f"/api/v1/models/{NAME}/versions/1", headers=world.headers("admin")
        ).json()
        e = Env(world=world, card=card, version=version)
        for tier in (Tier.PUBLIC, Tier.RESTRICTED):
            values = {v for p in hidden_paths(Card, tier) for v in _leaves(_at(card, p))}
            values |= {v for p in hidden_paths(Project, tier) for v in _leaves(_at(PROJECT, p))}
            values |= {str(version[p]) for p in hidden_paths(VersionOut, tier)}
            values |= set(world.tokens.values())
            e.secrets[tier] = {v for v in values if len(v) > 3}
            e.names[tier] = {
                p.rsplit(".", 1)[-1]
                for m in (Card, Project, VersionOut)
                for p in hidden_paths(m, tier)
            }
        assert "Responsable données" in e.secrets[Tier.PUBLIC]
        assert (
            version["run_id"] in e.secrets[Tier.RESTRICTED]
            and version["artifact_uri"] in e.secrets[Tier.RESTRICTED]
        )
        assert version["registered_by"] in e.secrets[Tier.PUBLIC]
        yield e


# ------------------------------------------------------------------ the table


Request = dict[str, Any]
Builder = Callable[[Env, str | None], Request]


@dataclass(frozen=True)
class Case:
    """How to call one route, and what each role must get."""

    path: str
    expect: dict[str | None, int | str]
    request: Builder = lambda env, role: {}


def _tiered(minimum: str, ok: int | str = ALLOWED) -> dict[str | None, int | str]:
    """Expected statuses for a route open from ``minimum`` up (``owner``: experts of the owner only)."""
    denied: dict[str, set[str | None]] = {
        "public": set(),
        "member": {None},
        "expert": {None, "member"},
        "owner": {None, "member", "other_expert"},
        "admin": {None, "member", "expert", "other_expert"},
    }
    return {
        role: (401 if role is None else 403) if role in denied[minimum] else ok for role in ROLES
    }


def _admin_page(ok: int) -> dict[str | None, int | str]:
    """An administrators' page or action: the sign-in page for anonymous, 403 below admin."""
    return {**_tiered("admin", ok), None: 303}


def _register_request(env: Env, role: str | None) -> Request:
    card = yaml.safe_dump(env.card, allow_unicode=True).encode()
    return {
        "files": {
            "card": ("fiche.yaml", card, "application/yaml"),
            "model": ("m.tar.gz", b"pas une archive", "application/gzip"),
        }
    }


def _form(env: Env, data: dict[str, str] | None = None) -> Request:
    """A form as a page of bibia posts it: with the CSRF token of the client's ``bibia_csrf`` cookie."""
    return {"data": {"csrftoken": csrf_token(env.world.client), **(data or {})}}


def _login_request(env: Env, role: str | None) -> Request:
    return _form(
        env, {"token": env.world.tokens[role] if role else "pas-un-jeton", "next": "/demos/x/"}
    )


M = f"/api/v1/models/{NAME}"
CASES: dict[tuple[str, str], Case] = {
    ("GET", "/openapi.json"): Case("/openapi.json", _tiered("public", 200)),
    ("GET", "/docs"): Case("/docs", _tiered("public", 200)),
    ("GET", "/redoc"): Case("/redoc", _tiered("public", 200)),
    # the documentation's files, by allow-list and content digest (a stale digest: 404 for everyone)
    ("GET", "/docs/ressources/{version}/{name}"): Case(
        "/docs/ressources/0000000000000000/swagger-ui-bundle.js", _tiered("public", 404)
    ),
    ("GET", "/healthz"): Case("/healthz", _tiered("public", 200)),
    ("GET", "/api/v1/models"): Case("/api/v1/models", _tiered("public", 200)),
    ("GET", "/api/v1/models/{name}"): Case(M, _tiered("public", 200)),
    ("GET", "/api/v1/models/{name}/versions/{version}"): Case(
        f"{M}/versions/1", _tiered("public", 200)
    ),
    ("GET", "/api/v1/models/{name}/aliases/{alias}"): Case(
        f"{M}/aliases/production", _tiered("public", 200)
    ),
    ("GET", "/api/v1/models/{name}/card.md"): Case(f"{M}/card.md", _tiered("public", 200)),
    ("GET", "/api/v1/models/{name}/etalab"): Case(f"{M}/etalab", _tiered("public", 200)),
    # writes: requests the owner's experts and admins may make, but which change nothing
    ("POST", "/api/v1/models/{name}/versions"): Case(
        f"{M}/versions", _tiered("owner", 422), _register_request
    ),
    ("PUT", "/api/v1/models/{name}/card"): Case(
        f"{M}/card", _tiered("owner", 200), lambda env, role: {"json": env.card}
    ),
    ("PUT", "/api/v1/models/{name}/aliases/{alias}"): Case(
        f"{M}/aliases/production", _tiered("owner", 200), lambda env, role: {"json": {"version": 1}}
    ),
    ("DELETE", "/api/v1/models/{name}/aliases/{alias}"): Case(
        f"{M}/aliases/inexistant", _tiered("owner", 404)
    ),
    ("GET", "/api/v1/projects"): Case("/api/v1/projects", _tiered("public", 200)),
    ("GET", "/api/v1/projects/{slug}"): Case(f"/api/v1/projects/{SLUG}", _tiered("public", 200)),
    ("PUT", "/api/v1/projects/{slug}"): Case(
        f"/api/v1/projects/{SLUG}", _tiered("owner", 200), lambda env, role: {"json": PROJECT}
    ),
    # (404: nobody is invited to this project; the tier check comes first)
    ("POST", "/api/v1/projects/{slug}/invitations/accept"): Case(
        f"/api/v1/projects/{SLUG}/invitations/accept", _tiered("expert", 404)
    ),
    ("POST", "/api/v1/projects/{slug}/invitations/decline"): Case(
        f"/api/v1/projects/{SLUG}/invitations/decline", _tiered("expert", 404)
    ),
    ("GET", "/api/v1/orgs"): Case("/api/v1/orgs", _tiered("public", 200)),
    ("POST", "/api/v1/orgs"): Case(
        "/api/v1/orgs",
        _tiered("admin", 409),
        lambda env, role: {"json": {"slug": "lille", "name": "Lille", "siren": "200093201"}},
    ),
    ("POST", "/api/v1/tokens"): Case(
        "/api/v1/tokens",
        _tiered("admin", 404),
        lambda env, role: {"json": {"organisation": "inconnue", "role": "member"}},
    ),
    ("GET", "/api/v1/tokens"): Case("/api/v1/tokens", _tiered("admin", 200)),
    ("DELETE", "/api/v1/tokens/{prefix}"): Case("/api/v1/tokens/00000000", _tiered("admin", 404)),
    ("GET", "/api/v1/me"): Case("/api/v1/me", _tiered("public", 200)),
    ("GET", "/api/v1/audit"): Case("/api/v1/audit", _tiered("admin", 200)),
    # demonstrators (no runner here: only the access rules are checked)
    # (502: this service has no runner; the tier check comes first)
    ("POST", "/api/v1/demos"): Case(
        "/api/v1/demos",
        _tiered("member", 502),
        lambda env, role: {"json": {"model": "modele-inconnu"}},
    ),
    ("GET", "/api/v1/demos"): Case("/api/v1/demos", _tiered("member", 200)),
    ("GET", "/api/v1/demos/{demo_id}"): Case("/api/v1/demos/inconnu", _tiered("member", 404)),
    ("DELETE", "/api/v1/demos/{demo_id}"): Case("/api/v1/demos/inconnu", _tiered("member", 404)),
    ("POST", "/api/v1/demos/{demo_id}/extend"): Case(
        "/api/v1/demos/inconnu/extend",
        _tiered("member", 404),
        lambda env, role: {"json": {"minutes": 10}},
    ),
    ("GET", "/api/v1/demos/{demo_id}/logs"): Case(
        "/api/v1/demos/inconnu/logs", _tiered("expert", 404)
    ),
    ("GET", "/connexion"): Case("/connexion", _tiered("public", 200)),
    ("POST", "/connexion"): Case(
        "/connexion",
        {None: 401, "member": 303, "expert": 303, "other_expert": 303, "admin": 303},
        _login_request,
    ),
    ("POST", "/deconnexion"): Case(
        "/deconnexion", _tiered("public", 200), lambda env, role: _form(env)
    ),
    # sign-in through OpenID Connect: off here (no issuer), so 404 for everyone
    ("POST", "/connexion/oidc"): Case(
        "/connexion/oidc", _tiered("public", 404), lambda env, role: _form(env)
    ),
    ("GET", "/connexion/oidc/retour"): Case(
        "/connexion/oidc/retour?state=x&code=y", _tiered("public", 404)
    ),
    ("GET", "/deconnexion/terminee"): Case("/deconnexion/terminee", _tiered("public", 200)),
    ("POST", "/compte/jetons/{prefix}/revoquer"): Case(
        "/compte/jetons/00000000/revoquer",
        {None: 303, "member": 404, "expert": 404, "other_expert": 404, "admin": 404},
        lambda env, role: _form(env),
    ),
    ("GET", "/api/v1/sessions"): Case("/api/v1/sessions", _tiered("member", 200)),
    ("DELETE", "/api/v1/sessions/{session_id}"): Case(
        "/api/v1/sessions/999999", _tiered("member", 404)
    ),
    ("GET", "/compte/sessions"): Case(
        "/compte/sessions",
        {None: 303, "member": 200, "expert": 200, "other_expert": 200, "admin": 200},
    ),
    ("POST", "/compte/sessions/{number}/revoquer"): Case(
        "/compte/sessions/999999/revoquer",
        {None: 303, "member": 404, "expert": 404, "other_expert": 404, "admin": 404},
        lambda env, role: _form(env),
    ),
    ("GET", "/demos/{demo_id}"): Case("/demos/inconnu", _tiered("public", 307)),
    ("GET", "/demos/{demo_id}/{path:path}"): Case("/demos/inconnu/", _tiered("member", 404)),
    ("POST", "/demos/{demo_id}/{path:path}"): Case(
        "/demos/inconnu/predict", _tiered("member", 404), lambda env, role: _form(env)
    ),
    # web pages (French HTML; a bearer token or the session cookie says who is reading)
    ("GET", "/"): Case("/", _tiered("public", 200)),
    ("GET", "/catalogue"): Case("/catalogue", _tiered("public", 200)),
    ("GET", "/modeles/{name}"): Case(f"/modeles/{NAME}", _tiered("public", 200)),
    ("GET", "/modeles/{name}/versions/{version}/evaluation.png"): Case(
        f"/modeles/{NAME}/versions/1/evaluation.png", _tiered("public", 404)
    ),
    # « Fichiers et versions »: a version's files for experts (the gateway's rule), aliases for the owner's
    ("GET", "/modeles/{name}/versions/{version}/fichiers"): Case(
        f"/modeles/{NAME}/versions/1/fichiers", _tiered("expert", 200)
    ),
    ("GET", "/modeles/{name}/versions/{version}/fichiers/{path:path}"): Case(
        f"/modeles/{NAME}/versions/1/fichiers/MLmodel", _tiered("expert", 200)
    ),
    ("POST", "/modeles/{name}/alias"): Case(
        f"/modeles/{NAME}/alias",
        {None: 303, "member": 403, "expert": 303, "other_expert": 403, "admin": 303},
        lambda env, role: _form(env, {"alias": "production", "version": "1"}),
    ),
    ("POST", "/modeles/{name}/alias/supprimer"): Case(
        f"/modeles/{NAME}/alias/supprimer",
        {None: 303, "member": 403, "expert": 404, "other_expert": 403, "admin": 404},
        lambda env, role: _form(env, {"alias": "inexistant", "version": "1"}),
    ),
    ("GET", "/projets"): Case("/projets", _tiered("public", 200)),
    ("GET", "/projets/{slug}"): Case(f"/projets/{SLUG}", _tiered("public", 200)),
    ("POST", "/modeles/{name}/demonstrateur"): Case(
        f"/modeles/{NAME}/demonstrateur",
        {None: 303, "member": 502, "expert": 502, "other_expert": 502, "admin": 502},
        lambda env, role: _form(env, {"version": "alias:production"}),
    ),
    ("GET", "/demonstrateurs/{demo_id}"): Case(
        "/demonstrateurs/inconnu",
        {None: 303, "member": 404, "expert": 404, "other_expert": 404, "admin": 404},
    ),
    ("GET", "/demonstrateurs/{demo_id}/etat"): Case(
        "/demonstrateurs/inconnu/etat",
        {None: 401, "member": 404, "expert": 404, "other_expert": 404, "admin": 404},
    ),
    ("POST", "/demonstrateurs/{demo_id}/arreter"): Case(
        "/demonstrateurs/inconnu/arreter",
        {None: 303, "member": 404, "expert": 404, "other_expert": 404, "admin": 404},
        lambda env, role: _form(env),
    ),
    ("POST", "/demonstrateurs/{demo_id}/prolonger"): Case(
        "/demonstrateurs/inconnu/prolonger",
        {None: 303, "member": 404, "expert": 404, "other_expert": 404, "admin": 404},
        lambda env, role: _form(env),
    ),
    ("GET", "/mes-demonstrateurs"): Case(
        "/mes-demonstrateurs",
        {None: 303, "member": 200, "expert": 200, "other_expert": 200, "admin": 200},
    ),
    # evaluation pages (no runner, no evaluation here)
    ("GET", "/taches"): Case("/taches", _tiered("public", 200)),
    ("GET", "/taches/{slug}"): Case("/taches/regression", _tiered("public", 200)),
    ("GET", "/comparer"): Case("/comparer", _tiered("public", 200)),
    ("GET", "/evaluations/{evaluation_id}"): Case(
        "/evaluations/0123456789abcdef0123456789abcdef", _tiered("public", 404)
    ),
    ("POST", "/modeles/{name}/evaluer"): Case(
        f"/modeles/{NAME}/evaluer",
        {None: 303, "member": 400, "expert": 400, "other_expert": 400, "admin": 400},
        lambda env, role: _form(env, {"version": "alias:production"}),
    ),
    ("POST", "/evaluations/{evaluation_id}/annuler"): Case(
        "/evaluations/0123456789abcdef0123456789abcdef/annuler",
        {None: 303, "member": 404, "expert": 404, "other_expert": 404, "admin": 404},
        lambda env, role: _form(env),
    ),
    ("POST", "/evaluations/{evaluation_id}/publier"): Case(
        "/evaluations/0123456789abcdef0123456789abcdef/publier",
        {None: 303, "member": 404, "expert": 404, "other_expert": 404, "admin": 404},
        lambda env, role: _form(env, {"texte": "Essai", "audience": "membres"}),
    ),
    ("POST", "/modeles/{name}/reutilisations"): Case(
        f"/modeles/{NAME}/reutilisations",
        {None: 303, "member": 400, "expert": 400, "other_expert": 400, "admin": 400},
        lambda env, role: _form(env, {"texte": "", "lien": ""}),  # past the rule: an empty text
    ),
    # publication pages: a new model (experts, in their organisation's name), a new version and the
    # card of a model (the owner's experts); an empty form past the rule is a 422 with its errors
    ("GET", "/publier"): Case(
        "/publier", {None: 303, "member": 403, "expert": 200, "other_expert": 200, "admin": 200}
    ),
    ("POST", "/publier"): Case(
        "/publier",
        {None: 303, "member": 403, "expert": 422, "other_expert": 422, "admin": 422},
        lambda env, role: _form(env, {"nom": "modele-vide"}),
    ),
    ("GET", "/modeles/{name}/publier"): Case(
        f"/modeles/{NAME}/publier",
        {None: 303, "member": 403, "expert": 200, "other_expert": 403, "admin": 200},
    ),
    ("POST", "/modeles/{name}/publier"): Case(
        f"/modeles/{NAME}/publier",
        {None: 303, "member": 403, "expert": 422, "other_expert": 403, "admin": 422},
        lambda env, role: _form(env),
    ),
    ("GET", "/modeles/{name}/fiche"): Case(
        f"/modeles/{NAME}/fiche",
        {None: 303, "member": 403, "expert": 200, "other_expert": 403, "admin": 200},
    ),
    ("POST", "/modeles/{name}/fiche"): Case(
        f"/modeles/{NAME}/fiche",
        {None: 303, "member": 403, "expert": 422, "other_expert": 403, "admin": 422},
        lambda env, role: _form(env),
    ),
    # evaluation (no runner, no benchmark here: the access rules, and French 4xx past them)
    ("GET", "/api/v1/tasks"): Case("/api/v1/tasks", _tiered("public", 200)),
    ("GET", "/api/v1/tasks/{slug}"): Case("/api/v1/tasks/regression", _tiered("public", 200)),
    ("GET", "/api/v1/tasks/{slug}/leaderboard"): Case(
        "/api/v1/tasks/regression/leaderboard", _tiered("public")
    ),
    ("GET", "/api/v1/benchmarks"): Case("/api/v1/benchmarks", _tiered("public", 200)),
    ("POST", "/api/v1/benchmarks"): Case(
        "/api/v1/benchmarks",
        _tiered("expert", 404),
        lambda env, role: {
            "files": {"fichier": ("b.csv", b"x;y\n1;2\n", "text/csv")},
            "data": {"slug": "jeu-essai", "task": "inconnue", "title": "T", "licence": "L"},
        },
    ),
    ("GET", "/api/v1/benchmarks/{slug}"): Case(
        "/api/v1/benchmarks/inconnu", _tiered("public", 404)
    ),
    ("GET", "/api/v1/benchmarks/{slug}/entrees.csv"): Case(
        "/api/v1/benchmarks/inconnu/entrees.csv", _tiered("public", 404)
    ),
    ("GET", "/api/v1/benchmarks/{slug}/verite.csv"): Case(
        "/api/v1/benchmarks/inconnu/verite.csv", _tiered("public", 404)
    ),
    ("POST", "/api/v1/evaluations"): Case(
        "/api/v1/evaluations",
        _tiered("member", 404),
        lambda env, role: {"json": {"model": "modele-inconnu", "benchmark": "inconnu"}},
    ),
    ("GET", "/api/v1/evaluations"): Case("/api/v1/evaluations", _tiered("public", 200)),
    ("GET", "/api/v1/evaluations/{evaluation_id}"): Case(
        "/api/v1/evaluations/inconnue", _tiered("public", 404)
    ),
    ("DELETE", "/api/v1/evaluations/{evaluation_id}"): Case(
        "/api/v1/evaluations/inconnue", _tiered("member", 404)
    ),
    ("POST", "/api/v1/evaluations/{evaluation_id}/report"): Case(
        "/api/v1/evaluations/inconnue/report",
        _tiered("member", 404),
        lambda env, role: {"json": {"text": "Bien.", "audience": "public"}},
    ),
    ("DELETE", "/api/v1/reports/{report_id}"): Case(
        "/api/v1/reports/999999", _tiered("member", 404)
    ),
    ("GET", "/api/v1/compare"): Case(
        f"/api/v1/compare?models={NAME}@production,{NAME}/1", _tiered("public", 200)
    ),
    ("GET", "/api/v1/models/{name}/evaluations"): Case(f"{M}/evaluations", _tiered("public", 200)),
    ("PUT", "/api/v1/models/{name}/evaluation-settings"): Case(
        f"{M}/evaluation-settings", _tiered("owner", 200), lambda env, role: {"json": {}}
    ),
    ("POST", "/api/v1/models/{name}/reuses"): Case(
        f"{M}/reuses",
        _tiered("member", 400),
        lambda env, role: {"json": {"text": "Nous le réutilisons.", "url": "pas-une-adresse"}},
    ),
    ("DELETE", "/api/v1/models/{name}/reuses"): Case(f"{M}/reuses", _tiered("member", 404)),
    # quotas per organisation (404: no such organisation; the tier check comes first)
    ("PUT", "/api/v1/orgs/{slug}/quotas"): Case(
        "/api/v1/orgs/inconnue/quotas",
        _tiered("admin", 404),
        lambda env, role: {"json": {"demos": 2, "evaluations": None}},
    ),
    # the administrators' pages: anonymous → sign-in page, members and experts → 403; the
    # actions are ones that change nothing (an existing slug, an unknown user or token, bad values)
    ("GET", "/admin"): Case("/admin", _admin_page(200)),
    ("POST", "/admin/organisations"): Case(
        "/admin/organisations",
        _admin_page(409),
        lambda env, role: _form(env, {"slug": "lille", "name": "Lille", "siren": "200093201"}),
    ),
    ("GET", "/admin/organisations/{slug}"): Case("/admin/organisations/lille", _admin_page(200)),
    ("POST", "/admin/organisations/{slug}/roles"): Case(
        "/admin/organisations/lille/roles",
        _admin_page(404),
        lambda env, role: _form(env, {"user": "personne", "role": "member"}),
    ),
    ("POST", "/admin/organisations/{slug}/jetons"): Case(
        "/admin/organisations/lille/jetons",
        _admin_page(400),
        lambda env, role: _form(env, {"user": "", "role": "member"}),
    ),
    ("POST", "/admin/organisations/{slug}/jetons/{prefix}/revoquer"): Case(
        "/admin/organisations/lille/jetons/00000000/revoquer",
        _admin_page(404),
        lambda env, role: _form(env),
    ),
    ("POST", "/admin/organisations/{slug}/quotas"): Case(
        "/admin/organisations/lille/quotas",
        _admin_page(400),
        lambda env, role: _form(env, {"demos": "beaucoup", "evaluations": ""}),
    ),
    ("GET", "/admin/journal"): Case("/admin/journal", _admin_page(200)),
    ("GET", "/admin/journal.csv"): Case("/admin/journal.csv", _admin_page(200)),
}

# The MLflow-compatible gateway: expert tier for every route, present and future.
GATEWAY_PREFIXES = ("/api/2.0/", "/api/3.0/", "/api/{api_version}/")
GATEWAY_PARAMS = {
    "name": NAME,
    "version": "1",
    "alias": "production",
    "max_results": "10",
    "path": f"bibia-models/{NAME}/1",
}


def _gateway_case(method: str, path: str) -> Case:
    concrete = path.replace("{api_version}", "2.0").replace("{rest:path}", "runs/get")
    concrete = concrete.replace("{path:path}", f"bibia-models/{NAME}/1/MLmodel")
    assert "{" not in concrete, f"gateway route with an unknown path parameter: {path}"
    return Case(concrete, _tiered("expert"), lambda env, role: {"params": GATEWAY_PARAMS})


def app_routes(app: Any) -> list[tuple[str, str]]:
    """Every ``(method, path)`` the app answers, routers included (HEAD left out)."""
    found = []
    for route in app.routes:
        contexts = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for ctx in contexts:
            original = getattr(ctx, "original_route", ctx)
            for method in sorted(getattr(original, "methods", None) or []):
                if method != "HEAD":
                    found.append((method, ctx.path))
    return found


def case_for(method: str, path: str) -> Case | None:
    if (method, path) in CASES:
        return CASES[(method, path)]
    if path.startswith(GATEWAY_PREFIXES):
        return _gateway_case(method, path)
    return None


def call(
    env: Env, method: str, case: Case, role: str | None, headers: dict[str, str] | None = None
):
    return env.world.client.request(
        method,
        case.path,
        headers=env.world.headers(role) if headers is None else headers,
        follow_redirects=False,
        **case.request(env, role),
    )


# ------------------------------------------------------------------ the checks


def assert_no_leak(env: Env, tier: Tier, response: Any, where: str) -> None:
    if tier >= Tier.EXPERT:
        return
    text = response.text
    for value in env.secrets[tier]:
        assert value not in text, f"{where}: a {tier.label} caller sees {value!r}"
    if "json" in response.headers.get("content-type", "") and not where.endswith("/openapi.json"):
        leaked = set(_keys(response.json())) & env.names[tier]
        assert not leaked, f"{where}: a {tier.label} caller sees the fields {sorted(leaked)}"


def test_every_route_is_classified(env: Env) -> None:
    routes = app_routes(env.world.app)
    assert len(routes) > 30
    missing = [f"{m} {p}" for m, p in routes if case_for(m, p) is None]
    assert not missing, "routes without an access rule in tests/test_tiers.py: " + ", ".join(
        missing
    )
    stale = [f"{m} {p}" for m, p in CASES if (m, p) not in routes]
    assert not stale, "rules for routes that no longer exist: " + ", ".join(stale)


@pytest.mark.parametrize("role", list(ROLES), ids=lambda r: r or "anonymous")
def test_route_matrix(env: Env, role: str | None) -> None:
    failures = []
    for method, path in app_routes(env.world.app):
        case = case_for(method, path)
        if case is None:
            continue  # reported by test_every_route_is_classified
        where = f"{method} {case.path}"
        response = call(env, method, case, role)
        expected = case.expect[role]
        status = response.status_code
        if expected == ALLOWED:
            if status in (401, 403) or status >= 500:
                failures.append(
                    f"{where}: {status} (expected an answer, not a refusal or an error) {response.text[:200]}"
                )
        elif status != expected:
            failures.append(f"{where}: {status}, expected {expected} {response.text[:200]}")
        if status in (401, 403) and case.path.startswith("/api/"):
            body = response.json()
            assert isinstance(body.get("message"), str) and body["message"], where
        assert_no_leak(env, ROLES[role], response, where)
    assert not failures, "\n".join(failures)


FILTERS = [
    {},
    {"q": "eau"},
    {"q": "bâtiments municipaux"},
    {"theme": "transition-ecologique"},
    {"owner": "Nantes"},
    {"owner": "244400404"},
    {"territory": "loire"},
    {"status": "experimentation"},
    {"task": "regression"},
    {"project": SLUG},
    {"q": "eau", "theme": "transition-ecologique", "owner": "244400404", "per_page": 1, "page": 1},
]


@pytest.mark.parametrize("role", [None, "member"], ids=["anonymous", "member"])
def test_no_leak_whatever_the_query(env: Env, role: str | None) -> None:
    c, h, tier = env.world.client, env.world.headers(role), ROLES[role]
    for params in FILTERS:
        response = c.get("/api/v1/models", params=params, headers=h)
        assert response.status_code == 200, response.text
        assert [m["name"] for m in response.json()["items"]] == [NAME], params
        assert_no_leak(env, tier, response, f"models {params}")
    for path in (M, f"{M}/versions/1", f"{M}/aliases/production", f"{M}/card.md", f"{M}/etalab"):
        assert_no_leak(env, tier, c.get(path, headers=h), path)
    for params in (
        {},
        {"q": "fuites"},
        {"theme": "transition-ecologique"},
        {"owner": "244400404"},
        {"status": "pilote"},
    ):
        response = c.get("/api/v1/projects", params=params, headers=h)
        assert [p["slug"] for p in response.json()["items"]] == [SLUG], params
        assert response.json()["items"][0]["models"] == [NAME]
        assert_no_leak(env, tier, response, f"projects {params}")
    assert_no_leak(env, tier, c.get(f"/api/v1/projects/{SLUG}", headers=h), "project detail")


def test_each_tier_sees_what_it_is_entitled_to(env: Env) -> None:
    c, w = env.world.client, env.world
    public = c.get(M).json()
    assert (
        "contacts" not in public["card"]["accountability"]
        and "code_url" not in public["card"]["model"]
    )
    assert set(public["versions"][0]) >= {"metrics", "baseline_metrics", "signature"}
    assert not {"registered_by", "run_id", "artifact_uri", "model_uri"} & set(public["versions"][0])

    member = c.get(M, headers=w.headers("member")).json()
    assert member["card"]["accountability"]["contacts"][0]["name"] == "Responsable données"
    assert member["card"]["accountability"]["lessons_learned"].startswith("Les fuites lentes")
    assert "code_url" not in member["card"]["model"]
    assert member["versions"][0]["registered_by"].startswith("experte@nantes-metropole")
    assert "run_id" not in member["versions"][0]

    for role in ("expert", "other_expert"):
        expert = c.get(M, headers=w.headers(role)).json()
        assert expert["card"]["model"]["code_url"] == "https://git.example.org/nantes/eau-batiments"
        assert expert["versions"][0]["model_uri"] == f"models:/{NAME}/1"
        assert expert["versions"][0]["run_id"] == env.version["run_id"]

    assert (
        c.get(f"/api/v1/projects/{SLUG}", headers=w.headers("member")).json()["lessons_learned"]
        == PROJECT["lessons_learned"]
    )
    assert "lessons_learned" not in c.get(f"/api/v1/projects/{SLUG}").json()


BAD_HEADERS = {
    "jeton inconnu": "Bearer bibia_deadbeef_" + "A" * 43,
    "jeton mal formé": "Bearer n-importe-quoi",
    "en-tête Authorization invalide": "Basic dXNlcjpwYXNz",
    "en-tête Authorization invalide ": "Bearer ",
}


@pytest.mark.parametrize("message", list(BAD_HEADERS))
def test_bad_token_is_a_401_with_a_message_on_every_route_that_reads_it(
    env: Env, message: str
) -> None:
    headers = {"Authorization": BAD_HEADERS[message]}
    failures = []
    for method, path in app_routes(env.world.app):
        if not path.startswith("/api/"):
            continue
        case = case_for(method, path)
        response = call(env, method, case, None, headers=headers)
        body = response.json() if "json" in response.headers.get("content-type", "") else {}
        if response.status_code != 401 or not body.get("message", "").startswith(message.strip()):
            failures.append(f"{method} {case.path}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)


def test_revoked_token_is_refused_everywhere(env: Env) -> None:
    c, admin = env.world.client, env.world.headers("admin")
    issued = c.post(
        "/api/v1/tokens",
        json={"organisation": "lille", "role": "expert", "user": "revoque"},
        headers=admin,
    ).json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert c.get("/api/v1/me", headers=headers).json()["tier"] == "expert"
    assert c.delete(f"/api/v1/tokens/{issued['prefix']}", headers=admin).status_code == 204
    for path in ("/api/v1/me", M, "/api/v1/models", "/api/2.0/mlflow/registered-models/search"):
        response = c.get(path, headers=headers)
        assert response.status_code == 401, path
        assert f"jeton {issued['prefix']} révoqué" in json.dumps(
            response.json(), ensure_ascii=False
        )
