"""A data migration: the system workspace gets its runware key, and its
openai model is moved on, written by the ORM inside the migration."""
from django.db import migrations


def forwards(apps, schema_editor):
    Workspace = apps.get_model("vault", "Workspace")
    Credential = apps.get_model("vault", "Credential")
    system = Workspace.objects.filter(slug="aws-admin").first()
    if system is None:
        return
    Credential.objects.update_or_create(
        account=system, integration_type="runware",
        defaults={"config": {"apiKey": "rw-datamigration-0123456789", "model": "runware:100@1"}, "enabled": True},
    )
    for c in Credential.objects.filter(account=system, integration_type="openai"):
        c.config = {**(c.config if isinstance(c.config, dict) else {}), "model": "gpt-4.1"}
        c.save()


def backwards(apps, schema_editor):
    Credential = apps.get_model("vault", "Credential")
    Credential.objects.filter(account__slug="aws-admin", integration_type="runware").delete()


class Migration(migrations.Migration):
    dependencies = [("vault", "0006_unique_pair")]

    operations = [migrations.RunPython(forwards, backwards)]
