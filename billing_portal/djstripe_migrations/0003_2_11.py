# dj-stripe's migration of the same name: its changes are in 0001_initial here (see __init__.py).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("djstripe", "0002_2_10")]
    operations = []
