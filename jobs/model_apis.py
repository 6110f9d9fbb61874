"""The model lifecycle's API: `/api/models`, `/api/exports`, `/api/projects`.

Exports are created like any job (`POST /api/jobs` with kind `model_export`, params format,
source_job_id, units, source_units, scale, include_normals/colors/textures); here they are
listed, read and downloaded. Every object is the caller's or a 404.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsUserAccount
from jobs import model_selectors as selectors
from jobs.apis import _validated, job_created_response
from jobs.file_apis import DOWNLOAD_RESPONSES, AnyAccept, job_file_response
from jobs.model_serializers import (
    ModelExportSerializer,
    ModelSerializer,
    ProjectInputSerializer,
    ProjectSerializer,
    ProjectTransitionInputSerializer,
)
from jobs.models import Job, ModelExport, Project
from jobs.serializers import JobOutputSerializer, ModelImportInputSerializer
from jobs.services import models3d as services


class ModelListApi(ListAPIView):
    """The caller's imported models (not deleted), newest first."""

    permission_classes = [IsUserAccount]
    serializer_class = ModelSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        return selectors.model_list(user=self.request.user)


class ModelImportApi(APIView):
    """Import a model: the same as `POST /api/jobs` with kind `model_import` and the file as
    `input` (same checks, limits, response and errors); the job's id is the model's id."""

    permission_classes = [IsUserAccount]
    parser_classes = [MultiPartParser]

    @extend_schema(request=ModelImportInputSerializer, responses={201: JobOutputSerializer})
    def post(self, request):
        return job_created_response(request, _validated(ModelImportInputSerializer, request.data))


class ModelDetailApi(APIView):
    permission_classes = [IsUserAccount]

    @extend_schema(responses=ModelSerializer)
    def get(self, request, job_id):
        return Response(ModelSerializer(selectors.model_get(user=request.user, job_id=job_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, job_id):
        """Soft-delete the model, delete its stored files (freeing their quota) and give its model
        slot back (404 once deleted)."""
        services.model_delete(user=request.user, job_id=job_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelExportListApi(ListAPIView):
    """The caller's exports with their options, status, download count and link expiry."""

    permission_classes = [IsUserAccount]
    serializer_class = ModelExportSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelExport.objects.none()
        return selectors.model_export_list(user=self.request.user)


class ModelExportDetailApi(APIView):
    permission_classes = [IsUserAccount]

    @extend_schema(responses=ModelExportSerializer)
    def get(self, request, export_id):
        export = selectors.model_export_get(user=request.user, export_id=export_id)
        return Response(ModelExportSerializer(export).data)


class ModelExportDownloadApi(APIView):
    """The export's file, counted once per request; 410 `expired` after its link expired."""

    permission_classes = [IsUserAccount]
    content_negotiation_class = AnyAccept

    @extend_schema(
        responses={
            **DOWNLOAD_RESPONSES,
            409: OpenApiResponse(description="The export has not completed (`export_not_ready`)."),
        }
    )
    def get(self, request, export_id):
        export = selectors.model_export_get(user=request.user, export_id=export_id)
        return job_file_response(services.model_export_download(export=export))


class ProjectListCreateApi(ListAPIView):
    permission_classes = [IsUserAccount]
    serializer_class = ProjectSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Project.objects.none()
        return selectors.project_list(user=self.request.user)

    @extend_schema(request=ProjectInputSerializer, responses={201: ProjectSerializer})
    def post(self, request):
        data = _validated(ProjectInputSerializer, request.data)
        project = services.project_create(
            user=request.user,
            name=data["name"],
            description=data.get("description", ""),
            model_ids=data.get("models", []),
            tooling_applied=data.get("tooling_applied", []),
        )
        project = selectors.project_get(user=request.user, project_id=project.pk)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    permission_classes = [IsUserAccount]

    @extend_schema(responses=ProjectSerializer)
    def get(self, request, project_id):
        return Response(
            ProjectSerializer(selectors.project_get(user=request.user, project_id=project_id)).data
        )

    def _update(self, request, project_id, *, partial: bool):
        project = selectors.project_get(user=request.user, project_id=project_id)
        data = _validated(ProjectInputSerializer, request.data, partial=partial)
        services.project_update(
            project=project,
            name=data.get("name"),
            description=data.get("description", None if partial else ""),
            model_ids=data.get("models", None if partial else []),
            tooling_applied=data.get("tooling_applied", None if partial else []),
        )
        project = selectors.project_get(user=request.user, project_id=project_id)
        return Response(ProjectSerializer(project).data)

    @extend_schema(request=ProjectInputSerializer, responses=ProjectSerializer)
    def put(self, request, project_id):
        return self._update(request, project_id, partial=False)

    @extend_schema(request=ProjectInputSerializer, responses=ProjectSerializer)
    def patch(self, request, project_id):
        return self._update(request, project_id, partial=True)

    @extend_schema(
        responses={204: None, 409: OpenApiResponse(description="Already deleted (`invalid_transition`).")}
    )
    def delete(self, request, project_id):
        """Delete the project (the `deleted` status: 404 from then on; its models stay)."""
        services.project_delete(project=selectors.project_get(user=request.user, project_id=project_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectTransitionApi(APIView):
    """Move the project to `status` along its lifecycle: draft → processing → completed →
    archived / deleted (also processing → draft, completed → processing, archived → draft).
    An illegal move is 409 `invalid_transition`."""

    permission_classes = [IsUserAccount]

    @extend_schema(
        request=ProjectTransitionInputSerializer,
        responses={
            200: ProjectSerializer,
            204: OpenApiResponse(description="Moved to `deleted`."),
            409: OpenApiResponse(description="`invalid_transition`"),
        },
    )
    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id)
        data = _validated(ProjectTransitionInputSerializer, request.data)
        services.project_transition(project=project, to=data["status"])
        if data["status"] == Project.Status.DELETED:
            return Response(status=status.HTTP_204_NO_CONTENT)
        project = selectors.project_get(user=request.user, project_id=project_id)
        return Response(ProjectSerializer(project).data)
