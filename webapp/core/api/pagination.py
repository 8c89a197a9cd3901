"""Cursor pagination for every list: stable under inserts (new rows never shift a page),
``page_size`` up to a hard limit."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import CursorPagination

MAX_PAGE_SIZE = 500


class Cursor(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "-id"

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        for p in params:
            if p["name"] == self.page_size_query_param:
                p["schema"].update(minimum=1, maximum=self.max_page_size)
                p["description"] = f"rows per page, at most {self.max_page_size} (default {self.page_size})"
        return params
