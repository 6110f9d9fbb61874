"""The external workers' pull protocol (service API key with scope `jobs:work`; see
jobs.worker_protocol for the contract). Every view calls one service."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication
from accounts.permissions import IsServiceKeyWithScope
from config.parsers import LimitedJSONParser
from jobs import worker_protocol as protocol
from jobs.apis import _validated
from jobs.file_apis import DOWNLOAD_RESPONSES, AnyAccept, job_file_response
from jobs.file_serializers import JobFileSerializer, datetime_output
from jobs.models import JobFile
from jobs.serializers import MAX_VAULT_ITEMS, VaultItemInputSerializer
from jobs.states import JobStatus

WORK_SCOPE = "jobs:work"
LEASE_LOST = OpenApiResponse(description="This attempt no longer holds the lease (`lease_lost`).")


class ClaimInputSerializer(serializers.Serializer):
    kinds = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=50, default=list
    )
    max = serializers.IntegerField(min_value=1, max_value=100, default=1)
    lease_seconds = serializers.IntegerField(min_value=1, max_value=86_400, required=False)


class ClaimedFileSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    content_type = serializers.CharField()
    download_url = serializers.CharField(help_text="Signed and short-lived; needs no key.")


class ClaimedJobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    attempt = serializers.IntegerField()
    lease_expires_at = serializers.DateTimeField()
    params = serializers.JSONField()
    requested_count = serializers.IntegerField()
    input_files = ClaimedFileSerializer(many=True)


class ClaimOutputSerializer(serializers.Serializer):
    jobs = ClaimedJobSerializer(many=True)


class HeartbeatInputSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)
    progress = serializers.IntegerField(min_value=0, max_value=100, required=False)
    lease_seconds = serializers.IntegerField(min_value=1, max_value=86_400, required=False)


class LeaseOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    attempt = serializers.IntegerField()
    progress = serializers.IntegerField()
    lease_expires_at = serializers.DateTimeField(allow_null=True)


REPORT_STATUSES = [JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED]


class ReportInputSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)
    status = serializers.ChoiceField(choices=[(s.value, s.label) for s in REPORT_STATUSES])
    progress = serializers.IntegerField(min_value=0, max_value=100, required=False)
    successful_count = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
    failed_count = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
    error = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    metrics = serializers.DictField(required=False)
    vault_items = VaultItemInputSerializer(many=True, required=False, max_length=MAX_VAULT_ITEMS)
    retry = serializers.BooleanField(
        default=False,
        help_text="With `failed`: a failed attempt, retried with backoff while attempts remain.",
    )


class ReportOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    requested_count = serializers.IntegerField()
    successful_count = serializers.IntegerField()
    failed_count = serializers.IntegerField()


class WorkerFileInputSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)
    role = serializers.ChoiceField(choices=[JobFile.Role.OUTPUT, JobFile.Role.THUMBNAIL])
    file = serializers.FileField(allow_empty_file=False, max_length=255)


class WorkerApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsServiceKeyWithScope]
    required_scope = WORK_SCOPE


def _lease_output(job) -> dict:
    return {
        "id": str(job.pk),
        "status": job.status,
        "attempt": job.attempts,
        "progress": job.progress,
        "lease_expires_at": datetime_output(job.lease_expires_at),
    }


class WorkerClaimApi(WorkerApi):
    parser_classes = [LimitedJSONParser]

    @extend_schema(
        summary="Claim jobs to run, with a lease",
        request=ClaimInputSerializer,
        responses={200: ClaimOutputSerializer, 403: OpenApiResponse(description="`kind_not_allowed`")},
    )
    def post(self, request):
        data = _validated(ClaimInputSerializer, request.data)
        kinds = protocol.worker_kinds_for(api_key=request.auth, requested=data["kinds"])
        jobs = protocol.worker_jobs_claim(
            api_key=request.auth,
            kinds=kinds,
            limit=min(data["max"], settings.WORKER_CLAIM_MAX),
            lease_seconds=protocol.lease_seconds_clamp(data.get("lease_seconds")),
        )
        inputs = protocol.claimed_inputs(jobs=jobs)
        body = [
            {
                "id": str(job.pk),
                "kind": job.kind.code,
                "attempt": job.attempts,
                "lease_expires_at": datetime_output(job.lease_expires_at),
                "params": job.params,
                "requested_count": job.requested_count,
                "input_files": [
                    {
                        "id": str(f.pk),
                        "name": JobFileSerializer(f).data["name"],
                        "size": f.size,
                        "sha256": f.sha256,
                        "content_type": f.content_type,
                        "download_url": protocol.input_download_url(job_file=f, attempt=job.attempts),
                    }
                    for f in inputs[job.pk]
                ],
            }
            for job in jobs
        ]
        return Response({"jobs": body})


class WorkerHeartbeatApi(WorkerApi):
    parser_classes = [LimitedJSONParser]

    @extend_schema(
        summary="Extend the lease of a claimed job",
        request=HeartbeatInputSerializer,
        responses={200: LeaseOutputSerializer, 409: LEASE_LOST},
    )
    def post(self, request, job_id):
        data = _validated(HeartbeatInputSerializer, request.data)
        job = protocol.worker_heartbeat(
            api_key=request.auth,
            job_id=job_id,
            attempt=data["attempt"],
            progress=data.get("progress"),
            lease_seconds=protocol.lease_seconds_clamp(data.get("lease_seconds")),
        )
        return Response(_lease_output(job))


class WorkerFileUploadApi(WorkerApi):
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Upload an output or thumbnail of a claimed job",
        request={"multipart/form-data": WorkerFileInputSerializer},
        responses={201: JobFileSerializer, 409: LEASE_LOST},
    )
    def post(self, request, job_id):
        data = _validated(WorkerFileInputSerializer, request.data)
        job_file = protocol.worker_file_add(
            api_key=request.auth,
            job_id=job_id,
            attempt=data["attempt"],
            role=data["role"],
            uploaded=data["file"],
        )
        return Response(JobFileSerializer(job_file).data, status=201)


class WorkerReportApi(WorkerApi):
    parser_classes = [LimitedJSONParser]

    @extend_schema(
        summary="Report a claimed job's progress or outcome",
        request=ReportInputSerializer,
        responses={200: ReportOutputSerializer, 409: LEASE_LOST},
    )
    def post(self, request, job_id):
        data = _validated(ReportInputSerializer, request.data)
        job = protocol.worker_report(
            api_key=request.auth,
            job_id=job_id,
            attempt=data["attempt"],
            status=data["status"],
            progress=data.get("progress"),
            successful_count=data.get("successful_count"),
            failed_count=data.get("failed_count"),
            error=data.get("error"),
            metrics=data.get("metrics"),
            vault_items=data.get("vault_items"),
            retry=data["retry"],
        )
        return Response(
            {
                "id": str(job.pk),
                "status": job.status,
                "progress": job.progress,
                "requested_count": job.requested_count,
                "successful_count": job.successful_count,
                "failed_count": job.failed_count,
            }
        )


class WorkerInputDownloadApi(APIView):
    """An input file of a claimed job through the signed URL the claim returned (no key)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    content_negotiation_class = AnyAccept

    @extend_schema(summary="Download a claimed job's input (signed URL)", responses=DOWNLOAD_RESPONSES)
    def get(self, request, token):
        return job_file_response(protocol.input_file_from_token(token=token))
