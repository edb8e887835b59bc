from django.db import migrations


def subscriptions_to_first_versions(apps, schema_editor):
    Subscription = apps.get_model("subscriptions", "Subscription")
    PlanVersion = apps.get_model("catalog", "PlanVersion")
    for version in PlanVersion.objects.filter(number=1):
        Subscription.objects.filter(plan_id=version.plan_id).update(plan_version=version)


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0003_plan_version"), ("catalog", "0004_plan_prices_to_versions")]

    operations = [migrations.RunPython(subscriptions_to_first_versions, migrations.RunPython.noop)]
