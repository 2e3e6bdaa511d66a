"""Static files in production (issue 6): `collectstatic` with the manifest storage of
docs/deployment.md writes hashed names, pages link to them, and whitenoise serves them
with far-future cache headers; the plain names are not served from the apps' folders."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_STORAGE = "whitenoise.storage.CompressedManifestStaticFilesStorage"


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """`manage.py collectstatic` run as in a release, with the production variables."""
    static_root = tmp_path_factory.mktemp("staticfiles")
    env = {
        **os.environ,
        "STATIC_ROOT": str(static_root),
        "STATICFILES_BACKEND": MANIFEST_STORAGE,
        "WHITENOISE_USE_FINDERS": "false",
        "DEBUG": "false",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    return static_root


@pytest.fixture
def production_static(collected, settings):
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": MANIFEST_STORAGE},
    }
    with override_settings(
        STATIC_ROOT=collected,
        STORAGES=storages,
        WHITENOISE_USE_FINDERS=False,
        WHITENOISE_AUTOREFRESH=False,
        DEBUG=False,
    ):
        yield collected


def test_collectstatic_writes_hashed_and_compressed_copies(collected):
    manifest = (collected / "staticfiles.json").read_text()
    hashed = re.search(r'"css/app\.css": "(css/app\.[0-9a-f]{12}\.css)"', manifest)
    assert hashed, manifest[:500]
    assert (collected / hashed.group(1)).exists()
    assert (collected / f"{hashed.group(1)}.gz").exists()


@pytest.mark.django_db
def test_pages_link_hashed_names_that_whitenoise_serves_for_a_year(production_static):
    page = Client().get("/accounts/login/")
    assert page.status_code == 200
    css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page.text)
    js = re.search(r'src="(/static/js/app\.[0-9a-f]{12}\.js)"', page.text)
    assert css and js, page.text[:1000]

    for path in (css.group(1), js.group(1)):
        response = Client().get(path, headers={"accept-encoding": "gzip"})
        assert response.status_code == 200
        assert "max-age=315360000" in response["Cache-Control"]
        assert "immutable" in response["Cache-Control"]
        assert response["Content-Encoding"] == "gzip"


@pytest.mark.django_db
def test_unhashed_name_is_served_briefly_and_an_unknown_file_is_404(production_static):
    plain = Client().get("/static/css/app.css")
    assert plain.status_code == 200
    assert "immutable" not in plain["Cache-Control"]  # may change with the next release
    assert Client().get("/static/css/nothing.css").status_code == 404
