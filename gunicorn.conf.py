"""gunicorn settings, read from the working directory when the app server starts (`gunicorn
billing_portal.wsgi`). Command-line options still override them."""

import gc


def post_worker_init(worker) -> None:
    """Once the worker has loaded Django and the URL configuration, freeze those objects: they live as
    long as the worker, and a full garbage collection no longer walks them. Without this, a full
    collection every few dozen usage batches added about 120 ms to one request (measured, see
    docs/performance.md)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view now rather than on the first request
    gc.collect()
    gc.freeze()
