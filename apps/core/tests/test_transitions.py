from dataclasses import dataclass

import pytest
from django.db import models

from apps.core.errors import InvalidTransition
from apps.core.transitions import ensure_transition


class DoorStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    LOCKED = "locked", "Locked shut"


DOOR_TRANSITIONS = {
    DoorStatus.OPEN: frozenset({DoorStatus.CLOSED}),
    DoorStatus.CLOSED: frozenset({DoorStatus.OPEN, DoorStatus.LOCKED}),
    DoorStatus.LOCKED: frozenset({DoorStatus.CLOSED}),
}


@dataclass
class Door:
    status: str


def _ensure(door: Door, target: str, names: list[str]) -> None:
    def describe() -> str:
        names.append("asked")
        return "Door #7"

    ensure_transition(door, target, transitions=DOOR_TRANSITIONS, status_enum=DoorStatus, describe=describe)


def test_an_allowed_move_passes_without_naming_the_object():
    asked: list[str] = []
    _ensure(Door(status="closed"), DoorStatus.LOCKED, asked)
    _ensure(Door(status=DoorStatus.OPEN), "closed", asked)
    assert asked == []  # the name (which may cost a query) is only built for a refusal


def test_a_refused_move_says_what_the_object_is_and_cannot_become():
    asked: list[str] = []
    with pytest.raises(InvalidTransition) as refused:
        _ensure(Door(status="open"), DoorStatus.LOCKED, asked)
    assert refused.value.message == "Door #7 is open and cannot become locked shut."
    assert refused.value.fields == {"status": ["Not allowed from open to locked."]}
    assert refused.value.code == "invalid_transition"
    assert refused.value.http_status == 409
    assert asked == ["asked"]


def test_staying_in_a_status_is_a_move_the_table_must_allow():
    with pytest.raises(InvalidTransition, match="^Door #7 is locked shut and cannot become locked shut.$"):
        _ensure(Door(status="locked"), "locked", [])
