"""The options of a model export, free of trimesh so the web process can
check them without loading it; jobs.processors.mesh applies them."""

from dataclasses import dataclass
from decimal import Decimal

EXPORT_FORMATS = ("stl", "obj", "ply", "glb", "gltf", "3mf")
MM_PER_UNIT = {
    "mm": Decimal(1),
    "cm": Decimal(10),
    "m": Decimal(1000),
    "in": Decimal("25.4"),
    "ft": Decimal("304.8"),
}
# Formats whose specification fixes the length unit: glTF is metres; trimesh writes 3MF files
# that declare millimetres. Their coordinates must be in that unit, whatever is asked.
FIXED_UNITS = {"glb": "m", "gltf": "m", "3mf": "mm"}
DEFAULT_UNITS = "mm"
MIN_SCALE = Decimal("0.000001")  # the scale is recorded with six decimal places
MAX_SCALE = Decimal(1_000_000)


# Baseplate thickness in millimetres, whatever the export's units.
DEFAULT_BASEPLATE_MM = Decimal(2)
MIN_BASEPLATE_MM = Decimal("0.1")
MAX_BASEPLATE_MM = Decimal(100)
# CAD formats asked for by name: no kept CAD kernel on PyPI writes them from a mesh here.
CAD_FORMATS = ("step", "stp", "iges", "igs")
# Fixture options no kept library generates: asking for one is refused, never ignored.
UNSUPPORTED_OPTIONS = ("include_supports", "include_clamps")
KNOWN_PARAMS = (
    "format",
    "source_job_id",
    "units",
    "source_units",
    "scale",
    "include_normals",
    "include_colors",
    "include_textures",
    "include_baseplate",
    "baseplate_thickness_mm",
    *UNSUPPORTED_OPTIONS,
)


class ExportOptionsError(ValueError):
    """An export option is not allowed (400 `code`)."""

    code = "validation_error"


class ExportOptionUnsupported(ExportOptionsError):
    """An option this service does not do (supports, clamps, or a key it does not know)."""

    code = "option_unsupported"


class ExportFormatUnsupported(ExportOptionsError):
    """A format this service does not write (STEP, IGES)."""

    code = "format_unsupported"


@dataclass(frozen=True)
class ExportOptions:
    """How a model is exported, as recorded on its ModelExport row.

    - `units`: the unit of the exported coordinates; `source_units`: the unit the stored model's
      coordinates are taken to be in (STL, OBJ and PLY carry none). The geometry is multiplied
      by `scale` × (mm per source unit ÷ mm per unit): with the defaults (source = target, scale
      1) the coordinates are exported unchanged. glTF/GLB are in metres and 3MF in millimetres
      by their specifications (FIXED_UNITS).
    - `include_normals`: vertex normals in OBJ, PLY, GLB and glTF (STL always stores one normal
      per facet and 3MF none: the flag cannot change those formats).
    - `include_colors` / `include_textures`: keep vertex or face colours / texture coordinates
      and materials; off replaces them with trimesh's default material. STL has neither.
    - `include_baseplate`: a solid plate `baseplate_thickness_mm` thick (in millimetres whatever
      the units) under the model's footprint (its bounding rectangle in X and Y), its top face
      on the model's lowest Z, merged into the exported mesh.
    - `include_supports` / `include_clamps`: refused when true (400 `option_unsupported`); no
      kept library generates them. Any other key is refused the same way.
    """

    format: str
    units: str = DEFAULT_UNITS
    source_units: str = DEFAULT_UNITS
    scale: Decimal = Decimal(1)
    include_normals: bool = True
    include_colors: bool = True
    include_textures: bool = True
    include_baseplate: bool = False
    baseplate_thickness_mm: Decimal = DEFAULT_BASEPLATE_MM

    def __post_init__(self):
        if self.format not in EXPORT_FORMATS:
            raise ExportOptionsError(f"Unsupported target format {self.format!r}.")
        if not all(isinstance(u, str) and u in MM_PER_UNIT for u in (self.units, self.source_units)):
            raise ExportOptionsError(f"Units must be one of {', '.join(MM_PER_UNIT)}.")
        if FIXED_UNITS.get(self.format, self.units) != self.units:
            raise ExportOptionsError(f"{self.format.upper()} coordinates are in {FIXED_UNITS[self.format]}.")
        if not (MIN_SCALE <= Decimal(self.scale) <= MAX_SCALE):
            raise ExportOptionsError(f"The scale must be between {MIN_SCALE} and {MAX_SCALE}.")
        if not (MIN_BASEPLATE_MM <= Decimal(self.baseplate_thickness_mm) <= MAX_BASEPLATE_MM):
            raise ExportOptionsError(
                f"baseplate_thickness_mm must be between {MIN_BASEPLATE_MM} and {MAX_BASEPLATE_MM}."
            )

    def as_params(self) -> dict:
        """The options as JSON job params (the scale as a decimal string)."""
        params = {
            "format": self.format,
            "units": self.units,
            "source_units": self.source_units,
            "scale": str(self.scale),
            "include_normals": self.include_normals,
            "include_colors": self.include_colors,
            "include_textures": self.include_textures,
            "include_baseplate": self.include_baseplate,
        }
        if self.include_baseplate:
            params["baseplate_thickness_mm"] = str(self.baseplate_thickness_mm)
        return params

    @property
    def factor(self) -> Decimal:
        return Decimal(self.scale) * MM_PER_UNIT[self.source_units] / MM_PER_UNIT[self.units]


