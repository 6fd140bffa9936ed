# Renewals: a holding-tank entry knows the profile entry it looks like the renewal of; a profile
# entry replaced by a renewal has the moment sign-on stops reading it; certificates are found by
# their key; the org can accept renewals automatically (off) and let users renew what the org CA
# issued them (off); what owners were told of their certificates' expiry is recorded, so nobody
# is told twice for one threshold; and administrators approve first enrolments over EST.

import hashlib

import django.db.models.deletion
import django.utils.timezone
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import migrations, models


def key_hashes(apps, schema_editor):
    """Every stored certificate's key, hashed as certs.x509.public_key_sha256 does."""
    Certificate = apps.get_model("certs", "Certificate")
    for row in Certificate.objects.only("pk", "der").iterator(chunk_size=500):
        try:
            cert = x509.load_der_x509_certificate(bytes(row.der))
            spki = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except (ValueError, UnsupportedAlgorithm):
            continue
        Certificate.objects.filter(pk=row.pk).update(key_sha256=hashlib.sha256(spki).hexdigest().upper())


class Migration(migrations.Migration):

    dependencies = [
        ('certs', '0007_crl_source_url'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='certificate',
            name='key_sha256',
            field=models.CharField(blank=True, db_index=True, max_length=64),
        ),
        migrations.AddField(
            model_name='credential',
            name='remove_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='credential',
            name='replaced_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='replaces', to='certs.credential'),
        ),
        migrations.AddField(
            model_name='tankentry',
            name='renewal_of',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='renewals', to='certs.credential'),
        ),
        migrations.AddField(
            model_name='trustsettings',
            name='auto_accept_renewals',
            field=models.BooleanField(default=False, help_text="Accept renewals automatically: only while the old certificate is valid and its renewal's issuer is an approved CA"),
        ),
        migrations.AddField(
            model_name='trustsettings',
            name='self_renewal',
            field=models.CharField(choices=[('off', 'Off: administrators renew certificates'), ('approval', 'On request: the renewal waits in the holding tank for an administrator'), ('automatic', 'Automatic: the renewal replaces the old certificate at once')], default='off', help_text='Whether users renew certificates the org CA issued them, on their own page', max_length=16),
        ),
        migrations.CreateModel(
            name='ExpiryNotice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('days', models.PositiveSmallIntegerField()),
                ('sent_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('certificate', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='expiry_notices', to='certs.certificate')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='expiry_notices', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('user', 'certificate', 'days'), name='one_expiry_notice_per_threshold')],
            },
        ),
        migrations.CreateModel(
            name='Enrolment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('added_by_name', models.CharField(blank=True, max_length=200)),
                ('added_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('secret_sha256', models.CharField(max_length=64, unique=True)),
                ('cn', models.CharField(max_length=64)),
                ('days', models.PositiveIntegerField(default=365)),
                ('expires_at', models.DateTimeField()),
                ('used_at', models.DateTimeField(blank=True, null=True)),
                ('added_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('certificate', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='certs.certificate')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='enrolments', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.RunPython(key_hashes, migrations.RunPython.noop),
    ]
