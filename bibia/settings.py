"""One typed settings object, built at the edge (CLI, ASGI factory) and passed in.

Every setting reads from a ``BIBIA_*`` environment variable; nothing reads the
environment at import time. Tests build ``Settings(data_dir=tmp_path)``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIBIA_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Where the embedded default keeps everything")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str | None = Field(None, description="Base URL users reach the service at")
    assets_dir: Path = Field(
        Path(__file__).resolve().parents[1] / "node_modules",
        description="The browser assets `make install` put there from the npm registry (Swagger UI, ReDoc), served by bibia itself",
    )
    timezone: str = Field(
        "Europe/Paris", description="Time zone of the times shown on the web pages"
    )

    database_url: SecretStr | None = Field(
        None, description="bibia's own database; default sqlite:///<data_dir>/bibia.db"
    )
    mlflow_tracking_uri: SecretStr | None = Field(
        None, description="MLflow backend store; default sqlite:///<data_dir>/mlflow.db"
    )
    mlflow_artifact_root: str | None = Field(
        None,
        description="Where new model artifacts go; default <data_dir>/artifacts (or s3://bucket/prefix)",
    )

    max_card_bytes: int = 256 * 1024
    max_model_bytes: int = 512 * 1024 * 1024
    max_request_bytes: int = Field(
        8 * 1024 * 1024, description="Largest body from an authenticated caller"
    )
    anonymous_max_request_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest body from a caller without valid credentials (any route)",
    )

    secret_key: SecretStr | None = Field(
        None,
        description="Signs the CSRF cookies; default: generated once into <data_dir>/secret_key (mode 0600)",
    )
    session_hours: float = Field(
        12.0, gt=0, le=24 * 31, description="Lifetime of a web session from sign-in"
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated IPs or networks of reverse proxies whose X-Forwarded-For/-Proto are believed",
    )
    auth_failure_limit: int = Field(
        20, ge=1, description="Refused credentials allowed per client and window"
    )
    auth_failure_window_s: int = Field(
        60, ge=1, description="The moving window of auth_failure_limit, in seconds"
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="Time a connection has to send complete request headers"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="What bibia serve writes to its standard error (bibia's own messages)"
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="Longest pause allowed between two chunks of a request body"
    )

    # Sign-in through OpenID Connect (bibia.oidc): off while oidc_issuer is unset.
    oidc_issuer: str | None = Field(
        None,
        description="The OpenID Connect provider's issuer (its /.well-known/openid-configuration "
        "is read from there), e.g. https://auth.agentconnect.gouv.fr/api/v2; unset: no sign-in "
        "through a provider, tokens only",
    )
    oidc_provider_name: str = Field(
        "ProConnect", min_length=1, max_length=60, description="The provider's name on the pages"
    )
    oidc_client_id: str | None = Field(None, description="bibia's client id at the provider")
    oidc_client_secret: SecretStr | None = Field(
        None, description="bibia's client secret at the provider (never logged nor shown)"
    )
    oidc_client_secret_file: Path | None = Field(
        None, description="A file holding the client secret (instead of oidc_client_secret)"
    )
    oidc_scopes: str = Field(
        "openid email given_name usual_name siret",
        description="Scopes asked for, space-separated (openid is always added)",
    )
    oidc_organisation_claim: str = Field(
        "siret",
        min_length=1,
        max_length=100,
        description="The claim (ID token or userinfo) naming the person's organisation: a SIRET "
        "(14 digits, the SIREN is its first 9) or a SIREN (9 digits)",
    )
    oidc_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Longest wait for the provider (discovery, keys, tokens)"
    )
    oidc_start_limit: int = Field(
        120,
        ge=1,
        description="Sign-ins through the provider one client may start per oidc_start_window_s",
    )
    oidc_start_window_s: int = Field(
        600, ge=1, description="The moving window of oidc_start_limit, in seconds"
    )

    seed_on_start: bool = True

    runner: Literal["auto", "docker", "process", "kubernetes", "none"] = "auto"
    demo_image: str = "bibia/demo:latest"
    kubernetes_namespace: str = Field(
        "bibia",
        min_length=1,
        description="Namespace of the demonstrator pods (BIBIA_RUNNER=kubernetes)",
    )
    kubernetes_kubeconfig: Path | None = Field(
        None, description="Kubeconfig file (default: KUBECONFIG or ~/.kube/config)"
    )
    kubernetes_in_cluster: bool = Field(
        False, description="The service runs in the cluster: use its pod's service account"
    )
    kubernetes_image: str | None = Field(
        None, description="The demonstrator image as the cluster pulls it (default: demo_image)"
    )
    kubernetes_service_labels: str = Field(
        "app.kubernetes.io/name=bibia",
        min_length=3,
        description="Labels of the service's pods, key=value,key=value: the only pods a demonstrator admits",
    )
    kubernetes_service_namespace: str | None = Field(
        None, description="The service's namespace, when it is not the demonstrators'"
    )
    demo_ttl_minutes: int = Field(30, ge=1)
    demo_max_ttl_minutes: int = Field(240, ge=1)
    demo_quota_per_org: int = Field(5, ge=0)
    demo_quota_global: int = Field(25, ge=0)
    demo_memory_mb: int = Field(768, ge=64)
    demo_cpus: float = Field(1.0, gt=0)
    demo_pids: int = Field(128, ge=16)
    demo_start_timeout_s: float = Field(120.0, gt=0)
    demo_reap_interval_s: float = Field(15.0, gt=0)
    replica_id: str = Field(
        default_factory=lambda: secrets.token_hex(6),
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Names this replica (its heartbeat row, its sandboxes' bibia.replica label); "
        "default: random at each start",
    )
    replica_dead_after_intervals: int = Field(
        3,
        ge=2,
        description="A replica whose heartbeat is older than this many reaper intervals is dead: "
        "a survivor removes its warm sandboxes and takes over its launches",
    )
    sandboxes_dir: Path | None = Field(
        None,
        description="The demonstrators' directories and sockets; default <data_dir>/demos. "
        "Replicas on one host set the same directory so that each can reach the others' sandboxes",
    )
    demo_pool_size: int = Field(
        2,
        ge=0,
        le=50,
        description="Warm sandboxes kept ready with the heavy imports done (Docker runner only; 0: none). "
        "Each one holds about 200 MiB of memory while it waits",
    )
    evaluation_workers: int = Field(
        1,
        ge=0,
        le=16,
        description="Evaluations this replica runs at once (0: it runs none, other replicas do)",
    )
    evaluation_quota_per_org: int = Field(
        3, ge=1, description="Evaluations an organisation may have queued or running at once"
    )
    evaluation_hidden_per_day: int = Field(
        5,
        ge=1,
        description="Verified evaluations an organisation may run per day on one hidden-truth "
        "benchmark (its scores must not become a way to read its truth)",
    )
    evaluation_timeout_s: float = Field(
        1800.0, gt=0, description="Longest an evaluation may run, sandbox start included"
    )
    evaluation_predict_timeout_s: float = Field(
        300.0, gt=0, description="Longest one batch of predictions may take"
    )
    evaluation_batch_rows: int = Field(
        5000, ge=1, le=10_000, description="Rows sent to the sandbox per prediction request"
    )
    evaluation_max_rows: int = Field(
        200_000, ge=1, description="Most rows in a benchmark or a labelled CSV"
    )
    evaluation_max_upload_mb: int = Field(
        20, ge=1, le=512, description="Largest benchmark or labelled CSV accepted, in MiB"
    )
    evaluation_poll_interval_s: float = Field(
        1.0, gt=0, description="How often an idle worker looks for queued evaluations"
    )
    evaluation_heartbeat_s: float = Field(
        5.0, gt=0, description="How often a running evaluation proves its worker alive"
    )
    evaluation_stale_after_s: float = Field(
        60.0, gt=0, description="A running evaluation whose worker is silent this long is recovered"
    )
    evaluation_max_attempts: int = Field(
        2, ge=1, le=10, description="Runs an evaluation gets before a restart fails it for good"
    )
    energy_cpu_watts_per_core: float = Field(
        10.0, gt=0, description="Power of one fully used core, in W (see evaluation/energy.py)"
    )
    energy_memory_watts_per_gb: float = Field(
        0.375, ge=0, description="Power of one GB of memory, in W (CodeCarbon's factor)"
    )
    energy_pue: float = Field(1.5, ge=1, description="Data centre power usage effectiveness")
    carbon_intensity_g_per_kwh: float = Field(
        52.0, ge=0, description="gCO2e per kWh of electricity (ADEME, France's mix)"
    )
    allow_untrusted_process_runner: bool = Field(
        False,
        description="Let ProcessRunner run models that are not reference models (development only)",
    )

    @field_validator("demo_pool_size")
    @classmethod
    def _no_pool_on_kubernetes(cls, value: int, info: ValidationInfo) -> int:
        """Kubernetes sends the model at a pod's start: no warm pool (its model would come later)."""
        return 0 if info.data.get("runner") == "kubernetes" else value

    @field_validator("kubernetes_service_labels")
    @classmethod
    def _service_labels(cls, value: str) -> str:
        for entry in _entries(value):
            key, sep, label = entry.partition("=")
            if not (sep and key.strip() and label.strip()):
                raise ValueError(
                    f"BIBIA_KUBERNETES_SERVICE_LABELS : « {entry} » n'est pas de la forme clé=valeur"
                )
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"BIBIA_TIMEZONE : « {value} » n'est pas un fuseau horaire connu (ex. Europe/Paris)"
            ) from exc
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for entry in _entries(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"BIBIA_TRUSTED_PROXIES : « {entry} » n'est ni une adresse IP ni un réseau (ex. 10.0.0.0/8)"
                ) from exc
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        loopback = value.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:"))
        if not (value.startswith("https://") or loopback):
            raise ValueError(
                f"BIBIA_OIDC_ISSUER : « {value} » doit être une adresse https:// "
                "(http:// n'est admis que sur 127.0.0.1 ou localhost, pour les essais)"
            )
        return value

    @property
    def kubernetes_service_selector(self) -> dict[str, str]:
        """:attr:`kubernetes_service_labels` as a mapping (the NetworkPolicy's podSelector)."""
        pairs = (entry.partition("=") for entry in _entries(self.kubernetes_service_labels))
        return {key.strip(): value.strip() for key, _, value in pairs}

    @property
    def oidc_enabled(self) -> bool:
        """Sign-in through OpenID Connect is offered (an issuer and a client id are set)."""
        return bool(self.oidc_issuer and self.oidc_client_id)

    def oidc_secret(self) -> str | None:
        """The client secret, from ``oidc_client_secret`` or ``oidc_client_secret_file``."""
        if self.oidc_client_secret is not None:
            return self.oidc_client_secret.get_secret_value()
        if self.oidc_client_secret_file is not None:
            return self.oidc_client_secret_file.read_text(encoding="utf-8").strip() or None
        return None

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _entries(self.trusted_proxies)

    def cookies_secure(self, scheme: str) -> bool:
        """Cookies get ``Secure`` over HTTPS, and always when users reach the service by an https address."""
        return scheme == "https" or (self.public_url or "").lower().startswith("https://")

    def signing_secret(self) -> str:
        """``secret_key``, or the one generated once in ``<data_dir>/secret_key`` (shared by replicas and restarts)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if not path.exists():
            _create_secret(path)
        return path.read_text(encoding="ascii").strip()

    @property
    def database_uri(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'bibia.db'}"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri is not None:
            return self.mlflow_tracking_uri.get_secret_value()
        return f"sqlite:///{self.data_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return self.mlflow_artifact_root or (self.data_dir / "artifacts").as_uri()

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def demos_dir(self) -> Path:
        return self.sandboxes_dir or self.data_dir / "demos"

    @property
    def benchmarks_dir(self) -> Path:
        """Benchmarks' data files (inputs and truth), by content hash."""
        return self.data_dir / "benchmarks"

    @property
    def evaluations_dir(self) -> Path:
        """Labelled CSVs uploaded for an evaluation, kept until it is scored."""
        return self.data_dir / "evaluations"

    def ensure_dirs(self) -> None:
        for path in (
            self.data_dir,
            self.cache_dir,
            self.demos_dir,
            self.benchmarks_dir,
            self.evaluations_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)
        if self.mlflow_artifact_root is None:
            (self.data_dir / "artifacts").mkdir(parents=True, exist_ok=True)


def _entries(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _create_secret(path: Path) -> None:
    """Write a new secret to ``path`` unless another process wins the race; never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)  # atomic, and refuses to replace the file a replica wrote first
        except FileExistsError:
            pass
    finally:
        draft.unlink(missing_ok=True)
