"""Gapless invoice and credit note numbers.

Each series has one counter row. Finalization locks that row (SELECT … FOR UPDATE), increments it and
writes the number in the same transaction, so a rolled-back finalization gives its number back and two
concurrent ones wait for each other: no gap, no duplicate. Never Max()+1.
"""

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from ..models import InvoiceNumberSequence


def _series_key(*, prefix: str, number_format: str, issued_at: datetime) -> str:
    if "{year}" in number_format:
        return f"{prefix}-{issued_at:%Y}"
    return prefix


def _number_allocate(*, prefix: str, number_format: str, issued_at: datetime) -> str:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("document numbers are allocated inside the issuing transaction")
    sequence = _lock_sequence(_series_key(prefix=prefix, number_format=number_format, issued_at=issued_at))
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    return number_format.format(prefix=prefix, year=issued_at.year, sequence=sequence.last_value)


def invoice_number_series_key(*, issued_at: datetime) -> str:
    return _series_key(
        prefix=settings.INVOICE_NUMBER_PREFIX, number_format=settings.INVOICE_NUMBER_FORMAT, issued_at=issued_at
    )


def invoice_number_allocate(*, issued_at: datetime) -> str:
    """Take the next number of the series for `issued_at`. Must run inside the finalizing transaction."""
    return _number_allocate(
        prefix=settings.INVOICE_NUMBER_PREFIX, number_format=settings.INVOICE_NUMBER_FORMAT, issued_at=issued_at
    )


def credit_note_number_allocate(*, issued_at: datetime) -> str:
    """The next credit note number (`CN-2026-000001`): a series of its own, allocated the same way."""
    return _number_allocate(
        prefix=settings.CREDIT_NOTE_NUMBER_PREFIX,
        number_format=settings.CREDIT_NOTE_NUMBER_FORMAT,
        issued_at=issued_at,
    )


def invoice_numbers_allocate(*, issued_at: datetime, count: int) -> list[str]:
    """Take the next `count` numbers of the series at once (the billing run finalizing a chunk): one
    locked counter update, in the finalizing transaction, so a rollback gives them all back."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("invoice numbers are allocated inside the finalization transaction")
    if count <= 0:
        return []
    key = invoice_number_series_key(issued_at=issued_at)
    sequence = _lock_sequence(key)
    first = sequence.last_value + 1
    sequence.last_value += count
    sequence.save(update_fields=["last_value"])
    return [
        settings.INVOICE_NUMBER_FORMAT.format(prefix=settings.INVOICE_NUMBER_PREFIX, year=issued_at.year, sequence=n)
        for n in range(first, first + count)
    ]


def _lock_sequence(key: str) -> InvoiceNumberSequence:
    sequence = InvoiceNumberSequence.objects.select_for_update().filter(key=key).first()
    if sequence is not None:
        return sequence
    # First number of a series: create the row; if another transaction created it first, lock theirs.
    try:
        with transaction.atomic():
            InvoiceNumberSequence.objects.create(key=key, last_value=0)
    except IntegrityError:
        pass
    return InvoiceNumberSequence.objects.select_for_update().get(key=key)
