"""Tables of bibia's own database. Schema changes go through Alembic migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Organisation(Base):
    """A collectivité (or any organisation sharing models), identified by its SIREN."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    siren: Mapped[str | None] = mapped_column(String(9), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Per-organisation quotas set by an administrator; None: the service's setting applies.
    demo_quota: Mapped[int | None] = mapped_column(Integer)
    evaluation_quota: Mapped[int | None] = mapped_column(Integer)

    users: Mapped[list[User]] = relationship(back_populates="organisation")


class User(Base):
    """A person or a service account of an organisation.

    People who sign in through OpenID Connect are known by their provider's
    ``(oidc_issuer, oidc_subject)``; service accounts only have tokens.
    """

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("organisation_id", "name"),
        UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    email: Mapped[str | None] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(300))
    oidc_issuer: Mapped[str | None] = mapped_column(String(300))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    last_login_at: Mapped[dt.datetime | None] = mapped_column()

    organisation: Mapped[Organisation] = relationship(back_populates="users")
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    """An API token; only its SHA-256 is stored. ``prefix`` identifies it in lists and logs."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column()

    user: Mapped[User] = relationship(back_populates="tokens")


class WebSession(Base):
    """A browser's signed-in session (``bibia.sessions``), opened with an API token or OpenID Connect.

    Only the SHA-256 of its random identifier is stored; the session dies with
    its expiry, its revocation (sign-out, its owner), its token (when opened
    with one) or its user. ``method`` is ``jeton`` or ``oidc``; an OIDC
    session keeps the provider's ID token for the provider's sign-out
    (``id_token_hint``), never shown.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(16), default="jeton", server_default="jeton")
    oidc_id_token: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()

    user: Mapped[User] = relationship()
    token: Mapped[ApiToken | None] = relationship()


