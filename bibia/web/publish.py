"""Experts publish from the browser: a new model, a new version, the card of a model.

``/publier`` (a new model), ``/modeles/{name}/publier`` (a new version, the
card prefilled from the model's) and ``/modeles/{name}/fiche`` (the card
alone). The card is filled in a form generated from its schema
(:mod:`bibia.web.cardform`) or uploaded as a YAML or JSON file; the model is
an archive of an MLflow model directory, checked as the API checks it
(:mod:`bibia.uploads`). The same checks as the API, in the same layers
(:mod:`bibia.catalogue` asks :mod:`bibia.policy`), and the same French
messages, shown next to each field with a summary at the top. Nothing is
written unless everything is right: the uploads are read with limits, off
the event loop, into a temporary directory removed afterwards, and the
registration itself is all or nothing.

Who: experts (and administrators) for a new model, in their organisation's
name; the experts of the owner for an existing one. Anonymous callers are
sent to sign in; the others get the French 403 page.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from bibia import catalogue, policy
from bibia.accounts import organisation_by_siren
from bibia.auth import Caller
from bibia.deps import RegistryDep, SessionDep
from bibia.uploads import extract_model_archive, load_structured, parse_card_text
from bibia.web import cardform
from bibia.web.cardform import Problem
from bibia.web.pages import PageCallerDep, _model_name
from bibia.web.render import PageRoute, render
from domain.errors import (
    Forbidden,
    InvalidCard,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PromotionRefused,
)
from registry.card import Card, parse_card
from registry.entries import ModelSummary
from registry.refs import ALIAS_HELP, NAME_HELP, check_alias, check_name
from registry.store import Registry

router = APIRouter(include_in_schema=False, route_class=PageRoute)

MAX_FIELDS = 3_000  # the card's form has a few hundred inputs
ARCHIVES = ".tar.gz,.tgz,.tar,.tar.bz2,.tar.xz,application/gzip,application/x-tar"
CARD_FILES = ".yaml,.yml,.json,application/json,application/yaml,text/yaml"
FORM, FILE = "formulaire", "fichier"

# The inputs of the page around the card's fields (their ids are also their names).
NAME, ALIAS, ARCHIVE, CARD_FILE, SOURCE = "nom", "alias", "modele", "fiche_fichier", "source"


@dataclass
class Outcome:
    """What a posted form gave: the problems (none: done), and what to show again."""

    problems: list[Problem] = field(default_factory=list)
    field_errors: dict[str, str] = field(default_factory=dict)  # page input id -> message
    values: dict[str, str] = field(default_factory=dict)  # the card's form values
    source: str = FORM
    notes: list[str] = field(default_factory=list)
    version: int | None = None
    widgets: list[cardform.Widget] | None = None  # built with the card's errors in place

    def add(self, target: str | None, label: str, message: str) -> None:
        if target is not None:
            self.field_errors[target] = message
        self.problems.append(Problem(label, message, target))


# ------------------------------------------------------------------ access


def _login_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/connexion?next={quote(path)}", status_code=303)


def _check_may_publish(caller: Caller) -> None:
    if not policy.may_register_models(caller):
        raise Forbidden(
            "accès refusé : seuls les experts d'une collectivité publient des modèles ; "
            f"votre compte a le niveau « {caller.tier.display} »"
        )


def _owned_model(registry: Registry, caller: Caller, raw_name: str) -> ModelSummary:
    """The model ``raw_name``, if ``caller`` may write it (an expert of its owner, or an administrator)."""
    summary = registry.get(_model_name(raw_name))
    owner = summary.owner_siren or None
    if not policy.may_write_model(caller, owner):
        who = f"de la collectivité propriétaire (SIREN {owner})" if owner else ""
        raise Forbidden(
            f"accès refusé : seuls les experts {who} peuvent publier une version de « {summary.name} » "
            "ou modifier sa fiche".replace("  ", " ")
        )
    return summary


def _card_values(summary: ModelSummary | None, caller: Caller, session: Any) -> dict[str, str]:
    """The form's starting values: the model's card, else the caller's organisation as owner."""
    if summary is not None and summary.card is not None:
        return cardform.flatten(summary.card.model_dump(mode="json"))
    values: dict[str, str] = {}
    if caller.organisation_siren:
        org = organisation_by_siren(session, caller.organisation_siren)
        values[f"{cardform.PREFIX}identification.owner.siren"] = caller.organisation_siren
        if org is not None:
            values[f"{cardform.PREFIX}identification.owner.name"] = org.name
    return values


# ------------------------------------------------------------------ reading the form


