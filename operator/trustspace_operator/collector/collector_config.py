"""The collector's configuration file (YAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class CollectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    listen_host: str = Field(default="127.0.0.1", alias="listenHost")
    listen_port: Annotated[int, Field(ge=0, le=65535)] = Field(default=8443, alias="listenPort")
    tls_cert_file: Path = Field(alias="tlsCertFile")
    tls_key_file: Path = Field(alias="tlsKeyFile")
    database: Path | None = None
    """SQLite file (WAL, synchronous=FULL)."""
    database_url: str | None = Field(
        default=None, alias="databaseUrl", pattern=r"^postgres(ql)?://"
    )
    """PostgreSQL instead of SQLite: a libpq URL, e.g. ``postgresql://collector@db/audit``
    (a password belongs in ``PGPASSWORD``/``PGPASSFILE``, not here)."""
    trust_bundle_file: Path = Field(alias="trustBundleFile")
    hub_key_file: Path = Field(alias="hubKeyFile")
    """The hub's SM2 private key: signs checkpoints."""
    trust_anchor_file: Path | None = Field(default=None, alias="trustAnchorFile")
    """Pinned hub public key PEM for the trust bundle; default: the hub key's public half."""
    origin: str = "trustspace.io/hub/audit"
    key_name: str = Field(default="trustspace-hub", alias="keyName")
    checkpoint_interval_seconds: Annotated[float, Field(gt=0)] = Field(
        default=5.0, alias="checkpointIntervalSeconds"
    )
    checkpoint_every: Annotated[int, Field(ge=1)] = Field(default=10_000, alias="checkpointEvery")
    status_interval_seconds: Annotated[float, Field(gt=0)] = Field(
        default=5.0, alias="statusIntervalSeconds"
    )
    status_sink: Literal["none", "file", "kubernetes"] = Field(default="none", alias="statusSink")
    status_file: Path | None = Field(default=None, alias="statusFile")
    status_namespace: str | None = Field(default=None, alias="statusNamespace")
    max_body_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=32 * 1024 * 1024, alias="maxBodyBytes"
    )

    @model_validator(mode="after")
    def _one_database(self) -> CollectorConfig:
        if (self.database is None) == (self.database_url is None):
            raise ValueError("set exactly one of database (SQLite file) and databaseUrl")
        return self

    @property
    def storage_location(self) -> str | Path:
        location = self.database_url or self.database
        assert location is not None  # the validator
        return location

    @classmethod
    def load(cls, path: Path) -> CollectorConfig:
        return cls.model_validate(yaml.safe_load(path.read_text()))
