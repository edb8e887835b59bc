"""The one guard over a status transition table (STYLE.md, State): each app keeps its table of allowed
next statuses in its `constants.py` and names the object in its own words; this checks the move."""

from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from django.db import models
from django.utils.translation import gettext

from .errors import InvalidTransition


class HasStatus(Protocol):
    status: str


def ensure_transition(
    obj: HasStatus,
    target: str,
    *,
    transitions: Mapping[str, Collection[str]],
    status_enum: type[models.TextChoices],
    describe: Callable[[], str],
) -> None:
    """Raise `InvalidTransition` (with a field error on `status`) unless `obj` may go from its status
    to `target`. `describe` names the object for the message ("Invoice INV-0001"); it is called only
    when the move is refused, so a name that needs a query costs nothing on the way through."""
    if target not in transitions[obj.status]:
        raise InvalidTransition(
            gettext("%(name)s is %(status)s and cannot become %(target)s.")
            % {
                "name": describe(),
                "status": status_enum(obj.status).label.lower(),
                "target": status_enum(target).label.lower(),
            },
            fields={
                "status": [
                    gettext("Not allowed from %(status)s to %(target)s.") % {"status": obj.status, "target": target}
                ]
            },
        )
