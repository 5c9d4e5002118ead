from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("vault", "0007_system_keys")]

    operations = [
        migrations.AlterField("credential", "id", models.BigAutoField(primary_key=True, serialize=False)),
    ]
