import secrets

from django.db import migrations, models


def name_this_deployment(apps, schema_editor):
    Deployment = apps.get_model("restapi", "Deployment")
    Deployment.objects.get_or_create(pk=1, defaults={"deployment_id": secrets.token_hex(8)})


class Migration(migrations.Migration):
    dependencies = [
        ("restapi", "0003_normalise_live_usernames"),
    ]

    operations = [
        migrations.CreateModel(
            name="Deployment",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("deployment_id", models.CharField(max_length=32)),
            ],
            options={
                "db_table": "restapi_deployment",
            },
        ),
        migrations.RunPython(name_this_deployment, migrations.RunPython.noop),
    ]
