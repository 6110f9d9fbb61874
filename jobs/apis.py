from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication, JWTCookieOrHeaderAuthentication
from accounts.models import ServiceApiKey, User
from accounts.permissions import IsServiceKeyWithScope, IsUserAccount
from config.exceptions import ApplicationError, NotFound
from config.idempotency import idempotent
from config.openapi import signature_header, whole_body_patch
from config.parsers import LimitedJSONParser
from config.replicas import reads_from_replica
from config.throttling import ScopedRateThrottle
from credits.webhook_receiver import webhook_response
from jobs import selectors, services
from jobs.filters import JobFilter
from jobs.models import Job
from jobs.serializers import (
    DailyRangeSerializer,
    DailyStatOutputSerializer,
    DateRangeSerializer,
    JobCreateInputSerializer,
    JobCreateJsonInputSerializer,
    JobFileInputSerializer,
    JobFileOutputSerializer,
    JobOutputSerializer,
    JobWebhookInputSerializer,
    QueueStatusOutputSerializer,
    StatsPatchInputSerializer,
    StatsPatchOutputSerializer,
    UserStatsOutputSerializer,
    WebhookOutputSerializer,
)
from jobs.webhooks import job_webhook_receive

DATE_RANGE = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="Inclusive, UTC (default: 29 days before `to`)."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Inclusive, UTC (default: today)."),
]


