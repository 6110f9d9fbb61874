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


class ExportOptionsError(ValueError):
    """An export option is not allowed."""


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
    """

    format: str
    units: str = DEFAULT_UNITS
    source_units: str = DEFAULT_UNITS
    scale: Decimal = Decimal(1)
    include_normals: bool = True
    include_colors: bool = True
    include_textures: bool = True

    def __post_init__(self):
        if self.format not in EXPORT_FORMATS:
            raise ExportOptionsError(f"Unsupported target format {self.format!r}.")
        if not all(isinstance(u, str) and u in MM_PER_UNIT for u in (self.units, self.source_units)):
            raise ExportOptionsError(f"Units must be one of {', '.join(MM_PER_UNIT)}.")
        if FIXED_UNITS.get(self.format, self.units) != self.units:
            raise ExportOptionsError(f"{self.format.upper()} coordinates are in {FIXED_UNITS[self.format]}.")
        if not (MIN_SCALE <= Decimal(self.scale) <= MAX_SCALE):
            raise ExportOptionsError(f"The scale must be between {MIN_SCALE} and {MAX_SCALE}.")

    def as_params(self) -> dict:
        """The options as JSON job params (the scale as a decimal string)."""
        return {
            "format": self.format,
            "units": self.units,
            "source_units": self.source_units,
            "scale": str(self.scale),
            "include_normals": self.include_normals,
            "include_colors": self.include_colors,
            "include_textures": self.include_textures,
        }

    @property
    def factor(self) -> Decimal:
        return Decimal(self.scale) * MM_PER_UNIT[self.source_units] / MM_PER_UNIT[self.units]


def export_options(params: dict) -> ExportOptions:
    """The options of an export job's params, with each default applied (units: the format's
    fixed unit or millimetres; source_units: the same as units; scale 1; every include_* on).
    Raises ExportOptionsError for a value that is not allowed."""
    fmt = str(params.get("format") or "").lower()
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
    for name in ("include_normals", "include_colors", "include_textures"):
        value = params.get(name, True)
        if not isinstance(value, bool):
            raise ExportOptionsError(f"{name} must be true or false.")
        flags[name] = value
    return ExportOptions(
        format=fmt, units=units, source_units=params.get("source_units") or units, scale=scale, **flags
    )
