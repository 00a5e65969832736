"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fiberflow.core.db.models import ServiceInstance

CustomerRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$", examples=["cust-1001"])]
# [0-9], not \d: pydantic's (Rust) regex takes \d for any Unicode digit.
PonPort = Annotated[str, Field(pattern=r"^[0-9]{1,2}/[0-9]{1,2}/[0-9]{1,3}$", examples=["0/1/3"])]
OntSerial = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{16}$", examples=["485754431A2B3C4D"])]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Description = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
# immediate: provision now; on_discovery: wait in awaiting_ont until the ONT appears.
Activation = Literal["immediate", "on_discovery"]


class ServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ref: CustomerRef
    plan: Name
    olt: Name
    pon_port: PonPort
    # Optional only for a zero-touch order (the route says 422 for an immediate one).
    ont_serial: OntSerial | None = None
    description: Description | None = None
    activation: Activation = "immediate"

    @field_validator("ont_serial")
    @classmethod
    def _upper(cls, v: str | None) -> str | None:
        return v.upper() if v is not None else None

    @field_validator("pon_port")
    @classmethod
    def _canonical_port(cls, v: str) -> str:
        # One spelling per port: "00/01/03" is stored (and compared) as "0/1/3".
        return "/".join(str(int(part)) for part in v.split("/"))


class SuspendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hard: bool = Field(default=False, description="Also deactivate the ONT")


class ChangePlanBody(BaseModel):
    """``POST /api/v1/services/{id}/change-plan``: the plan to move to (an inventory plan)."""

    model_config = ConfigDict(extra="forbid")

    plan: Name


class ReplaceOntBody(BaseModel):
    """``POST /api/v1/services/{id}/replace-ont``: the serial of the new ONT."""

    model_config = ConfigDict(extra="forbid")

    ont_serial: OntSerial

    @field_validator("ont_serial")
    @classmethod
    def _upper_serial(cls, v: str) -> str:
        return v.upper()


class ServiceOut(BaseModel):
    id: str
    tenant_id: str
    customer_ref: str
    status: str
    plan: str
    olt: str
    pon_port: str
    ont_serial: str | None
    activation: str
    ont_id: int | None
    vlan: int | None
    ip_address: str | None
    radius_username: str | None
    ont_rx_power_dbm: float | None = Field(
        description="The ONT's receive power (dBm) when it was last tested; null: never"
    )
    description: str | None
    flow_run_id: str | None
    current_operation: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        # SQLite hands the stored UTC times back naive; the API always says UTC.
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    @classmethod
    def of(cls, row: ServiceInstance) -> ServiceOut:
        return cls.model_validate(row, from_attributes=True)


class Accepted(BaseModel):
    id: str
    status: str
    flow_run_id: str | None


class ChangeOut(BaseModel):
    """What one system would get: a device's CLI lines, RADIUS rows or IPAM allocations."""

    target: str = Field(description="A device name, radius or ipam", examples=["olt-1"])
    kind: Literal["cli", "rows", "allocation"]
    lines: list[str] = Field(
        description="CLI lines in the order they would be sent; rows written (+) or removed "
        "(-), secrets as ***; allocations (ip A.B.C.D, vlan N, release ...)",
        examples=[["interface gpon 0/1", "ont activate 3 0", "quit"]],
    )


class DryRunOut(BaseModel):
    """``?dry_run=true``: the changes the operation would make now; none was made."""

    operation: str = Field(examples=["suspension"])
    changes: list[ChangeOut]


class SerialUpdate(BaseModel):
    """``PATCH /api/v1/services/{id}``: the serial of a zero-touch order's ONT."""

    model_config = ConfigDict(extra="forbid")

    ont_serial: OntSerial

    @field_validator("ont_serial")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()


class ServicePage(BaseModel):
    items: list[ServiceOut]
    next: str | None


class FieldError(BaseModel):
    field: str = Field(examples=["pon_port"])
    message: str


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, naming the field or the reason")
    errors: list[FieldError] | None = Field(
        default=None, description="On 422 from request validation: one entry per bad field"
    )


# -- inventory ----------------------------------------------------------------------------


class DeviceOut(BaseModel):
    name: str
    platform: str = Field(examples=["huawei_olt", "cisco_ios"])
    host: str
    port: int
    max_sessions: int


class OltOut(DeviceOut):
    bng: str = Field(description="The BNG this OLT's subscribers terminate on")
    boards: dict[str, int] = Field(description="GPON boards: FRAME/SLOT -> port count")
    vlan_range: tuple[int, int] = Field(description="First and last service VLAN")


class BngOut(DeviceOut):
    ip_pool: str


class PlanOut(BaseModel):
    name: str
    download_kbps: int
    upload_kbps: int


class InventoryOut(BaseModel):
    olts: list[OltOut]
    bngs: list[BngOut]
    plans: list[PlanOut]


# -- statistics ---------------------------------------------------------------------------


class OperationStats(BaseModel):
    completed: int
    failed: int
    success_rate: float | None = Field(description="completed / (completed + failed)")
    duration_p50_seconds: float | None
    duration_p95_seconds: float | None


class StatisticsOut(BaseModel):
    services_by_status: dict[str, int]
    total_services: int
    in_flight: dict[str, int] = Field(description="Running operations by operation")
    operations: dict[str, OperationStats] = Field(description="Finished runs by operation")
