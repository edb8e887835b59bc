"""Handing work to Celery after a commit, when the broker may be down.

The work's rows are already committed when on-commit callbacks queue their tasks: a broker that is down
must not turn the request (or the billing run) that committed them into an error. `enqueue` logs what
could not be queued and says so; the periodic sweeps pick such work up again (missing PDFs, dunning,
reports refresh).
"""

import logging
from typing import Any

from kombu.exceptions import OperationalError as BrokerUnavailable

logger = logging.getLogger(__name__)


def enqueue(task: Any, *args: Any, **kwargs: Any) -> bool:
    """`task.delay(*args, **kwargs)`; False (and logged) when the broker cannot be reached."""
    try:
        task.delay(*args, **kwargs)
    except BrokerUnavailable:
        logger.exception("could not queue %s%s: the broker is unavailable", task.name, args)
        return False
    return True
