"""Every export option is done or refused: the baseplate merged into the exported mesh,
supports/clamps and unknown options refused (option_unsupported), STEP/IGES refused
(format_unsupported); exports record their processing time and last download, models count
their exports."""

from decimal import Decimal

import numpy as np
import pytest

from jobs.export_options import KNOWN_PARAMS
from jobs.models import Job, ModelExport
from tests.conftest import assert_error
from tests.jobs.model_helpers import SPHERE, body, export_via_api, import_model, load, run_all

pytestmark = pytest.mark.django_db


def _post_export(client, source, **params):
    return client.post(
        "/api/jobs",
        {"kind": "model_export", "params": {"source_job_id": str(source.pk), **params}},
        format="json",
    )


@pytest.mark.parametrize(
    ("fmt", "units", "thickness", "plate_in_units", "factor"),
    [
        ("stl", "mm", 3, 3.0, 1.0),
        ("ply", "cm", "2.5", 0.25, 0.1),
        ("glb", "m", 4, 0.004, 0.001),
    ],
)
def test_a_baseplate_is_merged_under_the_footprint_and_round_trips(
    user, auth_client, fmt, units, thickness, plate_in_units, factor
):
    # given the icosphere (radius 10 mm) imported from an STL in millimetres
    source = import_model(user)
    # when it is exported with a baseplate
    export = export_via_api(
        auth_client,
        source,
        format=fmt,
        units=units,
        source_units="mm",
        include_baseplate=True,
        baseplate_thickness_mm=thickness,
    )
    mesh = load(body(auth_client.get(f"/api/exports/{export.pk}/download")), fmt)
    # then the file holds the model and a plate of 12 triangles below it, as wide as its footprint
    assert len(mesh.faces) == len(SPHERE.faces) + 12
    low, high = SPHERE.bounds * factor
    assert np.allclose(mesh.bounds[0], [low[0], low[1], low[2] - plate_in_units], atol=1e-6)
    assert np.allclose(mesh.bounds[1], high, atol=1e-6)
    plate = mesh.split(only_watertight=False)
    assert len(plate) == 2
    # and the export records it
    export.refresh_from_db()
    assert export.include_baseplate is True
    assert export.baseplate_thickness_mm == Decimal(str(thickness))


def test_without_a_baseplate_nothing_is_added(user, auth_client):
    source = import_model(user)
    export = export_via_api(auth_client, source, format="stl")
    mesh = load(body(auth_client.get(f"/api/exports/{export.pk}/download")), "stl")
    assert len(mesh.faces) == len(SPHERE.faces)
    assert export.include_baseplate is False and export.baseplate_thickness_mm is None


@pytest.mark.parametrize(
    "params",
    [
        {"include_supports": True},
        {"include_clamps": True},
        {"include_supports": True, "include_clamps": True},
        {"support_density": 0.3},
        {"include_brim": True},
    ],
)
def test_options_that_are_not_done_are_refused_not_ignored(user, auth_client, params):
    source = import_model(user)
    response = _post_export(auth_client, source, format="stl", **params)
    assert_error(response, 400, "option_unsupported")
    assert not Job.objects.filter(kind__code="model_export").exists()


@pytest.mark.parametrize("fmt", ["step", "STEP", "stp", "iges", "igs"])
def test_step_and_iges_are_refused_as_unsupported_formats(user, auth_client, fmt):
    source = import_model(user)
    assert_error(_post_export(auth_client, source, format=fmt), 400, "format_unsupported")
    assert not ModelExport.objects.exists()


@pytest.mark.parametrize(
    "params",
    [
        {"include_baseplate": "yes"},
        {"include_baseplate": True, "baseplate_thickness_mm": 0},
        {"include_baseplate": True, "baseplate_thickness_mm": 1000},
        {"include_baseplate": True, "baseplate_thickness_mm": "NaN"},
        {"include_baseplate": True, "baseplate_thickness_mm": [2]},
        {"baseplate_thickness_mm": 2},
        {"include_supports": "no"},
    ],
)
def test_bad_baseplate_options_are_a_400(user, auth_client, params):
    source = import_model(user)
    assert_error(_post_export(auth_client, source, format="stl", **params), 400, "validation_error")
    assert not ModelExport.objects.exists()


# Each option with a value other than its default, and how to see it was honoured. An option
# added to KNOWN_PARAMS without a line here fails the walk below.
NON_DEFAULT = {
    "units": ({"format": "stl", "units": "cm", "source_units": "mm"}, lambda e, r: e.units == "cm"),
    "source_units": ({"format": "stl", "source_units": "in"}, lambda e, r: e.source_units == "in"),
    "scale": ({"format": "stl", "scale": 2}, lambda e, r: e.scale == 2),
    "include_normals": (
        {"format": "obj", "include_normals": False},
        lambda e, r: e.include_normals is False and b"\nvn " not in r,
    ),
    "include_colors": ({"format": "ply", "include_colors": False}, lambda e, r: e.include_colors is False),
    "include_textures": ({"format": "obj", "include_textures": False}, lambda e, r: not e.include_textures),
    "include_baseplate": (
        {"format": "stl", "include_baseplate": True},
        lambda e, r: e.include_baseplate and len(load(r, "stl").faces) == len(SPHERE.faces) + 12,
    ),
    "baseplate_thickness_mm": (
        {"format": "stl", "include_baseplate": True, "baseplate_thickness_mm": 7},
        lambda e, r: load(r, "stl").bounds[0][2] == pytest.approx(SPHERE.bounds[0][2] - 7),
    ),
    "include_supports": ({"format": "stl", "include_supports": True}, None),
    "include_clamps": ({"format": "stl", "include_clamps": True}, None),
}


def test_every_export_option_is_either_honoured_or_refused(user, auth_client):
    assert set(NON_DEFAULT) == set(KNOWN_PARAMS) - {"format", "source_job_id"}
    source = import_model(user)
    for name, (params, honoured) in NON_DEFAULT.items():
        response = _post_export(auth_client, source, **params)
        if honoured is None:
            assert_error(response, 400, "option_unsupported")
            continue
        assert response.status_code == 201, (name, response.content)
        assert run_all() == ["completed"], name
        export = ModelExport.objects.get(job_id=response.json()["id"])
        data = body(auth_client.get(f"/api/exports/{export.pk}/download"))
        assert honoured(export, data), name


def test_exports_record_processing_time_and_last_download_and_models_count_their_exports(user, auth_client):
    source = import_model(user)
    first = export_via_api(auth_client, source, format="stl")
    export_via_api(auth_client, source, format="obj")
    export_via_api(auth_client, source, format="ply", run=False)  # not done yet
    shown = auth_client.get(f"/api/exports/{first.pk}").json()
    assert shown["processing_time"] is not None and shown["processing_time"] >= 0
    assert shown["last_downloaded_at"] is None
    auth_client.get(f"/api/exports/{first.pk}/download")
    assert auth_client.get(f"/api/exports/{first.pk}").json()["last_downloaded_at"] is not None
    assert auth_client.get(f"/api/models/{source.pk}").json()["number_of_exports_done"] == 2
    listed = auth_client.get("/api/models").json()["results"]
    assert [m["number_of_exports_done"] for m in listed] == [2]
