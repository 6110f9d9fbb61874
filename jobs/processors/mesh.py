"""3D model parsing and conversion with trimesh (the `model_import` / `model_export` kinds).

Pure functions over bytes: they know nothing about jobs or storage, so the processors that
call them stay thin and these stay easy to test on meshes generated in memory.
"""

import io
import logging

import numpy as np
import trimesh
from django.conf import settings
from trimesh.exchange.gltf import export_glb, export_gltf
from trimesh.exchange.obj import export_obj
from trimesh.exchange.ply import export_ply
from trimesh.exchange.threemf import export_3MF

from jobs.export_options import DEFAULT_UNITS, FIXED_UNITS, MM_PER_UNIT, ExportOptions, ExportOptionsError

logger = logging.getLogger(__name__)

FILE_TYPES = ("stl", "obj", "ply", "glb")  # what can be imported (and exported from)


class MeshError(Exception):
    """The file is not a readable mesh of the declared type."""


def load_mesh(data: bytes, file_type: str) -> trimesh.Trimesh:
    file_type = (file_type or "").lower().lstrip(".")
    if file_type not in FILE_TYPES:
        raise MeshError(f"Unsupported file type {file_type!r}; expected one of {', '.join(FILE_TYPES)}.")
    if not data:
        raise MeshError("The file is empty.")
    try:
        loaded = trimesh.load(io.BytesIO(data), file_type=file_type, force="mesh", process=True)
    except Exception as exc:  # trimesh raises many types (ValueError, struct.error, KeyError...)
        logger.info("mesh parse failed: %s", exc)
        raise MeshError(f"Could not parse the {file_type.upper()} file: {exc.__class__.__name__}.") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0 or len(loaded.vertices) == 0:
        raise MeshError(f"The {file_type.upper()} file contains no mesh geometry.")
    if len(loaded.faces) > settings.JOBS_MAX_MESH_FACES:
        raise MeshError(f"The mesh has more than {settings.JOBS_MAX_MESH_FACES} faces.")
    if not np.isfinite(loaded.vertices).all():
        raise MeshError("The mesh has non-finite vertex coordinates.")
    return loaded


def analyze_mesh(data: bytes, file_type: str) -> dict:
    """Measure a mesh: counts, bounds, size, volume and whether it is a valid solid.

    Raises MeshError when the bytes are not a mesh of `file_type`. A mesh that parses but is
    not a closed, consistently wound solid is returned with `is_valid` False and the reasons.
    """
    return measure_mesh(load_mesh(data, file_type))


def measure_mesh(mesh: trimesh.Trimesh) -> dict:
    """`analyze_mesh` of a mesh already loaded."""
    errors = []
    if not mesh.is_watertight:
        errors.append("Mesh is not watertight (it has holes or open edges).")
    if not mesh.is_winding_consistent:
        errors.append("Face winding is inconsistent.")
    if mesh.is_watertight and mesh.volume <= 0:
        errors.append("Mesh encloses no positive volume (normals may be inverted).")
    bounds = mesh.bounds
    return {
        "vertex_count": int(len(mesh.vertices)),
        "face_count": int(len(mesh.faces)),
        "bounding_box": {"min": bounds[0].round(6).tolist(), "max": bounds[1].round(6).tolist()},
        "dimensions": mesh.extents.round(6).tolist(),
        "volume": round(mesh.volume.item(), 6) if mesh.is_watertight else None,
        "is_valid": not errors,
        "validation_errors": errors,
    }


def _strip_visuals(mesh: trimesh.Trimesh, options: ExportOptions) -> None:
    kind = mesh.visual.kind
    if (kind in ("vertex", "face") and not options.include_colors) or (
        kind == "texture" and not options.include_textures
    ):
        mesh.visual = trimesh.visual.ColorVisuals(mesh=mesh)


def with_baseplate(mesh: trimesh.Trimesh, thickness: float) -> trimesh.Trimesh:
    """`mesh` and a solid plate `thickness` thick (in the mesh's units) merged into one mesh: the
    plate covers the footprint's bounding rectangle in X and Y, its top face on the lowest Z."""
    low, high = mesh.bounds
    extents = (high[0] - low[0], high[1] - low[1], thickness)
    plate = trimesh.creation.box(extents=extents)
    plate.apply_translation(((low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2] - thickness / 2))
    if mesh.visual.kind is not None:  # the plate takes the mesh's default look
        plate.visual = trimesh.visual.ColorVisuals(mesh=plate)
    return trimesh.util.concatenate([mesh, plate])


