from django.db import migrations


def plan_prices_to_versions(apps, schema_editor):
    """Each plan's flat fees become version 1: one recurring per-unit "Subscription fee" charge priced
    in the same currencies (the fee × the subscription's quantity, as before)."""
    Plan = apps.get_model("catalog", "Plan")
    PlanPrice = apps.get_model("catalog", "PlanPrice")
    PlanVersion = apps.get_model("catalog", "PlanVersion")
    Charge = apps.get_model("catalog", "Charge")
    Price = apps.get_model("catalog", "Price")
    for plan in Plan.objects.all():
        version = PlanVersion.objects.create(plan=plan, number=1, notes="First version.")
        charge = Charge.objects.create(
            plan_version=version, position=1, kind="recurring", name="Subscription fee", price_model="per_unit"
        )
        for plan_price in PlanPrice.objects.filter(plan=plan):
            amount = plan_price.amount
            amount = getattr(amount, "amount", amount)  # a Money in historical models
            Price.objects.create(charge=charge, currency=plan_price.amount_currency, amount=amount)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_plan_versions_charges_prices")]

    operations = [migrations.RunPython(plan_prices_to_versions, migrations.RunPython.noop)]
