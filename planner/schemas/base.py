"""Shared pydantic configuration for every schema."""

from typing import Annotated, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1


def _is_number(annotation) -> bool:
    """int, float, a Literal of ints, or an Optional/Annotated/union holding one."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) is Literal:
        return all(type(arg) is int for arg in get_args(annotation))
    return any(_is_number(arg) for arg in get_args(annotation))


class Strict(BaseModel):
    """Frozen, unknown keys rejected: a typo in a profile is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StrictInput(Strict):
    """A schema of files people write (profiles, plans): a number written as true/false is an error too.

    pydantic's lax mode would read `n_gpus: true` as 1. Only these schemas pay for the check (a
    validator on every field costs ~18 ms of a cold `recommend` if every result schema has it too).
    """

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value, info: ValidationInfo):
        if isinstance(value, bool) and _is_number(cls.model_fields[info.field_name].annotation):
            raise PydanticCustomError("bool_not_number", "Input should be a number, not {value}",
                                      {"value": str(value).lower()})
        return value


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
