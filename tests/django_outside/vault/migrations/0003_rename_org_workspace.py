from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("vault", "0002_credential_created_by")]

    operations = [migrations.RenameModel("Org", "Workspace")]
