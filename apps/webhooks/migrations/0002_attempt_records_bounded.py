"""Attempts logged before webhooks were limited to public addresses keep at most the excerpt kept
today (RESPONSE_EXCERPT_CHARS of the body) and a class of error instead of the socket's text: what an
internal address answered, or how a network refused, is not left in the delivery log."""

from django.db import migrations
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Left, Length

EXCERPT_CHARS = 256  # constants.RESPONSE_EXCERPT_CHARS when this was written


def bound_attempt_records(apps, schema_editor):
    attempt_model = apps.get_model("webhooks", "WebhookAttempt")
    attempts = attempt_model.objects.using(schema_editor.connection.alias)
    attempts.annotate(body_length=Length("response_body")).filter(body_length__gt=EXCERPT_CHARS).update(
        response_body=Left("response_body", EXCERPT_CHARS)
    )
    attempts.exclude(error="").exclude(error__startswith="No response within").update(
        error=Case(
            When(error__icontains="refused", then=Value("Connection refused.")),
            When(error__icontains="timed out", then=Value("No response in time.")),
            When(Q(error__icontains="ssl") | Q(error__icontains="certificate"), then=Value("TLS error.")),
            default=Value("Connection failed."),
        )
    )


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial")]

    operations = [migrations.RunPython(bound_attempt_records, migrations.RunPython.noop)]
