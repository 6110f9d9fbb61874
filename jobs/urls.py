from django.urls import path

from jobs import apis, file_apis, model_apis, worker_apis

W = worker_apis

urlpatterns = [
    path("jobs", apis.JobListCreateApi.as_view(), name="job-list"),
    path("jobs/queue-status", apis.QueueStatusApi.as_view(), name="job-queue-status"),
    path("jobs/<uuid:job_id>", apis.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<uuid:job_id>/cancel", apis.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<uuid:job_id>/retry", apis.JobRetryApi.as_view(), name="job-retry"),
    path("jobs/<uuid:job_id>/files", file_apis.JobFilesApi.as_view(), name="job-files"),
    path(
        "jobs/<uuid:job_id>/files/<uuid:file_id>/download",
        file_apis.JobFileDownloadApi.as_view(),
        name="job-file-download",
    ),
    path("vault", file_apis.VaultApi.as_view(), name="vault"),
    path("models", model_apis.ModelListApi.as_view(), name="model-list"),
    path("models/import", model_apis.ModelImportApi.as_view(), name="model-import"),
    path("models/<uuid:job_id>", model_apis.ModelDetailApi.as_view(), name="model-detail"),
    path("exports", model_apis.ModelExportListApi.as_view(), name="model-export-list"),
    path("exports/<uuid:export_id>", model_apis.ModelExportDetailApi.as_view(), name="model-export-detail"),
    path(
        "exports/<uuid:export_id>/download",
        model_apis.ModelExportDownloadApi.as_view(),
        name="model-export-download",
    ),
    path("projects", model_apis.ProjectListCreateApi.as_view(), name="project-list"),
    path("projects/<uuid:project_id>", model_apis.ProjectDetailApi.as_view(), name="project-detail"),
    path(
        "projects/<uuid:project_id>/transition",
        model_apis.ProjectTransitionApi.as_view(),
        name="project-transition",
    ),
    path("job/<str:external_id>", apis.JobByExternalIdApi.as_view(), name="job-by-external-id"),
    path("stats", apis.StatsApi.as_view(), name="job-stats"),
    path("stats/daily", apis.StatsDailyApi.as_view(), name="job-stats-daily"),
    path("worker/claim", W.WorkerClaimApi.as_view(), name="worker-claim"),
    path(
        "worker/jobs/<uuid:job_id>/heartbeat",
        W.WorkerHeartbeatApi.as_view(),
        name="worker-heartbeat",
    ),
    path("worker/jobs/<uuid:job_id>/files", W.WorkerFileUploadApi.as_view(), name="worker-files"),
    path("worker/jobs/<uuid:job_id>/report", W.WorkerReportApi.as_view(), name="worker-report"),
    path(
        "worker/inputs/<str:token>",
        W.WorkerInputDownloadApi.as_view(),
        name="worker-input-download",
    ),
    path("webhooks/jobs/<str:provider>", apis.JobWebhookApi.as_view(), name="job-webhook"),
]