async def _form(request: Request, *, files: int) -> FormData:
    """The posted form, with limits; a malformed body is a French 400, not an internal error."""
    try:
        return await request.form(max_files=files, max_fields=MAX_FIELDS)
    except HTTPException as exc:
        raise InvalidInput(
            f"formulaire illisible ou trop long ({MAX_FIELDS} champs au plus, 1 Mio par champ) : "
            "rechargez la page, puis recommencez"
        ) from exc


def _text(form: FormData, key: str, limit: int = 200) -> str:
    value = form.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _upload(form: FormData, key: str) -> UploadFile | None:
    value = form.get(key)
    if isinstance(value, UploadFile) and value.filename:
        return value
    return None


def _chosen(form: FormData) -> bool:
    """Whether the sent form carried a file (the archive or the card): the page says to choose again."""
    return _upload(form, ARCHIVE) is not None or _upload(form, CARD_FILE) is not None


def _card_values_of(form: FormData) -> dict[str, str]:
    return {
        k: v[:50_000]
        for k, v in form.multi_items()
        if k.startswith(cardform.PREFIX) and isinstance(v, str)
    }


def _place(outcome: Outcome, details: list[dict[str, str]], rows: dict[str, list[int]]) -> None:
    """The card's errors next to their fields (the widgets are kept to show the form again)."""
    outcome.widgets = cardform.build(outcome.values)
    outcome.problems.extend(cardform.place_errors(outcome.widgets, details, rows))


def _attach(widgets: list[cardform.Widget], errors: dict[str, str]) -> None:
    """The catalogue's refusals about a card field (owner, project) next to that field."""
    for w in widgets:
        if w.id in errors and errors[w.id] not in w.errors:
            w.errors.append(errors[w.id])
        _attach(w.children, errors)


def _card_from_form(outcome: Outcome) -> Card | None:
    parsed = cardform.unflatten(outcome.values)
    try:
        return parse_card(parsed.data)
    except InvalidCard as exc:
        _place(outcome, exc.details or [{"field": "", "message": exc.message}], parsed.rows)
        return None


def _card_from_file(outcome: Outcome, upload: UploadFile | None, max_bytes: int) -> Card | None:
    """The uploaded card; when it does not validate, its values go into the form, errors by field."""
    if upload is None:
        outcome.add(
            CARD_FILE,
            "Fichier de la fiche",
            "choisissez le fichier YAML ou JSON de la fiche, ou remplissez le formulaire",
        )
        return None
    raw = upload.file.read(max_bytes + 1)
    try:
        return parse_card_text(raw, max_bytes)
    except InvalidCard as exc:
        if not exc.details:  # not even YAML or JSON: the file's own error
            outcome.add(CARD_FILE, "Fichier de la fiche", exc.message)
            return None
        data = load_structured(raw.decode("utf-8"), "fiche")
        outcome.values = cardform.flatten(data)
        outcome.source = FORM
        outcome.notes.append(
            f"La fiche du fichier « {(upload.filename or '')[:100]} » a été chargée dans le formulaire "
            "ci-dessous : corrigez les champs signalés, puis publiez (ou choisissez un fichier corrigé)."
        )
        _place(outcome, exc.details, {})
        return None
    except PayloadTooLarge as exc:
        outcome.add(CARD_FILE, "Fichier de la fiche", exc.message)
        return None


def _card_of(outcome: Outcome, form: FormData, max_bytes: int) -> Card | None:
    outcome.values = _card_values_of(form)
    outcome.source = FILE if _text(form, SOURCE) == FILE else FORM
    if outcome.source == FILE:
        return _card_from_file(outcome, _upload(form, CARD_FILE), max_bytes)
    return _card_from_form(outcome)


def _check_write(
    outcome: Outcome, registry: Registry, session: Any, caller: Caller, name: str, card: Card
) -> bool:
    """The catalogue's own checks of who may write this card (owner, project): their refusal by a field."""
    try:
        catalogue.check_can_register(registry, session, caller, name, card)
    except (Forbidden, InvalidInput) as exc:
        target, label = _where(exc.message)
        outcome.add(target, label, exc.message)
        return False
    return True


def _where(message: str) -> tuple[str | None, str]:
    """The card field a catalogue refusal is about (the project, else the owner)."""
    if "projet" in message:
        return "f-identification-project", "Identification › Projet du catalogue"
    if "SIREN" in message or "propriétaire" in message:
        return (
            "f-identification-owner-siren",
            "Identification › Collectivité propriétaire › SIREN",
        )
    return None, "Fiche"


# ------------------------------------------------------------------ publishing


