import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0004_subscriptions_to_first_versions")]

    operations = [
        migrations.AlterField(
            model_name='subscription',
            name='plan_version',
            field=models.ForeignKey(help_text='The prices this subscription is billed at (kept when the plan gets a new version).', on_delete=django.db.models.deletion.PROTECT, related_name='subscriptions', to='catalog.planversion'),
        ),
    ]
