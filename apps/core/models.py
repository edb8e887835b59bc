from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    """Row bookkeeping (wall-clock time of the write, not business time)."""

    created_at = models.DateTimeField(auto_now_add=True, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, editable=False, verbose_name=_("updated at"))

    class Meta:
        abstract = True


class DomainEvent(models.Model):
    """An append-only record of what happened to one object, for its history and the audit trail:
    when (business time, from the clock), who did it (a signed-in user, or none for the product
    itself) and the details.

    A concrete event model adds the foreign key to its object and `type`, a CharField with its app's
    event choices (the choices differ per app, so `type` is declared there)."""

    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    data = models.JSONField(default=dict, blank=True, verbose_name=_("data"))

    class Meta:
        abstract = True
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return gettext("%(event)s at %(at)s") % {
            "event": self.get_type_display(),  # type: ignore[attr-defined]
            "at": f"{self.occurred_at:%Y-%m-%d %H:%M}",
        }


class IdempotencyRecord(models.Model):
    """The stored outcome of a mutating API request sent with an `Idempotency-Key` header.

    One row per (user, key): a replay returns the stored response instead of doing the work again;
    the same key on a different request (other method, path or body) is refused.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    key = models.CharField(max_length=255, verbose_name=_("key"))
    request_fingerprint = models.CharField(
        max_length=64, help_text=_("SHA-256 of method, path and body."), verbose_name=_("request fingerprint")
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("response status"))
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder, verbose_name=_("response body"))
    created_at = models.DateTimeField(auto_now_add=True, editable=False, verbose_name=_("created at"))
    completed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("completed at"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_record_user_key_unique"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")

    def __str__(self) -> str:
        return f"{self.key} ({self.user_id})"