class OidcLogin(Base):
    """A sign-in through OpenID Connect under way: what the callback checks, used once.

    The browser holds only ``state`` (in the provider's redirect and in a
    cookie); the PKCE verifier and the nonce stay here. Rows are deleted at
    the callback and swept once expired.
    """

    __tablename__ = "oidc_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_url: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class ProjectRecord(Base):
    """A territorial AI project (validated ``registry.card.Project`` in ``data``)."""

    __tablename__ = "projects"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    theme: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    territory: Mapped[str] = mapped_column(String(300))
    search_text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModelCard(Base):
    """A model version's card (``registry.card.Card`` as JSON; see ``registry.cards``).

    The catalogue shows a model's highest carded version's card; ``project``,
    ``owner_siren`` and ``theme`` repeat the card's, for the projects' listings and the
    home page's figures.
    """

    __tablename__ = "model_cards"

    model_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    card: Mapped[str] = mapped_column(Text)
    project: Mapped[str | None] = mapped_column(String(64), index=True)
    owner_siren: Mapped[str | None] = mapped_column(String(9))
    theme: Mapped[str | None] = mapped_column(String(64), index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CatalogueEntry(Base):
    """A model or a project as the catalogue's search finds it (see ``bibia.catalogue_index``).

    One row per carded model (its highest carded version's card) and per project, written
    with the card or the project in the same transaction: the search, its filters, counts,
    orders and pages are SQL on these rows, never a read of every model. ``*_key`` columns
    are folded (lowercase, accent-free); ``search_text`` holds public fields only.
    """

    __tablename__ = "catalogue_entries"
    __table_args__ = (UniqueConstraint("kind", "key", name="uq_catalogue_entries_kind_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "modele" or "projet"
    key: Mapped[str] = mapped_column(String(256))  # the model's name or the project's slug
    version: Mapped[int | None] = mapped_column(Integer)  # a model's carded version shown
    title: Mapped[str] = mapped_column(Text)
    title_key: Mapped[str] = mapped_column(Text)
    theme: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    task: Mapped[str | None] = mapped_column(String(64))
    territory: Mapped[str] = mapped_column(Text)
    territory_key: Mapped[str] = mapped_column(Text)
    project: Mapped[str | None] = mapped_column(String(64))
    search_text: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime | None] = mapped_column(index=True)

    owners: Mapped[list[CatalogueOwner]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )


class CatalogueOwner(Base):
    """An owner of a catalogue entry (a model has one, a project one or more)."""

    __tablename__ = "catalogue_owners"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_entries.id", ondelete="CASCADE"), index=True
    )
    siren: Mapped[str] = mapped_column(String(9))
    name: Mapped[str] = mapped_column(Text)
    name_key: Mapped[str] = mapped_column(Text)


class DemoSession(Base):
    """A demonstrator: one model version run in a sandbox. States and transitions in ``bibia.demos.states``."""

    __tablename__ = "demo_sessions"
    __table_args__ = (Index("ix_demo_sessions_state", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    runner: Mapped[str] = mapped_column(String(32))
    runner_ref: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)  # a fixed French message, shown to members
    failure_logs: Mapped[str | None] = mapped_column(
        Text
    )  # the sandbox's last log lines: experts only
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    # "demo": a member's demonstrator; "evaluation": the sandbox of an evaluation job (not listed)
    purpose: Mapped[str] = mapped_column(String(16), default="demo", server_default="demo")
    # Measured by the sandbox's own accounting when it ended (None: not measured)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # The replica driving its launch (Settings.replica_id); a survivor takes it over when that one dies
    replica_id: Mapped[str | None] = mapped_column(String(64))


class Replica(Base):
    """A replica of the service on this database: its heartbeat (``bibia.demos.replicas``)."""

    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who did what, when. Never holds a secret."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(300))
    organisation: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Benchmark(Base):
    """An evaluation dataset registered for a task: one version of it.

    Its data (inputs and truth) are files under ``benchmarks_dir`` named by
    ``content_hash`` (:mod:`bibia.evaluations.benchmarks`); ``visibility`` is
    ``public``, ``membres`` or ``verite-cachee`` (only the platform reads the truth).
    """

    __tablename__ = "benchmarks"
    __table_args__ = (UniqueConstraint("slug", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    producer: Mapped[str] = mapped_column(String(300))  # who produced the data
    period_start: Mapped[str | None] = mapped_column(String(10))  # ISO dates
    period_end: Mapped[str | None] = mapped_column(String(10))
    licence: Mapped[str] = mapped_column(String(300))
    source_url: Mapped[str | None] = mapped_column(String(500))
    visibility: Mapped[str] = mapped_column(String(16))
    # The task's reference benchmark (the promotion gate and the leaderboard's default)
    reference: Mapped[bool] = mapped_column(Boolean, default=False)
    content_hash: Mapped[str] = mapped_column(String(64))
    n_rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"inputs": [...], "truth": [...]}
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()


class Evaluation(Base):
    """An evaluation job and, once done, its result (states in ``bibia.evaluations.jobs``).

    ``kind`` is ``benchmark`` (a verified evaluation on a registered
    benchmark) or ``donnees`` (a member's labelled CSV: private to its
    organisation). A worker claims a queued row under a row lock
    (``claimed_by``) and proves itself alive in ``heartbeat_at``.
    """

    __tablename__ = "evaluations"
    __table_args__ = (
        Index("ix_evaluations_state_created", "state", "created_at"),
        # Leaderboards: each version's latest done evaluation on a benchmark, from the index alone
        Index(
            "ix_evaluations_leaderboard",
            "benchmark_id",
            "state",
            "model_name",
            "model_version",
            "finished_at",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(300))  # what it is doing, in French
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    model_version: Mapped[int] = mapped_column(Integer)
    model_ref: Mapped[str] = mapped_column(String(200))  # as asked: cantine-nantes@production
    task: Mapped[str] = mapped_column(String(64), index=True)
    truth_column: Mapped[str | None] = mapped_column(String(100))  # generic tasks
    benchmark_id: Mapped[int | None] = mapped_column(
        ForeignKey("benchmarks.id", ondelete="CASCADE")
    )
    data_hash: Mapped[str | None] = mapped_column(String(64))  # the rows scored (benchmark or CSV)
    data_name: Mapped[str | None] = mapped_column(String(200))  # an uploaded CSV's file name
    n_rows: Mapped[int | None] = mapped_column(Integer)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_by: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # why it failed, in French
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    baseline_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    chart: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    bibia_version: Mapped[str | None] = mapped_column(String(32))
    runner: Mapped[str | None] = mapped_column(String(32))
    sandbox_id: Mapped[str | None] = mapped_column(String(32))
    duration_s: Mapped[float | None] = mapped_column(Float)
    predict_s: Mapped[float | None] = mapped_column(Float)
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    energy_wh: Mapped[float | None] = mapped_column(Float)
    co2e_g: Mapped[float | None] = mapped_column(Float)

    organisation: Mapped[Organisation] = relationship()
    benchmark: Mapped[Benchmark | None] = relationship()


class ReuseReport(Base):
    """A "retour d'expérience chiffré": an evaluation an organisation published, with a text."""

    __tablename__ = "reuse_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[str] = mapped_column(
        ForeignKey("evaluations.id", ondelete="CASCADE"), unique=True
    )
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(16))  # "membres" or "public"
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()
    evaluation: Mapped[Evaluation] = relationship()


class Reuse(Base):
    """An organisation's declaration "nous réutilisons ce modèle" (like data.gouv.fr's réutilisations)."""

    __tablename__ = "reuses"
    __table_args__ = (UniqueConstraint("model_name", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()


class ModelEvaluationSettings(Base):
    """A model's evaluation settings, set by its owner: its task and the promotion gate."""

    __tablename__ = "model_evaluation_settings"

    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    task: Mapped[str | None] = mapped_column(String(64))
    promotion_gate: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(300))
