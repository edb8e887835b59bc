from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_plan_prices_to_versions"), ("subscriptions", "0004_subscriptions_to_first_versions")]

    operations = [migrations.DeleteModel(name="PlanPrice")]
