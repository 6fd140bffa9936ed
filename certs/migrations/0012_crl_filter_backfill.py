"""Serial filters for the CRLs stored before filters existed: without one, every lookup in such a
CRL queries the database until the CRL is refreshed."""

from django.db import migrations


def build(apps, schema_editor):
    from certs.crls import build_missing_filters

    build_missing_filters(apps.get_model("certs", "Crl"), apps.get_model("certs", "RevokedSerial"))


class Migration(migrations.Migration):
    dependencies = [
        ("certs", "0011_crl_filter"),
    ]

    operations = [
        migrations.RunPython(build, migrations.RunPython.noop),
    ]
