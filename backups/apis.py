"""Backups API: staff see and start database backups; shop owners and admins take,
list and restore recovery snapshots of their shop (other users 404, lower roles 403)."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsUserAccount
from backups import selectors, services
from backups.models import RecoverySnapshot
from backups.serializers import (
    BackupCreateSerializer,
    BackupSerializer,
    SnapshotCreateSerializer,
    SnapshotRestoreResultSerializer,
    SnapshotSerializer,
)
from config.exceptions import Forbidden, NotFound
from shops import selectors as shop_selectors
from shops.permissions import Action, role_allows

METHODS = ["get", "post", "head", "options"]


class BackupListCreateApi(generics.ListAPIView):
    """GET: every backup, newest first. POST {kind?}: queue a backup now (202 with its row)."""

    permission_classes = [IsUserAccount, IsAdminUser]
    serializer_class = BackupSerializer
    http_method_names = METHODS

    def get_queryset(self):
        return selectors.backup_list()

    @extend_schema(request=BackupCreateSerializer, responses={202: BackupSerializer})
    def post(self, request):
        serializer = BackupCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        from backups.tasks import run_backup

        backup = services.backup_start(kind=serializer.validated_data["kind"], created_by=request.user)
        transaction.on_commit(lambda: run_backup.delay(str(backup.pk)))
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)


class BackupDetailApi(generics.RetrieveAPIView):
    permission_classes = [IsUserAccount, IsAdminUser]
    serializer_class = BackupSerializer
    lookup_url_kwarg = "backup_id"
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return selectors.backup_list()


class ShopSnapshotMixin:
    """Owner/admin of the shop only: non-members 404, lower roles 403 (shops.permissions)."""

    permission_classes = [IsUserAccount]
    http_method_names = METHODS

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        membership = shop_selectors.membership_get(user=request.user, shop_id=kwargs["shop_id"])
        if membership is None:
            raise NotFound("Not found.")
        if not role_allows(membership.role, Action.MANAGE):
            raise Forbidden(f"Your role ({membership.role}) may not do this.")
        self.shop = membership.shop


class SnapshotListCreateApi(ShopSnapshotMixin, generics.ListAPIView):
    """GET: the shop's recovery snapshots, newest first. POST {note?}: take one now (201)."""

    serializer_class = SnapshotSerializer
    queryset = RecoverySnapshot.objects.none()  # for the schema generator

    def get_queryset(self):
        return selectors.snapshot_list(shop=self.shop)

    @extend_schema(request=SnapshotCreateSerializer, responses={201: SnapshotSerializer})
    def post(self, request, shop_id):
        serializer = SnapshotCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        snapshot = services.snapshot_create(
            shop=self.shop, created_by=request.user, **serializer.validated_data
        )
        return Response(SnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class SnapshotRestoreApi(ShopSnapshotMixin, APIView):
    """POST: put the shop's catalogue back as the snapshot recorded it (synchronous)."""

    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses={200: SnapshotRestoreResultSerializer})
    def post(self, request, shop_id, snapshot_id):
        snapshot = RecoverySnapshot.objects.filter(pk=snapshot_id, shop=self.shop).first()
        if snapshot is None:
            raise NotFound("Not found.")
        return Response(services.snapshot_restore(snapshot=snapshot, user=request.user))
