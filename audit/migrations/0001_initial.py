# The audit log, moved here from the users app. The table exists already (users 0005 renamed it
# to audit_auditevent, keeping every row), so this migration only records the model's state.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('users', '0005_move_audit_log'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('actor_name', models.CharField(blank=True, max_length=200)),
                        ('action', models.CharField(db_index=True, max_length=64)),
                        ('summary', models.TextField()),
                        ('target_name', models.CharField(blank=True, max_length=150)),
                        ('detail', models.JSONField(blank=True, default=dict)),
                        ('source_address', models.GenericIPAddressField(blank=True, null=True)),
                        ('repeats', models.PositiveIntegerField(default=0)),
                        ('last_at', models.DateTimeField(blank=True, null=True)),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('target_user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='audit_events', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'ordering': ['-at', '-id'],
                        'indexes': [models.Index(fields=['-at', '-id'], name='audit_newest_first'), models.Index(fields=['actor_name'], name='audit_actor'), models.Index(fields=['target_name'], name='audit_target')],
                    },
                ),
            ],
        ),
    ]
