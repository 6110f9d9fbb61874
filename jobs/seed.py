"""The job kinds every installation starts with; migration 0002 writes them."""

SEED_KINDS = [
    {
        "code": "video_render",
        "name": "Video render",
        "credits_per_unit": 1,
        "counts_toward_model_limit": False,
        "requires_input_file": False,
        "executor": "external",
        "max_retries": 3,
        "timeout": 2 * 3600,
    },
    {
        "code": "account_batch",
        "name": "Account batch",
        "credits_per_unit": 1,
        "counts_toward_model_limit": False,
        "requires_input_file": False,
        "executor": "external",
        "max_retries": 3,
        "timeout": 3600,
    },
    {
        "code": "model_import",
        "name": "3D model import",
        "credits_per_unit": 0,
        "counts_toward_model_limit": True,
        "requires_input_file": True,
        "executor": "engine",
        "max_retries": 3,
        "timeout": 600,
    },
    {
        "code": "model_export",
        "name": "3D model export",
        "credits_per_unit": 0,
        "counts_toward_model_limit": False,
        "requires_input_file": False,
        "executor": "engine",
        "max_retries": 3,
        "timeout": 600,
    },
]

# Who decides each seeded kind's outcome. Kept apart from SEED_KINDS because
# migration 0002 writes SEED_KINDS before the field exists; migration 0006 writes these.
REPORTED_BY = {
    "video_render": "worker",
    "account_batch": "client",
    "model_import": "engine",
    "model_export": "engine",
}

# The seeded kinds as the current model has them (for code that re-creates them, e.g. tests).
CURRENT_SEED_KINDS = [{**kind, "reported_by": REPORTED_BY[kind["code"]]} for kind in SEED_KINDS]