def _publish(
    request: Request,
    registry: Registry,
    session: Any,
    caller: Caller,
    form: FormData,
    name: str | None,
    *,
    new: bool,
) -> Outcome:
    """Check everything, then register: runs in the threadpool (it reads the untrusted uploads)."""
    settings = request.app.state.services.settings
    outcome = Outcome()
    if new:
        raw = _text(form, NAME, 120)
        try:
            name = check_name(raw)
        except InvalidInput:
            name = None
            outcome.add(
                NAME,
                "Identifiant du modèle",
                "champ obligatoire manquant" if not raw else f"identifiant invalide : {NAME_HELP}",
            )
        if name is not None:
            try:
                registry.get(name)
                outcome.add(
                    NAME,
                    "Identifiant du modèle",
                    f"un modèle « {name} » existe déjà : choisissez un autre identifiant, "
                    "ou publiez une nouvelle version depuis la page de ce modèle",
                )
            except NotFound:
                pass
    alias = _text(form, ALIAS, 80) or None
    if alias is not None:
        try:
            check_alias(alias)
        except InvalidInput:
            outcome.add(ALIAS, "Alias", f"alias invalide : {ALIAS_HELP}")
    gate = request.app.state.evaluations.check_promotion
    if alias is not None and name is not None and ALIAS not in outcome.field_errors:
        try:
            catalogue.check_publication_alias(registry, name, alias, gate)
        except PromotionRefused as exc:
            outcome.add(
                ALIAS,
                "Alias",
                f"{exc.message} ; publiez la version sans cet alias (ou sous « candidat »), "
                "faites-la évaluer, puis déplacez l'alias",
            )
    card = _card_of(outcome, form, settings.max_card_bytes)
    if card is not None and name is not None:
        _check_write(outcome, registry, session, caller, name, card)
    archive = _upload(form, ARCHIVE)
    if archive is None:
        outcome.add(
            ARCHIVE,
            "Archive du modèle",
            "choisissez l'archive du modèle (.tar.gz du dossier du modèle MLflow)",
        )
    with tempfile.TemporaryDirectory(prefix="bibia-upload-", dir=settings.cache_dir) as tmp:
        model_dir = None
        if archive is not None:
            try:
                model_dir = extract_model_archive(archive.file, Path(tmp), settings.max_model_bytes)
            except InvalidInput as exc:  # InvalidModel, PayloadTooLarge
                outcome.add(ARCHIVE, "Archive du modèle", exc.message)
        if outcome.problems or card is None or name is None or model_dir is None:
            return outcome
        try:
            done = catalogue.register_version(
                registry, session, caller, name, model_dir, card, alias=alias, promotion_gate=gate
            )
        except InvalidInput as exc:  # an unreadable MLmodel, a card too large once serialised
            target = ARCHIVE if "MLmodel" in exc.message or "modèle" in exc.message else None
            outcome.add(target, "Archive du modèle" if target else "Publication", exc.message)
            return outcome
    outcome.version = int(done["version"])
    return outcome


PAGE_ORDER = {None: 0, NAME: 1, ARCHIVE: 2, ALIAS: 3, CARD_FILE: 4}


def _form_order(problem: Problem) -> int:
    """The summary lists the problems in the order of the page: its own inputs, then the card's."""
    return PAGE_ORDER.get(problem.target, len(PAGE_ORDER))


def _page(
    request: Request,
    *,
    heading: str,
    action: str,
    outcome: Outcome,
    model: ModelSummary | None = None,
    name: str = "",
    alias: str = "",
    uploads: bool = True,
    chosen: bool = False,
) -> HTMLResponse:
    widgets = outcome.widgets if outcome.widgets is not None else cardform.build(outcome.values)
    _attach(widgets, outcome.field_errors)
    status = 422 if outcome.problems else 200
    title = f"{len(outcome.problems)} erreur(s) — {heading}" if outcome.problems else heading
    return render(
        request,
        "publier.html",
        status=status,
        title=title,
        heading=heading,
        action=action,
        model=model,
        new=model is None and uploads,
        uploads=uploads,
        name=name,
        alias=alias,
        widgets=widgets,
        problems=sorted(outcome.problems, key=_form_order),
        field_errors=outcome.field_errors,
        source=outcome.source,
        notes=outcome.notes,
        chosen=chosen,
        archives=ARCHIVES,
        card_files=CARD_FILES,
        max_model_mb=request.app.state.services.settings.max_model_bytes // (1024 * 1024),
    )


# ------------------------------------------------------------------ routes


@router.get("/publier", response_class=HTMLResponse)
def new_model_page(request: Request, caller: PageCallerDep, session: SessionDep) -> Response:
    if not caller.is_authenticated:
        return _login_redirect("/publier")
    _check_may_publish(caller)
    return _page(
        request,
        heading="Publier un modèle",
        action="/publier",
        outcome=Outcome(values=_card_values(None, caller, session)),
    )