def _validated(serializer_class, data, **kwargs):
    if not isinstance(data, dict) and not hasattr(data, "getlist"):
        raise ApplicationError(
            "Invalid input.",
            code="validation_error",
            fields={"non_field_errors": ["Expected a JSON object."]},
        )
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class JobListCreateApi(ListAPIView):
    permission_classes = [IsUserAccount]
    serializer_class = JobOutputSerializer
    filterset_class = JobFilter
    # JSON, or multipart when the job comes with its `input` file.
    parser_classes = [LimitedJSONParser, MultiPartParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        return selectors.job_list(user=self.request.user)

    @extend_schema(
        summary="Create a job",
        request={
            "application/json": JobCreateJsonInputSerializer,
            "multipart/form-data": JobCreateInputSerializer,
        },
        responses={201: JobOutputSerializer},
    )
    @idempotent
    def post(self, request):
        return job_created_response(request, _validated(JobCreateInputSerializer, request.data))


def job_created_response(request, data: dict) -> Response:
    """Create the job `data` describes (a validated JobCreateInputSerializer) and answer 201 with
    it: the one path of `POST /api/jobs` and of the endpoints that create a job of a fixed kind."""
    job = services.job_create(
        user=request.user,
        kind_code=data["kind"],
        params=data["params"],
        requested_count=data["requested_count"],
        priority=data["priority"],
        external_id=data.get("external_id"),
        input_file=data.get("input"),
    )
    # Without an input file the new job is exactly what was written: no need to read it back.
    job = (
        selectors.job_get(user=request.user, job_id=job.pk)
        if data.get("input") is not None
        else selectors.job_as_listed(job=job)
    )
    return Response(JobOutputSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    permission_classes = [IsUserAccount]

    @extend_schema(responses=JobOutputSerializer)
    def get(self, request, job_id):
        return Response(JobOutputSerializer(selectors.job_get(user=request.user, job_id=job_id)).data)


class JobByExternalIdApi(APIView):
    permission_classes = [IsUserAccount]

    @extend_schema(responses=JobOutputSerializer)
    def get(self, request, external_id):
        job = selectors.job_get_by_external_id(user=request.user, external_id=external_id)
        return Response(JobOutputSerializer(job).data)


class JobCancelApi(APIView):
    permission_classes = [IsUserAccount]

    @extend_schema(request=None, responses=JobOutputSerializer)
    def post(self, request, job_id):
        job = services.job_cancel(job=selectors.job_get(user=request.user, job_id=job_id))
        return Response(JobOutputSerializer(selectors.job_get(user=request.user, job_id=job.pk)).data)


class JobRetryApi(APIView):
    permission_classes = [IsUserAccount]

    @extend_schema(request=None, responses={200: JobOutputSerializer, 201: JobOutputSerializer})
    def post(self, request, job_id):
        job, created = services.job_retry(job=selectors.job_get(user=request.user, job_id=job_id))
        body = JobOutputSerializer(selectors.job_get(user=request.user, job_id=job.pk)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class JobFileUploadApi(APIView):
    permission_classes = [IsUserAccount]
    parser_classes = [MultiPartParser]

    @extend_schema(request=JobFileInputSerializer, responses={201: JobFileOutputSerializer})
    def post(self, request, job_id):
        job = selectors.job_get(user=request.user, job_id=job_id)
        data = _validated(JobFileInputSerializer, request.data)
        job_file = services.job_file_add(job=job, uploaded=data["file"], role=data["role"])
        return Response(JobFileOutputSerializer(job_file).data, status=status.HTTP_201_CREATED)


class QueueStatusApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses=QueueStatusOutputSerializer)
    def get(self, request):
        return Response(selectors.job_queue_status())


class JobsWriteScope(IsServiceKeyWithScope):
    pass


class StatsApi(APIView):
    """GET: the caller's totals over a date range. PATCH: an external worker's job report."""

    authentication_classes = [JWTCookieOrHeaderAuthentication, ApiKeyAuthentication]
    required_scope = "jobs:write"

    def get_permissions(self):
        if self.request.method == "PATCH":
            return [(IsUserAccount | IsServiceKeyWithScope)()]
        return [IsUserAccount()]

    @extend_schema(parameters=DATE_RANGE, responses=UserStatsOutputSerializer)
    @reads_from_replica
    def get(self, request):
        dates = DateRangeSerializer().to_internal_value(request.query_params)
        stats = selectors.job_stats(user=request.user, **dates)
        return Response(
            {**UserStatsOutputSerializer(stats).data, "from": dates["date_from"], "to": dates["date_to"]}
        )

    @extend_schema(request=StatsPatchInputSerializer, responses=StatsPatchOutputSerializer)
    @whole_body_patch
    def patch(self, request):
        data = _validated(StatsPatchInputSerializer, request.data)
        if isinstance(request.auth, ServiceApiKey):
            if "user_id" not in data:
                raise ApplicationError(
                    "A service key must say which user the job belongs to.",
                    code="validation_error",
                    fields={"user_id": ["This field is required."]},
                )
            user = User.objects.filter(pk=data["user_id"], is_active=True).first()
            if user is None:
                raise NotFound("User not found.")
            reporter = services.Reporter.SERVICE
        else:
            user, reporter = request.user, services.Reporter.USER
        job = services.job_stats_upsert(
            user=user,
            external_id=data["job_id"],
            status=data["status"],
            requested_count=data["requested_count"],
            successful_count=data.get("successful_count"),
            failed_count=data.get("failed_count"),
            kind_code=data["kind"],
            reporter=reporter,
            vault_items=data.get("vault_items"),
        )
        # `job_id` answers what the caller sent (the external id, or the job's UUID).
        return Response(StatsPatchOutputSerializer({**_stats_fields(job), "job_id": data["job_id"]}).data)


def _stats_fields(job: Job) -> dict:
    return {
        name: getattr(job, name) for name in ("requested_count", "successful_count", "failed_count", "status")
    }


class StatsDailyApi(APIView):
    permission_classes = [IsUserAccount]

    @extend_schema(parameters=DATE_RANGE, responses=DailyStatOutputSerializer(many=True))
    @reads_from_replica
    def get(self, request):
        dates = DailyRangeSerializer().to_internal_value(request.query_params)
        return Response(selectors.job_stats_daily(user=request.user, **dates))


class JobWebhookApi(APIView):
    """External workers' signed callbacks (`X-Signature: t=<unix>,v1=<hex>`; provider P is declared
    in settings.JOB_WEBHOOK_PROVIDERS), and Replicate's (provider `replicate`: its prediction
    object, signed with `webhook-id`, `webhook-timestamp`, `webhook-signature`; jobs.replicate).
    Received by the shared receiver (credits.webhook_receiver, handler jobs.webhooks): every
    delivery logged, effects once per event_id."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "webhook"

    @extend_schema(
        summary="Receive a signed job report from an external worker",
        request=JobWebhookInputSerializer,
        parameters=[
            signature_header(required=True),
            OpenApiParameter(
                "job",
                OpenApiTypes.UUID,
                OpenApiParameter.QUERY,
                description="Provider `replicate`: the job the prediction was started for.",
            ),
            OpenApiParameter(
                "attempt",
                OpenApiTypes.INT,
                OpenApiParameter.QUERY,
                description="Provider `replicate`: the attempt that started the prediction.",
            ),
        ],
        responses=WebhookOutputSerializer,
    )
    def post(self, request, provider):
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body, too_large = request.body, False
        except RequestDataTooBig:
            body, too_large = b"", True
        result = job_webhook_receive(
            provider=provider,
            body=body,
            headers=headers,
            body_too_large=too_large,
            query=request.query_params,
        )
        return webhook_response(result)
