from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("vault", "0008_bigint_ids")]

    operations = [
        migrations.AlterField("credential", "integration_type", models.CharField(max_length=100, db_index=True)),
    ]