def export_options(params: dict) -> ExportOptions:
    """The options of an export job's params, with each default applied (units: the format's
    fixed unit or millimetres; source_units: the same as units; scale 1; every include_* on).
    Raises ExportOptionsError for a value that is not allowed, ExportOptionUnsupported for an
    option this service does not do, ExportFormatUnsupported for STEP/IGES."""
    unknown = sorted(str(key) for key in params if key not in KNOWN_PARAMS)
    if unknown:
        raise ExportOptionUnsupported(f"Unknown export option(s): {', '.join(unknown[:10])}.")
    for name in UNSUPPORTED_OPTIONS:
        value = params.get(name, False)
        if not isinstance(value, bool):
            raise ExportOptionsError(f"{name} must be true or false.")
        if value:
            raise ExportOptionUnsupported(f"{name} is not supported: no supports or clamps are generated.")
    fmt = str(params.get("format") or "").lower()
    if fmt in CAD_FORMATS:
        raise ExportFormatUnsupported(
            f"{fmt.upper()} export is not supported; export STL, OBJ, PLY, GLB, glTF or 3MF."
        )
    units = params.get("units") or FIXED_UNITS.get(fmt, DEFAULT_UNITS)
    raw = params.get("scale", 1)
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ExportOptionsError("The scale must be a number.")
    try:
        scale = Decimal(str(raw))
        if not (MIN_SCALE <= scale <= MAX_SCALE):
            raise ExportOptionsError(f"The scale must be between {MIN_SCALE} and {MAX_SCALE}.")
        scale = scale.quantize(MIN_SCALE)
    except ArithmeticError:
        raise ExportOptionsError("The scale must be a number.") from None
    flags = {}
    for name, default in (
        ("include_normals", True),
        ("include_colors", True),
        ("include_textures", True),
        ("include_baseplate", False),
    ):
        value = params.get(name, default)
        if not isinstance(value, bool):
            raise ExportOptionsError(f"{name} must be true or false.")
        flags[name] = value
    thickness = _decimal(params.get("baseplate_thickness_mm", DEFAULT_BASEPLATE_MM), "baseplate_thickness_mm")
    if "baseplate_thickness_mm" in params and not flags["include_baseplate"]:
        raise ExportOptionsError("baseplate_thickness_mm needs include_baseplate: true.")
    return ExportOptions(
        format=fmt,
        units=units,
        source_units=params.get("source_units") or units,
        scale=scale,
        baseplate_thickness_mm=thickness,
        **flags,
    )


def _decimal(raw, name: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise ExportOptionsError(f"{name} must be a number.")
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        raise ExportOptionsError(f"{name} must be a number.") from None
    if not value.is_finite():
        raise ExportOptionsError(f"{name} must be a number.")
    if not (MIN_BASEPLATE_MM <= value <= MAX_BASEPLATE_MM):
        raise ExportOptionsError(f"{name} must be between {MIN_BASEPLATE_MM} and {MAX_BASEPLATE_MM}.")
    return value.quantize(Decimal("0.001"))
