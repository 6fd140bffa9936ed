# The audit log moves to the audit app. Its table is renamed, not recreated: every entry stays.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('users', '0004_audit_repeats'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable(name='auditevent', table='audit_auditevent'),
            ],
            state_operations=[
                migrations.DeleteModel(name='AuditEvent'),
            ],
        ),
    ]
