"""Serializer helpers shared by the apps."""

import copy

from rest_framework.serializers import BaseSerializer


class FieldsBuiltOnce:
    """For ModelSerializers that render responses on hot paths: their fields are derived from
    the model once per class, not once per instance.

    DRF's ModelSerializer.get_fields() maps every model field to a serializer field (kwargs,
    validators, choices) each time a serializer is instantiated, and Serializer then deep-copies
    (re-instantiates) each declared field: about 1 ms for a 25-field output serializer, more
    than the rest of building the response (bench/api_floor.py's profile of POST /api/jobs).
    What get_fields() builds depends only on the class's Meta and declared fields, never on the
    instance, data or context, so the first result is kept on the class.

    A serializer that renders an instance gets a shallow copy of each kept field: a field only
    reads its configuration when rendering, and bind() writes its name, parent and source on
    the copy. Nested serializers are still deep-copied (they bind children of their own). A
    serializer given `data` (validation runs validators and may keep state on its fields) gets
    deep copies of every field, as DRF does. Put it before the base class:
    `class JobOutputSerializer(FieldsBuiltOnce, serializers.ModelSerializer)`.
    """

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built_once")
        if built is None:
            built = super().get_fields()
            cls._fields_built_once = built
        if hasattr(self, "initial_data"):
            return copy.deepcopy(built)
        return {
            name: copy.deepcopy(field) if isinstance(field, BaseSerializer) else copy.copy(field)
            for name, field in built.items()
        }
