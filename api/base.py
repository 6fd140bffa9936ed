"""What every API view shares: the body limit, the client's address, and judging input with the
pages' own forms (forms own validation, so the API refuses exactly what the pages refuse)."""

from __future__ import annotations

import base64
import binascii

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.utils.cache import add_never_cache_headers
from django.utils.datastructures import MultiValueDict
from rest_framework import exceptions, parsers, serializers
from rest_framework.views import APIView

from certs.loading import MAX_FILE_BYTES
from users.pages import client_address

from .problems import TooLarge

# A certificate file at the largest accepted, as base64 inside JSON, with room to spare.
MAX_BODY_BYTES = MAX_FILE_BYTES * 3 // 2 + 64 * 1024


class ApiView(APIView):
    """The base of the API's views: bodies over ``MAX_BODY_BYTES`` are refused unread, and no
    answer may be cached."""

    def initial(self, request, *args, **kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise exceptions.ParseError("The Content-Length header is not a number.") from None
        if length > MAX_BODY_BYTES:
            raise TooLarge(f"The body is {length:,} bytes; the most this service accepts is {MAX_BODY_BYTES:,}.")
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)  # what an administrator reads stays in no cache
        return response

    @property
    def address(self) -> str | None:
        return client_address(self.request._request)

    def checked(self, serializer_class, data=None) -> dict:
        """The body (or ``data``) as the serializer types it; 400 naming the fields otherwise."""
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def valid_form(form_class, data: dict, files: dict | None = None, *, fields: dict | None = None, **kwargs):
    """One of the pages' forms, bound to ``data`` and valid; its errors become a 400 naming the
    API's fields (``fields`` maps a form field's name to the API's)."""
    form = form_class(data=data, files=files or {}, **kwargs)
    if form.is_valid():
        return form
    renamed = {}
    for name, messages in form.errors.items():
        renamed.setdefault((fields or {}).get(name, "non_field_errors" if name == "__all__" else name), []).extend(
            messages
        )
    raise serializers.ValidationError(renamed)


def validated(form_class, data: dict, files: dict | None = None, *, fields: dict | None = None, **kwargs) -> dict:
    """Judge input with one of the pages' forms: its cleaned data, or a 400 (see ``valid_form``)."""
    return valid_form(form_class, data, files, fields=fields, **kwargs).cleaned_data


def uploaded(data: dict, prefix: str = "", *, required: bool = False) -> SimpleUploadedFile | None:
    """A certificate file sent as ``file`` (multipart), ``file_base64`` or ``pem`` (JSON): one of them.
    Missing, None, or (when ``required``) a 400 saying how to send it."""
    given = [name for name in ("file", "file_base64", "pem") if data.get(prefix + name) not in (None, "")]
    if len(given) > 1:
        raise serializers.ValidationError(
            {prefix + given[1]: [f"Send the file once: as {' or '.join(prefix + g for g in given)}, not both."]}
        )
    if not given and required:
        raise serializers.ValidationError(
            {
                prefix + "file": [
                    f"Send the file: as '{prefix}file' (multipart), '{prefix}file_base64' or '{prefix}pem' (JSON)."
                ]
            }
        )
    if not given:
        return None
    name = prefix + given[0]
    value = data[name]
    if given[0] == "file":
        return value
    if given[0] == "pem":
        return SimpleUploadedFile("certificate.pem", value.encode("utf-8", "surrogatepass"))
    try:
        content = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise serializers.ValidationError(
            {name: ["This is not base64: send the file's bytes base64-encoded."]}
        ) from None
    return SimpleUploadedFile("certificate", content)


class RawFileParser(parsers.BaseParser):
    """A file sent as the raw body: seen by the view as the multipart field ``file``."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        content = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if not content:
            raise exceptions.ParseError("The body is empty: send the file's bytes as the body.")
        if len(content) > MAX_BODY_BYTES:
            raise TooLarge(f"The body is larger than {MAX_BODY_BYTES:,} bytes, the most this service accepts.")
        files = MultiValueDict({"file": [SimpleUploadedFile("body", content)]})
        return parsers.DataAndFiles(QueryDict(mutable=True), files)


def raw_file_parser(media_type: str) -> type[RawFileParser]:
    return type(f"RawFileParser[{media_type}]", (RawFileParser,), {"media_type": media_type})
