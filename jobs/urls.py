from django.urls import path

from jobs import apis, file_apis

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
    path("job/<str:external_id>", apis.JobByExternalIdApi.as_view(), name="job-by-external-id"),
    path("stats", apis.StatsApi.as_view(), name="job-stats"),
    path("stats/daily", apis.StatsDailyApi.as_view(), name="job-stats-daily"),
    path("webhooks/jobs/<str:provider>", apis.JobWebhookApi.as_view(), name="job-webhook"),
]
