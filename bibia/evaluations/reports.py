"""Reuse reports ("retours d'expérience chiffrés") and reuses ("nous réutilisons ce modèle").

A report is one done evaluation an organisation publishes with a short text,
to members (``membres``) or to everyone (``public``); publishing again updates
it (one report per evaluation). A reuse is an organisation's declaration that
it reuses a model (one per organisation and model; declaring again updates
it); reuses are public. Who may read a report is decided in one place,
:func:`readable`; an evaluation nobody published is never a report.
Every write lands in the audit log.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bibia import policy
from bibia.accounts import audit
from bibia.auth import Caller
from bibia.db.models import Evaluation, Reuse, ReuseReport
from bibia.evaluations.views import ReportView, ReuseView, _iso
from bibia.services import Services
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from registry.refs import check_name

MAX_TEXT = 5000
MAX_URL = 500
AUDIENCES = ("membres", "public")
_ALLOWED_CONTROLS = frozenset("\n\r\t")


def check_text(text: object, what: str = "le texte") -> str:
    """``text`` stripped, if it holds 1 to :data:`MAX_TEXT` characters and no control character.

    Raises:
        InvalidInput: in French, saying what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"{what} est obligatoire (1 à {MAX_TEXT} caractères)")
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput(f"{what} est vide : écrivez 1 à {MAX_TEXT} caractères")
    if len(cleaned) > MAX_TEXT:
        raise InvalidInput(f"{what} est trop long : {len(cleaned)} caractères, {MAX_TEXT} au plus")
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in cleaned):
        raise InvalidInput(f"{what} contient des caractères de contrôle")
    return cleaned


def check_audience(audience: object) -> str:
    """``membres`` or ``public``, else InvalidInput."""
    if audience not in AUDIENCES:
        shown = repr(audience)[:60]
        raise InvalidInput(
            f"public visé invalide : {shown} ; attendu « membres » (membres des collectivités) "
            "ou « public » (tout le monde)"
        )
    return str(audience)


