from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("vault", "0003_rename_org_workspace")]

    operations = [migrations.RenameField("credential", "is_active", "enabled")]