@router.post("/publier")
async def publish_new_model(
    request: Request, caller: PageCallerDep, registry: RegistryDep, session: SessionDep
) -> Response:
    if not caller.is_authenticated:
        return _login_redirect("/publier")
    _check_may_publish(caller)
    form = await _form(request, files=2)
    try:
        outcome = await run_in_threadpool(
            _publish, request, registry, session, caller, form, None, new=True
        )
    finally:
        await form.close()
    name = _text(form, NAME, 120)
    if outcome.version is not None:
        return RedirectResponse(
            f"/modeles/{quote(name)}?publie={outcome.version}#contenu", status_code=303
        )
    return _page(
        request,
        heading="Publier un modèle",
        action="/publier",
        outcome=outcome,
        name=name,
        alias=_text(form, ALIAS, 80),
        chosen=_chosen(form),
    )


@router.get("/modeles/{name}/publier", response_class=HTMLResponse)
def new_version_page(
    request: Request, name: str, caller: PageCallerDep, registry: RegistryDep, session: SessionDep
) -> Response:
    if not caller.is_authenticated:
        return _login_redirect(f"/modeles/{_model_name(name)}/publier")
    _check_may_publish(caller)
    summary = _owned_model(registry, caller, name)
    return _page(
        request,
        heading=f"Publier une nouvelle version de « {_title(summary)} »",
        action=f"/modeles/{quote(summary.name)}/publier",
        outcome=Outcome(values=_card_values(summary, caller, session)),
        model=summary,
    )


@router.post("/modeles/{name}/publier")
async def publish_new_version(
    request: Request, name: str, caller: PageCallerDep, registry: RegistryDep, session: SessionDep
) -> Response:
    if not caller.is_authenticated:
        return _login_redirect(f"/modeles/{_model_name(name)}/publier")
    _check_may_publish(caller)
    summary = await run_in_threadpool(_owned_model, registry, caller, name)
    form = await _form(request, files=2)
    try:
        outcome = await run_in_threadpool(
            _publish, request, registry, session, caller, form, summary.name, new=False
        )
    finally:
        await form.close()
    if outcome.version is not None:
        return RedirectResponse(
            f"/modeles/{quote(summary.name)}?publie={outcome.version}#contenu", status_code=303
        )
    return _page(
        request,
        heading=f"Publier une nouvelle version de « {_title(summary)} »",
        action=f"/modeles/{quote(summary.name)}/publier",
        outcome=outcome,
        model=summary,
        alias=_text(form, ALIAS, 80),
        chosen=_chosen(form),
    )


def _title(summary: ModelSummary) -> str:
    return summary.card.identification.title if summary.card is not None else summary.name


@router.get("/modeles/{name}/fiche", response_class=HTMLResponse)
def card_page(
    request: Request, name: str, caller: PageCallerDep, registry: RegistryDep, session: SessionDep
) -> Response:
    if not caller.is_authenticated:
        return _login_redirect(f"/modeles/{_model_name(name)}/fiche")
    _check_may_publish(caller)
    summary = _owned_model(registry, caller, name)
    return _page(
        request,
        heading=f"Modifier la fiche de « {_title(summary)} »",
        action=f"/modeles/{quote(summary.name)}/fiche",
        outcome=Outcome(values=_card_values(summary, caller, session)),
        model=summary,
        uploads=False,
    )


def _save_card(
    registry: Registry, session: Any, caller: Caller, name: str, form: FormData
) -> Outcome:
    outcome = Outcome(values=_card_values_of(form))
    card = _card_from_form(outcome)
    if card is None or not _check_write(outcome, registry, session, caller, name, card):
        return outcome
    catalogue.update_card(registry, session, caller, name, card)
    return outcome


@router.post("/modeles/{name}/fiche")
async def save_card(
    request: Request, name: str, caller: PageCallerDep, registry: RegistryDep, session: SessionDep
) -> Response:
    if not caller.is_authenticated:
        return _login_redirect(f"/modeles/{_model_name(name)}/fiche")
    _check_may_publish(caller)
    summary = await run_in_threadpool(_owned_model, registry, caller, name)
    form = await _form(request, files=0)
    outcome = await run_in_threadpool(_save_card, registry, session, caller, summary.name, form)
    if not outcome.problems:
        return RedirectResponse(
            f"/modeles/{quote(summary.name)}?fiche=modifiee#contenu", status_code=303
        )
    return _page(
        request,
        heading=f"Modifier la fiche de « {_title(summary)} »",
        action=f"/modeles/{quote(summary.name)}/fiche",
        outcome=outcome,
        model=summary,
        uploads=False,
    )
