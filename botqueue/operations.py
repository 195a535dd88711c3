"""The three bot operations and their JSON wire format (the spec's, key for key)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
)
from pydantic.alias_generators import to_camel

from .errors import DecodeError, OperationValidationError

MAX_RETRIES_LIMIT = 20
"""The largest maxRetries an operation may carry; the queue's redrive count must exceed it."""

# Telegram usernames are 5-32 characters of letters, digits and underscores; numeric chat ids
# are signed integers (channels and supergroups are -100...).
_CHANNEL_ID = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?[1-9][0-9]{0,18})$")

RemoveReason = Literal["expiry", "refund", "cancellation"]
InviteMode = Literal["link", "join_request"]
"""How an invite admits its user: a single-use link, or a link whose join requests are approved."""
INVITE_MODES: tuple[InviteMode, ...] = ("link", "join_request")


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime, to the millisecond (the wire's unit)."""
    return _to_millis(datetime.now(UTC))


def _to_millis(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class _Operation(BaseModel):
    """Fields every operation carries."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
    )

    channel_id: StrictStr
    timestamp: AwareDatetime = Field(default_factory=utc_now)
    attempt_count: Annotated[StrictInt, Field(ge=0)] = 0
    max_retries: Annotated[StrictInt, Field(ge=0, le=MAX_RETRIES_LIMIT)] = 3

    @field_validator("channel_id")
    @classmethod
    def _check_channel(cls, value: str) -> str:
        if not _CHANNEL_ID.fullmatch(value):
            raise ValueError("must be an @username or a numeric chat id")
        return value

    @field_validator("timestamp")
    @classmethod
    def _truncate_timestamp(cls, value: datetime) -> datetime:
        try:
            # The wire carries UTC: a time that has none (0001-01-01 east of Greenwich)
            # could not be encoded later, so it is refused here, naming the field.
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("must be a time within years 1-9999 in UTC") from None
        # The wire carries milliseconds; keeping more would break equality after a round trip.
        return _to_millis(value)

    @field_serializer("timestamp")
    def _serialize_timestamp(self, value: datetime) -> str:
        # JavaScript's toISOString() shape, so TypeScript producers and consumers agree; the
        # year always has four digits (strftime's %Y gives "5" for the year 5).
        utc = value.astimezone(UTC)
        return (
            f"{utc.year:04d}" + utc.strftime("-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
        )

    def to_json(self) -> str:
        """Encode the operation as its wire JSON (camelCase keys)."""
        fields = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        # operationType first, as the spec's interfaces list it; readers do not depend on it.
        ordered = {"operationType": fields.pop("operationType"), **fields}
        return json.dumps(ordered, separators=(",", ":"))

    @property
    def group_id(self) -> str:
        """The FIFO message group: operations in one group run strictly in order."""
        raise NotImplementedError

    def identity(self) -> str:
        """The fields that make two operations the same request."""
        raise NotImplementedError

    def deduplication_id(self) -> str:
        """The deduplication id: a hash of the identity, never of the timestamp."""
        return hashlib.sha256(self.identity().encode()).hexdigest()

    @staticmethod
    def _identity(*parts: str | int | None) -> str:
        # JSON, not a joined string: no field value can shift into its neighbour.
        return json.dumps(parts, separators=(",", ":"))


class _UserOperation(_Operation):
    user_id: Annotated[StrictInt, Field(gt=0)]
    subscription_id: Annotated[StrictStr, Field(min_length=1, max_length=256)]

    @property
    def group_id(self) -> str:
        """The (channel, user) pair, so one user's operations in one channel stay ordered."""
        return f"{self.channel_id}:{self.user_id}"


class InviteUser(_UserOperation):
    """Let a user into a channel (a paid subscription became active)."""

    operation_type: Literal["INVITE_USER"] = "INVITE_USER"
    order_id: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    invite_mode: InviteMode | None = None
    """``inviteMode`` (an addition to the spec's format); absent: the worker's
    TELEGRAM_INVITE_MODE, so a spec producer's message means what it always did."""

    def identity(self) -> str:
        """Type, channel, user, subscription and order.

        Not the invite mode: it says how the same access is delivered, not which access, so
        a repeat of the invite in the other mode is the same request and is delivered once.
        """
        return self._identity(
            "INVITE_USER", self.channel_id, self.user_id, self.subscription_id, self.order_id
        )


class RemoveUser(_UserOperation):
    """Take a user out of a channel (expiry, refund or cancellation)."""

    operation_type: Literal["REMOVE_USER"] = "REMOVE_USER"
    reason: RemoveReason

    def identity(self) -> str:
        """Type, channel, user, subscription and reason."""
        return self._identity(
            "REMOVE_USER", self.channel_id, self.user_id, self.subscription_id, self.reason
        )


class VerifyPermissions(_Operation):
    """Check that the bot administers a channel with the rights it needs."""

    operation_type: Literal["VERIFY_PERMISSIONS"] = "VERIFY_PERMISSIONS"
    listing_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None

    @property
    def group_id(self) -> str:
        """The channel: checks of one channel run in order."""
        return self.channel_id

    def identity(self) -> str:
        """Type, channel and listing."""
        return self._identity("VERIFY_PERMISSIONS", self.channel_id, self.listing_id)


Operation = Annotated[
    InviteUser | RemoveUser | VerifyPermissions, Field(discriminator="operation_type")
]
"""Any of the three operations, told apart by ``operationType``."""

AnyOperation: TypeAlias = InviteUser | RemoveUser | VerifyPermissions
"""The type of a decoded operation."""

OPERATION_TYPES = ("INVITE_USER", "REMOVE_USER", "VERIFY_PERMISSIONS")

_ADAPTER: TypeAdapter[AnyOperation] = TypeAdapter(Operation)


def _field_errors(error: ValidationError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for item in error.errors(include_url=False):
        # The first element of loc is the union tag for a discriminated union; skip it.
        loc = [str(part) for part in item["loc"] if str(part) not in OPERATION_TYPES]
        field = ".".join(loc) or "body"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "union_tag_invalid":
            field, message = "operationType", f"must be one of {', '.join(OPERATION_TYPES)}"
        elif item["type"] == "union_tag_not_found":
            field, message = "operationType", "Field required"
        elif item["type"] == "model_attributes_type":
            message = "must be a JSON object"
        problems.setdefault(field, message)
    return problems


def build_operation(fields: dict[str, Any]) -> AnyOperation:
    """Build an operation from Python values (snake_case or camelCase keys).

    Raises:
        OperationValidationError: naming each invalid field by its wire name.
    """
    try:
        return _ADAPTER.validate_python(fields)
    except ValidationError as error:
        raise OperationValidationError(_field_errors(error)) from None


def decode_operation(body: str | bytes) -> AnyOperation:
    """Decode a queue message body.

    Raises:
        DecodeError: the body is not JSON or not a valid operation; names the fields.
    """
    try:
        return _ADAPTER.validate_json(body)
    except ValidationError as error:
        raise DecodeError(_field_errors(error)) from None
