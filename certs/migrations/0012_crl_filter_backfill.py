"""Serial filters for the CRLs stored before filters existed: without one, every lookup in such a
CRL queries the database until the CRL is refreshed.

A frozen copy of what ``certs.crls.build_missing_filters`` did at this release, so that later
changes to the app's code cannot change this migration."""

from django.db import migrations

BATCH = 10_000


def build(apps, schema_editor):
    from certs import serial_filter

    Crl = apps.get_model("certs", "Crl")
    RevokedSerial = apps.get_model("certs", "RevokedSerial")
    for row in Crl.objects.only("id", "entry_count", "serial_filter").order_by("id"):
        if serial_filter.load(row.serial_filter) is not None:
            continue
        builder = serial_filter.Builder(row.entry_count)
        count = 0
        for serial in RevokedSerial.objects.filter(crl_id=row.pk).values_list("serial", flat=True).iterator(BATCH):
            builder.add(serial)
            count += 1
        # A filter that missed a serial would let that certificate through: only a whole CRL's.
        if count == row.entry_count:
            Crl.objects.filter(pk=row.pk).update(serial_filter=builder.dump())


class Migration(migrations.Migration):
    dependencies = [
        ("certs", "0011_crl_filter"),
    ]

    operations = [
        migrations.RunPython(build, migrations.RunPython.noop),
    ]
