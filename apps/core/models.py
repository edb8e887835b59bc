from django.db import models


class TimeStampedModel(models.Model):
    """Row bookkeeping (wall-clock time of the write, not business time)."""

    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)

    class Meta:
        abstract = True