def check_url(url: object) -> str | None:
    """An ``http(s)`` address of :data:`MAX_URL` characters at most, or None when absent.

    Raises:
        InvalidInput: not an http(s) address, too long, or with spaces or control characters.
    """
    if url is None or (isinstance(url, str) and not url.strip()):
        return None
    if not isinstance(url, str):
        raise InvalidInput("adresse invalide : attendu un texte commençant par https://")
    cleaned = url.strip()
    if len(cleaned) > MAX_URL:
        raise InvalidInput(f"adresse trop longue : {MAX_URL} caractères au plus")
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in cleaned):
        raise InvalidInput(
            "adresse invalide : elle ne doit contenir ni espace ni caractère de contrôle"
        )
    try:
        parts = urlsplit(cleaned)
    except ValueError as exc:
        raise InvalidInput(
            "adresse invalide : attendu par exemple https://www.exemple.fr/page"
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("adresse invalide : attendu par exemple https://www.exemple.fr/page")
    return cleaned


def readable(caller: Caller, report: ReuseReport) -> bool:
    """Whether ``caller`` may read ``report``: the one check every list and page relies on.

    Its audience decides (:func:`bibia.policy.may_read_report`); a report of a
    verified evaluation is also never shown to someone who may not see its
    benchmark's scores (a members-only benchmark).
    """
    if not policy.may_read_report(caller, report.audience):
        return False
    evaluation = report.evaluation
    if evaluation.kind == "benchmark" and evaluation.benchmark is not None:
        return policy.may_see_benchmark(caller, evaluation.benchmark.visibility)
    return True


def _report_view(report: ReuseReport) -> ReportView:
    evaluation = report.evaluation
    return ReportView(
        id=report.id,
        model=report.model_name,
        version=evaluation.model_version,
        organisation=report.organisation.slug,
        organisation_name=report.organisation.name,
        text=report.text,
        audience=report.audience,
        evaluation=evaluation.id,
        metrics=dict(evaluation.metrics) if evaluation.metrics is not None else None,
        baseline_metrics=(
            dict(evaluation.baseline_metrics) if evaluation.baseline_metrics is not None else None
        ),
        n_rows=evaluation.n_rows,
        created_at=_iso(report.created_at) or "",
    )


def _reuse_view(reuse: Reuse) -> ReuseView:
    return ReuseView(
        id=reuse.id,
        model=reuse.model_name,
        organisation=reuse.organisation.slug,
        organisation_name=reuse.organisation.name,
        text=reuse.text,
        url=reuse.url,
        created_at=_iso(reuse.created_at) or "",
    )


class Reports:
    """Publish and withdraw reports; declare and withdraw reuses; list both for a model."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # ------------------------------------------------------------ reports

    def publish(
        self, caller: Caller, evaluation_id: str, *, text: str, audience: str
    ) -> ReportView:
        """Publish (or update) the report of one of the caller's organisation's done evaluations.

        Raises:
            InvalidInput: text empty or too long, audience neither « membres » nor « public »,
                a public report of an evaluation on a members-only benchmark.
            NotFound: no such evaluation visible to the caller.
            Forbidden: an evaluation of another organisation.
            Conflict: the evaluation is not done.
        """
        text = check_text(text)
        audience = check_audience(audience)
        with self.services.db.session() as session:
            evaluation = self._evaluation(session, caller, evaluation_id)
            if not policy.may_publish_report(caller, evaluation.organisation_id):
                raise Forbidden(
                    "seule la collectivité qui a lancé cette évaluation peut en publier le résultat"
                )
            if evaluation.state != "done":
                raise Conflict(
                    f"l'évaluation « {evaluation.id} » n'est pas terminée (état : {evaluation.state}) ; "
                    "seul le résultat d'une évaluation terminée se publie"
                )
            benchmark = evaluation.benchmark
            if audience == "public" and benchmark is not None and benchmark.visibility == "membres":
                raise InvalidInput(
                    f"le jeu d'évaluation « {benchmark.slug} » est réservé aux membres : "
                    "son résultat ne se publie qu'aux membres (audience « membres »)"
                )
            report = session.scalar(
                select(ReuseReport).where(ReuseReport.evaluation_id == evaluation.id)
            )
            action = "report.update" if report is not None else "report.publish"
            if report is None:
                report = ReuseReport(
                    evaluation_id=evaluation.id,
                    model_name=evaluation.model_name,
                    organisation_id=evaluation.organisation_id,
                    user_id=caller.user_id,
                    text=text,
                    audience=audience,
                )
                session.add(report)
            else:
                report.text = text
                report.audience = audience
                report.user_id = caller.user_id
            session.flush()
            audit(
                session,
                caller,
                action,
                f"{evaluation.model_name}/{evaluation.model_version}",
                evaluation=evaluation.id,
                report=report.id,
                audience=audience,
            )
            session.refresh(report)
            return _report_view(report)

    def unpublish(self, caller: Caller, report_id: int) -> None:
        """Withdraw a report of the caller's organisation.

        Raises:
            NotFound: no such report the caller may read.
            Forbidden: a report of another organisation.
        """
        with self.services.db.session() as session:
            report = session.get(ReuseReport, report_id)
            if report is None or not (
                readable(caller, report)
                or policy.may_publish_report(caller, report.organisation_id)
            ):
                raise NotFound(f"retour d'expérience n° {report_id} introuvable")
            if not policy.may_publish_report(caller, report.organisation_id):
                raise Forbidden(
                    "seule la collectivité qui a publié ce retour d'expérience peut le retirer"
                )
            audit(
                session,
                caller,
                "report.unpublish",
                report.model_name,
                evaluation=report.evaluation_id,
                report=report.id,
            )
            session.delete(report)

    # ------------------------------------------------------------ reuses

    def declare(
        self, caller: Caller, model: str, *, text: str, url: str | None = None
    ) -> ReuseView:
        """Declare (or update) that the caller's organisation reuses ``model``.

        Raises:
            Forbidden: not a member of an organisation.
            InvalidInput: bad model name, text empty or too long, bad address.
            NotFound: no such model.
        """
        if not policy.may_declare_reuse(caller):
            raise Forbidden("réservé aux membres d'une collectivité")
        check_name(model)
        text = check_text(text)
        address = check_url(url)
        self.services.registry.get(model)  # NotFound when no such model
        with self.services.db.session() as session:
            reuse = session.scalar(
                select(Reuse).where(
                    Reuse.model_name == model, Reuse.organisation_id == caller.organisation_id
                )
            )
            action = "reuse.update" if reuse is not None else "reuse.declare"
            if reuse is None:
                assert caller.organisation_id is not None  # may_declare_reuse
                reuse = Reuse(
                    model_name=model,
                    organisation_id=caller.organisation_id,
                    user_id=caller.user_id,
                    text=text,
                    url=address,
                )
                session.add(reuse)
            else:
                reuse.text = text
                reuse.url = address
                reuse.user_id = caller.user_id
            session.flush()
            audit(session, caller, action, model, reuse=reuse.id)
            session.refresh(reuse)
            return _reuse_view(reuse)

    def withdraw(self, caller: Caller, model: str) -> None:
        """Withdraw the caller's organisation's reuse of ``model``.

        Raises:
            Forbidden: not a member of an organisation.
            NotFound: the organisation declared no reuse of it.
        """
        if not policy.may_declare_reuse(caller):
            raise Forbidden("réservé aux membres d'une collectivité")
        check_name(model)
        with self.services.db.session() as session:
            reuse = session.scalar(
                select(Reuse).where(
                    Reuse.model_name == model, Reuse.organisation_id == caller.organisation_id
                )
            )
            if reuse is None:
                raise NotFound(
                    f"votre collectivité n'a pas déclaré réutiliser le modèle « {model} »"
                )
            audit(session, caller, "reuse.withdraw", model, reuse=reuse.id)
            session.delete(reuse)

    # ------------------------------------------------------------ reads

    def for_model(self, caller: Caller, model: str) -> tuple[list[ReportView], list[ReuseView]]:
        """The reports ``caller`` may read and the reuses of ``model``, newest first."""
        check_name(model)
        with self.services.db.session() as session:
            reports = session.scalars(
                select(ReuseReport)
                .join(Evaluation, ReuseReport.evaluation_id == Evaluation.id)
                .where(ReuseReport.model_name == model, Evaluation.state == "done")
                .options(
                    selectinload(ReuseReport.evaluation).selectinload(Evaluation.benchmark),
                    selectinload(ReuseReport.organisation),
                )
                .order_by(ReuseReport.created_at.desc(), ReuseReport.id.desc())
            ).all()
            reuses = session.scalars(
                select(Reuse)
                .where(Reuse.model_name == model)
                .options(selectinload(Reuse.organisation))
                .order_by(Reuse.created_at.desc(), Reuse.id.desc())
            ).all()
            return (
                [_report_view(r) for r in reports if readable(caller, r)],
                [_reuse_view(r) for r in reuses],
            )

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _evaluation(session: Session, caller: Caller, evaluation_id: str) -> Evaluation:
        """The evaluation ``evaluation_id`` if the caller may see it, else NotFound."""
        evaluation = (
            session.get(Evaluation, evaluation_id)
            if isinstance(evaluation_id, str) and 0 < len(evaluation_id) <= 32
            else None
        )
        if evaluation is not None:
            benchmark = evaluation.benchmark
            if policy.may_see_evaluation(
                caller,
                evaluation.kind,
                evaluation.organisation_id,
                benchmark.visibility if benchmark is not None else None,
            ):
                return evaluation
        shown = evaluation_id[:40] if isinstance(evaluation_id, str) else "?"
        raise NotFound(f"évaluation « {shown} » introuvable")
