"""model_import and model_export: 3D meshes through `jobs.processors.mesh` (trimesh)."""

import time

from jobs.processors import JobContext, PermanentJobError, register


def _read(job_file) -> bytes:
    """The stored bytes, after the declared-size check (a file stored before the upload check
    existed, or a size limit lowered since, must not reach trimesh)."""
    from config.exceptions import ApplicationError
    from jobs.files import check_mesh_size

    with job_file.file.open("rb") as handle:
        try:
            check_mesh_size(handle, job_file.file_type, size=job_file.size)
        except ApplicationError as exc:
            details = [message for messages in (exc.fields or {}).values() for message in messages]
            raise PermanentJobError(" ".join([exc.message, *details])) from None
        return handle.read()


@register("model_import")
def model_import(ctx: JobContext) -> dict:
    from jobs.processors.mesh import MeshError, load_mesh, measure_mesh, render_thumbnail

    source = ctx.input_file()
    if source is None:
        raise PermanentJobError("The job has no input model file.")
    ctx.progress(10)
    try:
        mesh = load_mesh(_read(source), source.file_type)
    except MeshError as exc:
        raise PermanentJobError(f"The model file could not be read: {exc}") from exc
    analysis = measure_mesh(mesh)
    ctx.progress(60)
    # The thumbnail is written with the job's other outputs, under thumbnails/ (jobs.files).
    ctx.add_output(render_thumbnail(mesh), "png", role="thumbnail", name="thumbnail.png")
    ctx.progress(90)
    ctx.add_artifact(
        "model",
        source.original_name or f"model.{source.file_type}",
        {
            "file_type": source.file_type,
            **{k: analysis.get(k) for k in ("vertex_count", "face_count", "is_valid")},
        },
    )
    return {"result": {"file_type": source.file_type, **analysis}, "successful_count": 1}


@register("model_export")
def model_export(ctx: JobContext) -> dict:
    from jobs.export_options import ExportOptionsError, export_options
    from jobs.models import Job
    from jobs.processors.mesh import MeshError, convert_mesh

    try:
        options = export_options(ctx.params)
    except ExportOptionsError as exc:
        raise PermanentJobError(f"Invalid export options: {exc}") from None
    target = options.format
    source = ctx.input_file()
    source_job_id = ctx.params.get("source_job_id")
    if source is None and source_job_id:
        origin = Job.objects.filter(
            pk=source_job_id, user_id=ctx.job.user_id, deleted_at__isnull=True
        ).first()
        source = origin.files.filter(role="input").first() if origin else None
    if source is None:
        raise PermanentJobError("No source model: upload an input file or give source_job_id.")
    ctx.progress(10)
    started = time.monotonic()
    try:
        data = convert_mesh(_read(source), source.file_type, target, options)
    except MeshError as exc:
        raise PermanentJobError(f"The model could not be converted: {exc}") from exc
    processing_ms = round((time.monotonic() - started) * 1000)
    ctx.progress(90)
    ctx.add_output(data, target, name=f"export.{target}")
    ctx.add_artifact(
        "model_export",
        f"export.{target}",
        {"format": target, "size": len(data)},
        output_index=len(ctx.outputs) - 1,
    )
    return {
        "result": {
            "format": target,
            "size": len(data),
            "source_file_id": str(source.pk),
            "units": options.units,
            "source_units": options.source_units,
            "scale": str(options.scale),
            "include_normals": options.include_normals,
            "include_colors": options.include_colors,
            "include_textures": options.include_textures,
            "include_baseplate": options.include_baseplate,
            "baseplate_thickness_mm": str(options.baseplate_thickness_mm)
            if options.include_baseplate
            else None,
            # How long reading and converting the model took (recorded with the completion).
            "processing_ms": processing_ms,
        },
        "successful_count": 1,
    }
