"""Request plumbing that must run before URL resolution."""


class StripTrailingSlashMiddleware:
    """Every API path answers with and without a trailing slash, without a redirect (SPEC §2).

    Routes are declared without the slash; this strips it from the path before resolution.
    The admin and static files keep Django's own slash convention.
    """

    KEEP_PREFIXES = ("/admin", "/static/", "/media/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if len(path) > 1 and path.endswith("/") and not path.startswith(self.KEEP_PREFIXES):
            request.path_info = path.rstrip("/") or "/"
        return self.get_response(request)
