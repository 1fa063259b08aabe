"""``bibia seed``: the projects of Les Interconnectés and the reference models, idempotently.

Projects are upserted (an unchanged record changes nothing). A reference
model is trained and registered only when no version of it carries the
fingerprint of its current source code and data (``bibia.build_fingerprint``
version tag): a second run changes nothing, duplicates nothing, and takes
seconds.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from bibia import accounts, catalogue
from bibia.auth import SYSTEM, Caller
from bibia.db.models import Benchmark, Evaluation, ModelEvaluationSettings, Organisation
from bibia.evaluations.benchmarks import Benchmarks, Provenance
from bibia.evaluations.service import EvaluationService
from bibia.services import Services
from domain.errors import BibiaError, Conflict
from evaluation.benchmark_data import BenchmarkData
from registry.card import parse_card, parse_project
from registry.refs import ModelRef
from registry.tiers import Tier

FINGERPRINT_TAG = "bibia.build_fingerprint"
#: Reference packages, each one version of its ``MODEL_NAME`` (under its ``ALIAS``, else
#: production): ``demos.cantine.commande`` is cantine-nantes' staff-order variant, seeded before
#: the calendar-only production version so that the catalogue shows production's card (the latest).
REFERENCE_MODELS = ("demos.cantine.commande", "demos.cantine", "demos.velo", "demos.air")


@dataclass
class SeedReport:
    projects_created: list[str] = field(default_factory=list)
    projects_updated: list[str] = field(default_factory=list)
    organisations_created: list[str] = field(default_factory=list)
    models_registered: list[str] = field(default_factory=list)
    models_unchanged: list[str] = field(default_factory=list)
    benchmarks_registered: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"catalogue peuplé : {len(self.projects_created)} projet(s) créé(s), {len(self.projects_updated)} mis à jour, "
            f"{len(self.organisations_created)} organisation(s) créée(s), {len(self.models_registered)} modèle(s) "
            f"enregistré(s), {len(self.models_unchanged)} déjà à jour, "
            f"{len(self.benchmarks_registered)} jeu(x) d'évaluation enregistré(s)"
        )


def fingerprint(package: str) -> str:
    """SHA-256 of a reference model's package (its code and shipped data) and of the
    ``evaluation`` package its build scores with (the tasks' metrics and baselines)."""
    digest = hashlib.sha256()
    for name in (package, "evaluation"):
        root = Path(inspect.getfile(importlib.import_module(name))).parent
        files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for path in files:
            digest.update(f"{name}/{path.relative_to(root).as_posix()}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _org_slug(name: str) -> str:
    from registry.card import fold

    return re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")[:64]


def seed(services: Services, log: Callable[[str], None] = lambda _: None) -> SeedReport:
    """Populate the catalogue; safe to run any number of times."""
    from demos.projects import load_projects

    report = SeedReport()
    model_projects: dict[str, str] = {}
    with services.db.session() as session:
        for raw in load_projects():
            project = parse_project({k: v for k, v in raw.items() if k != "models"})
            for model in raw.get("models") or []:
                model_projects[model] = project.slug
            for owner in project.owners:
                if accounts.organisation_by_siren(session, owner.siren) is None:
                    slug = _org_slug(owner.name)
                    accounts.create_organisation(session, SYSTEM, slug, owner.name, owner.siren)
                    report.organisations_created.append(slug)
            before = catalogue.project_detail_raw(session, project.slug)
            # As the platform's operator (an admin): the owners are set directly, with the
            # organisations' recorded names, so compare with what was stored, not with the file.
            row, created = catalogue.upsert_project(session, SYSTEM, project)
            if created:
                report.projects_created.append(project.slug)
            elif before != row.data:
                report.projects_updated.append(project.slug)

    for package in REFERENCE_MODELS:
        _seed_model(services, package, model_projects, report, log)
    return report


def _seed_model(
    services: Services,
    package: str,
    model_projects: dict[str, str],
    report: SeedReport,
    log: Callable[[str], None],
) -> None:
    registry = services.registry
    stamp = fingerprint(package)
    module = importlib.import_module(package)
    name = module.MODEL_NAME
    if (
        registry.exists(name)
        and any(v.tags.get(FINGERPRINT_TAG) == stamp for v in registry.versions(name))
        and _has_reference_benchmark(services, name)
    ):
        report.models_unchanged.append(name)
        return
    log(f"entraînement du modèle de référence {package}…")
    with tempfile.TemporaryDirectory(prefix="bibia-seed-", dir=services.settings.cache_dir) as tmp:
        build = module.build(Path(tmp) / "model")
        if build.benchmark is not None:
            owner_siren = str(build.card["identification"]["owner"]["siren"])
            _seed_benchmark(services, build.name, owner_siren, build.benchmark, report, log)
        if registry.exists(build.name) and any(
            v.tags.get(FINGERPRINT_TAG) == stamp for v in registry.versions(build.name)
        ):
            report.models_unchanged.append(build.name)
            return
        card_data = dict(build.card)
        project = model_projects.get(build.name) or build.project
        card_data["identification"] = {**card_data["identification"], "project": project}
        card = parse_card(card_data)
        with services.db.session() as session:
            catalogue.register_version(
                registry,
                session,
                SYSTEM,
                build.name,
                build.model_dir,
                card,
                alias=build.alias,
                metrics=build.metrics,
                baseline_metrics=build.baseline_metrics,
                version_tags={FINGERPRINT_TAG: stamp, "bibia.reference": "true"},
            )
    report.models_registered.append(build.name)
    log(f"modèle {build.name} enregistré")


def _has_reference_benchmark(services: Services, model: str) -> bool:
    """Whether the model's task is set and that task has a reference benchmark."""
    with services.db.session() as session:
        chosen = session.get(ModelEvaluationSettings, model)
        if chosen is None or not chosen.task:
            return False
        return (
            session.scalar(
                select(Benchmark.id).where(
                    Benchmark.task == chosen.task, Benchmark.reference.is_(True)
                )
            )
            is not None
        )


def _seed_benchmark(
    services: Services,
    model: str,
    owner_siren: str,
    data: BenchmarkData,
    report: SeedReport,
    log: Callable[[str], None],
) -> None:
    """Register a reference model's benchmark (as its owner's organisation), and set the model's task."""
    benchmarks = Benchmarks(services.db, services.settings)
    with services.db.session() as session:
        owner = accounts.organisation_by_siren(session, owner_siren)
        if owner is None:
            owner = session.scalar(select(Organisation).order_by(Organisation.id).limit(1))
        if owner is None:
            owner = accounts.create_organisation(session, SYSTEM, "bibia", "bibia", None)
        operator = Caller(
            tier=Tier.ADMIN,
            organisation=owner.slug,
            organisation_id=owner.id,
            organisation_siren=owner.siren,
            user="systeme",
        )
    try:
        view = benchmarks.register(
            operator,
            slug=data.slug,
            task=data.task,
            frame=data.frame,
            provenance=Provenance.of_reference(data),
        )
        report.benchmarks_registered.append(view.label)
        log(f"jeu d'évaluation {view.label} enregistré")
    except Conflict:
        pass  # the same rows are already registered under this slug
    with services.db.session() as session:
        chosen = session.get(ModelEvaluationSettings, model)
        if chosen is None:
            session.add(
                ModelEvaluationSettings(
                    model_name=model, task=data.task, promotion_gate=False, updated_by="systeme"
                )
            )
        elif not chosen.task:
            chosen.task = data.task


def evaluate_references(evaluations: EvaluationService, log: Callable[[str], None]) -> list[str]:
    """Queue a verified evaluation of each reference package's version (its alias, else production)
    on its reference benchmark, unless one is already queued, running or done; the ids queued."""
    queued = []
    registry = evaluations.services.registry
    for package in REFERENCE_MODELS:
        module = importlib.import_module(package)
        name, alias = module.MODEL_NAME, getattr(module, "ALIAS", "production")
        if not registry.exists(name) or alias not in registry.get(name).aliases:
            continue
        with evaluations.services.db.session() as session:
            chosen = session.get(ModelEvaluationSettings, name)
            reference = (
                evaluations.benchmarks.reference_of(session, chosen.task)
                if chosen is not None and chosen.task
                else None
            )
            if reference is None:
                continue
            version = registry.resolve(ModelRef(name=name, alias=alias))
            exists = session.scalar(
                select(Evaluation.id).where(
                    Evaluation.model_name == name,
                    Evaluation.model_version == version.version,
                    Evaluation.benchmark_id == reference.id,
                    Evaluation.state.in_(("queued", "running", "done")),
                )
            )
            owner = session.get(Organisation, reference.organisation_id)
            if exists is not None or owner is None:
                continue
            operator = Caller(
                tier=Tier.ADMIN,
                organisation=owner.slug,
                organisation_id=owner.id,
                organisation_siren=owner.siren,
                user="systeme",
            )
            slug = reference.slug
        try:
            view = evaluations.submit(operator, ModelRef(name=name, alias=alias), benchmark=slug)
        except BibiaError as exc:
            log(f"évaluation de référence de {name} non lancée : {exc.message}")
            continue
        queued.append(view.id)
        log(f"évaluation vérifiée de {name} sur {slug} en attente ({view.url})")
    return queued
