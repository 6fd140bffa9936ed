from django.db import migrations


def create_row(apps, schema_editor):
    TrustSettings = apps.get_model("certs", "TrustSettings")
    TrustSettings.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    """The single row of org-level trust settings, which sign-on reads on every request."""

    dependencies = [("certs", "0002_longer_name_keys")]

    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
