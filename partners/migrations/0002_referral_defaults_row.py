from django.db import migrations


def create_defaults(apps, schema_editor):
    ReferralDefaults = apps.get_model("partners", "ReferralDefaults")
    ReferralDefaults.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("partners", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
