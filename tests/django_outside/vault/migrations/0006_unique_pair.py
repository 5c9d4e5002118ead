from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("vault", "0005_credential_updated_at")]

    operations = [migrations.AlterUniqueTogether("credential", {("account", "integration_type")})]
