"""What crosses the control socket: docent's own frozen dataclasses as JSON, and the errors a
user can cause, rebuilt on the CLI side as the same exception classes (so `except NotFound`
works the same whether the store is local or forwarded)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from admin.operations import DocumentRecord, UploadReport
from admin.types import NotAuthorized, NotFound
from bot.types import Answer, DocentError, Question
from knowledge import types as knowledge_types

QUESTION = TypeAdapter(Question)
ANSWER = TypeAdapter(Answer)
UPLOAD_REPORT = TypeAdapter(UploadReport)
DOCUMENT_RECORD = TypeAdapter(DocumentRecord)

_USER_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        NotAuthorized, NotFound, DocentError, *DocentError.__subclasses__(),
        knowledge_types.DocumentError, *knowledge_types.DocumentError.__subclasses__(),
    )
}


def dump(adapter: TypeAdapter, value: Any) -> Any:
    return adapter.dump_python(value, mode="json")


def load(adapter: TypeAdapter, data: Any) -> Any:
    return adapter.validate_python(data)


def is_user_error(err: BaseException) -> bool:
    return type(err).__name__ in _USER_ERRORS and isinstance(err, _USER_ERRORS[type(err).__name__])


def error_json(err: BaseException) -> dict:
    return {"type": type(err).__name__, "message": str(err)}


def rebuild_error(data: dict) -> Exception | None:
    """The user error described by `data`, as its own class with the same message; None for an
    unknown type (the caller reports it as the holder's internal error)."""
    cls = _USER_ERRORS.get(str(data.get("type")))
    if cls is None:
        return None
    err = cls.__new__(cls)  # their constructors compose the message; we already have it
    Exception.__init__(err, str(data.get("message", "")))
    return err
