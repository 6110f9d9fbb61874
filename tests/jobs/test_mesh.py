import pytest
import trimesh

from jobs.processors.mesh import FILE_TYPES, MeshError, analyze_mesh, convert_mesh


def _unit_cube_bytes(file_type: str) -> bytes:
    cube = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    exported = cube.export(file_type=file_type)
    return exported.encode() if isinstance(exported, str) else exported


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_unit_cube_is_measured_in_every_format(file_type):
    report = analyze_mesh(_unit_cube_bytes(file_type), file_type)

    assert report["vertex_count"] == 8
    assert report["face_count"] == 12
    assert report["volume"] == pytest.approx(1.0)
    assert report["dimensions"] == pytest.approx([1.0, 1.0, 1.0])
    assert report["bounding_box"]["min"] == pytest.approx([-0.5, -0.5, -0.5])
    assert report["bounding_box"]["max"] == pytest.approx([0.5, 0.5, 0.5])
    assert report["is_valid"] is True
    assert report["validation_errors"] == []


def test_open_mesh_parses_but_is_reported_invalid():
    cube = trimesh.creation.box(extents=(2.0, 1.0, 1.0))
    open_box = trimesh.Trimesh(vertices=cube.vertices, faces=cube.faces[:-2], process=False)

    report = analyze_mesh(open_box.export(file_type="stl"), "stl")

    assert report["is_valid"] is False
    assert report["volume"] is None
    assert any("watertight" in error for error in report["validation_errors"])
    assert report["dimensions"] == pytest.approx([2.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "file_type, data",
    [
        ("stl", b"solid broken\nfacet normal nonsense\nendsolid"),
        ("stl", b"\x00" * 84 + b"\xff" * 7),
        ("obj", b"this is not an obj file at all"),
        ("ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 999\nend_header\n\x01\x02"),
        ("glb", b"glTF\x02\x00\x00\x00garbage"),
        ("stl", b""),
    ],
)
def test_corrupt_files_raise_a_clear_mesh_error(file_type, data):
    with pytest.raises(MeshError) as caught:
        analyze_mesh(data, file_type)
    assert str(caught.value)


def test_unknown_file_type_is_refused():
    with pytest.raises(MeshError, match="Unsupported file type"):
        analyze_mesh(_unit_cube_bytes("stl"), "fbx")


@pytest.mark.parametrize("target", FILE_TYPES)
def test_conversion_round_trips_the_cube(target):
    converted = convert_mesh(_unit_cube_bytes("stl"), "stl", target)

    report = analyze_mesh(converted, target)
    assert (report["vertex_count"], report["face_count"]) == (8, 12)
    assert report["volume"] == pytest.approx(1.0)


def test_conversion_to_unknown_format_is_refused():
    with pytest.raises(MeshError, match="Unsupported target format"):
        convert_mesh(_unit_cube_bytes("stl"), "stl", "fbx")