def export_mesh(mesh: trimesh.Trimesh, options: ExportOptions) -> bytes:
    """The bytes of `mesh` (changed in place: scaled, visuals stripped) in `options.format`.
    Raises MeshError when the scaled geometry is not finite."""
    factor = options.factor
    if factor != 1:
        mesh.apply_scale(float(factor))
        if not np.isfinite(mesh.vertices).all():
            raise MeshError("The scaled mesh has non-finite vertex coordinates.")
    _strip_visuals(mesh, options)
    if options.include_baseplate:
        mesh = with_baseplate(mesh, float(options.baseplate_thickness_mm / MM_PER_UNIT[options.units]))
    normals = options.include_normals
    fmt = options.format
    if fmt == "stl":
        exported = mesh.export(file_type="stl")
    elif fmt == "obj":
        exported = export_obj(
            mesh,
            include_normals=normals,
            include_color=options.include_colors,
            include_texture=options.include_textures,
        )
    elif fmt == "ply":
        exported = export_ply(mesh, vertex_normal=normals)
    elif fmt == "glb":
        exported = export_glb(trimesh.Scene(mesh), include_normals=normals)
    elif fmt == "gltf":  # one self-contained file: the buffers embedded as data URIs
        exported = export_gltf(trimesh.Scene(mesh), include_normals=normals, embed_buffers=True)["model.gltf"]
    else:
        exported = export_3MF(mesh)
    return exported.encode() if isinstance(exported, str) else bytes(exported)


def convert_mesh(
    data: bytes, source_type: str, target_format: str, options: ExportOptions | None = None
) -> bytes:
    """Convert a mesh to `target_format`, one of EXPORT_FORMATS (with `options`, or that
    format's defaults). Raises MeshError on bad input or options."""
    target_format = (target_format or "").lower().lstrip(".")
    try:
        if options is None:
            units = FIXED_UNITS.get(target_format, DEFAULT_UNITS)
            options = ExportOptions(format=target_format, units=units, source_units=units)
    except ExportOptionsError as exc:
        raise MeshError(str(exc)) from None
    if options.format != target_format:
        raise MeshError(f"The options are for {options.format}, not {target_format}.")
    return export_mesh(load_mesh(data, source_type), options)


THUMBNAIL_PIXELS = 256
# Faces drawn at most: a larger mesh is drawn from an even sample of its faces (a thumbnail
# shows the shape; matplotlib's cost grows with the polygons it sorts and fills).
THUMBNAIL_MAX_FACES = 20_000
_LIGHT = np.array([0.4, -0.5, 0.77])


def render_thumbnail(mesh: trimesh.Trimesh, *, pixels: int = THUMBNAIL_PIXELS) -> bytes:
    """A PNG of the mesh seen from above and in front, shaded by a fixed light, on the CPU
    (matplotlib's Agg canvas: no display, no GPU, no global pyplot state, safe in threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    faces = mesh.faces
    if len(faces) > THUMBNAIL_MAX_FACES:
        faces = faces[:: -(-len(faces) // THUMBNAIL_MAX_FACES)]
    triangles = mesh.vertices[faces]
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    shade = 0.35 + 0.65 * np.abs(normals @ (_LIGHT / np.linalg.norm(_LIGHT)))
    colors = np.column_stack([0.25 * shade, 0.5 * shade, 0.85 * shade, np.ones_like(shade)])

    figure = Figure(figsize=(1, 1), dpi=pixels)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1), projection="3d")
    axes.add_collection3d(Poly3DCollection(triangles, facecolors=colors, edgecolors="none"))
    low, high = mesh.bounds
    center, half = (low + high) / 2, max(float((high - low).max()) / 2, 1e-9)
    axes.set_xlim(center[0] - half, center[0] + half)
    axes.set_ylim(center[1] - half, center[1] + half)
    axes.set_zlim(center[2] - half, center[2] + half)
    axes.set_box_aspect((1, 1, 1))
    axes.view_init(elev=25, azim=-60)
    axes.set_axis_off()
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()
