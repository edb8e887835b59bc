from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response


class _Cursor(CursorPagination):
    """Keyset pagination in the list's own ordering (`?ordering=` or the endpoint's default): each page
    continues from where the previous one ended, through the index that matches the ordering, without
    counting or skipping rows. A cursor that is not one we gave out is a 400 on `cursor`."""

    ordering = "-id"

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: [gettext("Give a cursor from a previous page's links.")]}
            ) from None

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        field_name = ordering[0].lstrip("-")
        try:
            field = queryset.model._meta.get_field(field_name)
        except FieldDoesNotExist:
            field = None
        if field is None or field.null:
            message = gettext("A cursor needs an ordering by a field that is never empty, not %(field)s.") % {
                "field": field_name
            }
            raise ValidationError({self.cursor_query_param: [message]})
        return ordering


class DefaultPagination(PageNumberPagination):
    """`?page=` (from 1) and `?page_size=` (1 to 500, default 50). A page or page size that is not a
    whole number in range is refused with 400 and a field error, never silently replaced.

    `?cursor=` (empty for the first page) switches to keyset pagination: no `count`, and `next` /
    `previous` links that carry the cursor. Any depth costs the same as the first page, so clients that
    walk a large list (every invoice, every event) use it; `page` and `cursor` together are refused."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    cursor_query_param = "cursor"
    _cursor: _Cursor | None = None

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        gettext("Give a whole number from 1 to %(maximum)s.") % {"maximum": self.max_page_size}
                    ]
                }
            )
        return int(raw)

    def paginate_queryset(self, queryset, request, view=None):
        if self.cursor_query_param in request.query_params:
            if self.page_query_param in request.query_params:
                raise ValidationError({self.cursor_query_param: [gettext("Give either a page or a cursor, not both.")]})
            self._cursor = _Cursor()
            self._cursor.page_size = self.get_page_size(request)
            self._cursor.cursor_query_param = self.cursor_query_param
            return self._cursor.paginate_queryset(queryset, request, view)
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            raise ValidationError({self.page_query_param: [gettext("Give a page number from 1.")]})
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:  # past the last page
            raise ValidationError(
                {self.page_query_param: [gettext("There is no such page; the last one is `count` / `page_size`.")]}
            ) from None

    def get_paginated_response(self, data):
        if self._cursor is not None:
            return Response(
                {"next": self._cursor.get_next_link(), "previous": self._cursor.get_previous_link(), "results": data}
            )
        return super().get_paginated_response(data)

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["count"]["description"] = "Every matching row (absent with `cursor`)."
        paginated["required"] = ["next", "previous", "results"]
        return paginated

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        parameters.append(
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Keyset pagination: empty for the first page, then the cursor in `next`. "
                "No `count`; the same cost at any depth. Not with `page`.",
                "schema": {"type": "string"},
            }
        )
        return parameters
