"""One typed settings object, built at the edge (CLI, ASGI factory) and passed in.

Every setting reads from a ``BIBIA_*`` environment variable; nothing reads the
environment at import time. Tests build ``Settings(data_dir=tmp_path)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIBIA_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Where the embedded default keeps everything")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str | None = Field(None, description="Base URL users reach the service at")

    database_url: SecretStr | None = Field(
        None, description="bibia's own database; default sqlite:///<data_dir>/bibia.db"
    )
    mlflow_tracking_uri: SecretStr | None = Field(
        None, description="MLflow backend store; default sqlite:///<data_dir>/mlflow.db"
    )
    mlflow_artifact_root: str | None = Field(
        None, description="Where new model artifacts go; default <data_dir>/artifacts (or s3://bucket/prefix)"
    )

    max_card_bytes: int = 256 * 1024
    max_model_bytes: int = 512 * 1024 * 1024
    max_request_bytes: int = 8 * 1024 * 1024
    per_page_max: int = 100

    seed_on_start: bool = True

    runner: Literal["auto", "docker", "process", "none"] = "auto"
    demo_image: str = "bibia/demo:latest"
    demo_ttl_minutes: int = Field(30, ge=1)
    demo_max_ttl_minutes: int = Field(240, ge=1)
    demo_quota_per_org: int = Field(5, ge=0)
    demo_quota_global: int = Field(25, ge=0)
    demo_memory_mb: int = Field(768, ge=64)
    demo_cpus: float = Field(1.0, gt=0)
    demo_pids: int = Field(128, ge=16)
    demo_start_timeout_s: float = Field(120.0, gt=0)
    demo_reap_interval_s: float = Field(15.0, gt=0)
    demo_pool_size: int = Field(
        2, ge=0, le=50,
        description="Warm sandboxes kept ready with the heavy imports done (Docker runner only; 0: none). "
        "Each one holds about 200 MiB of memory while it waits",
    )
    allow_untrusted_process_runner: bool = Field(
        False, description="Let ProcessRunner run models that are not reference models (development only)"
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

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
        return self.data_dir / "demos"

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.cache_dir, self.demos_dir):
            path.mkdir(parents=True, exist_ok=True)
        if self.mlflow_artifact_root is None:
            (self.data_dir / "artifacts").mkdir(parents=True, exist_ok=True)
