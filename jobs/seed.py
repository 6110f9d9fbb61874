"""The job kinds every installation starts with (SPEC §5); migration 0002 writes them."""

SEED_KINDS = [
    {"code": "video_render", "name": "Video render", "credits_per_unit": 1,
     "counts_toward_model_limit": False, "requires_input_file": False, "executor": "external",
     "max_retries": 3, "timeout": 2 * 3600},
    {"code": "account_batch", "name": "Account batch", "credits_per_unit": 1,
     "counts_toward_model_limit": False, "requires_input_file": False, "executor": "external",
     "max_retries": 3, "timeout": 3600},
    {"code": "model_import", "name": "3D model import", "credits_per_unit": 0,
     "counts_toward_model_limit": True, "requires_input_file": True, "executor": "engine",
     "max_retries": 3, "timeout": 600},
    {"code": "model_export", "name": "3D model export", "credits_per_unit": 0,
     "counts_toward_model_limit": False, "requires_input_file": False, "executor": "engine",
     "max_retries": 3, "timeout": 600},
]
