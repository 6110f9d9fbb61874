from django.urls import path

from backups import apis

urlpatterns = [
    path("admin/backups", apis.BackupListCreateApi.as_view(), name="admin-backups"),
    path("admin/backups/<uuid:backup_id>", apis.BackupDetailApi.as_view(), name="admin-backup-detail"),
    path("shops/<uuid:shop_id>/snapshots", apis.SnapshotListCreateApi.as_view(), name="shop-snapshots"),
    path(
        "shops/<uuid:shop_id>/snapshots/<uuid:snapshot_id>/restore",
        apis.SnapshotRestoreApi.as_view(),
        name="shop-snapshot-restore",
    ),
]
