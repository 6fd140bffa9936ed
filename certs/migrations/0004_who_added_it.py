# The organisational CA records who made it the way every stored thing does (audit.AddedBy):
# its columns are renamed, keeping every value.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('certs', '0003_trust_settings_row'),
    ]

    operations = [
        migrations.RenameField(model_name='orgca', old_name='created_by', new_name='added_by'),
        migrations.RenameField(model_name='orgca', old_name='created_by_name', new_name='added_by_name'),
        migrations.RenameField(model_name='orgca', old_name='created_at', new_name='added_at'),
    ]
