"""A connection to containerd's gRPC API: one socket, one namespace, an optional lease.

Every call carries the namespace (and, while one is held, the lease) in containerd's
metadata headers; a failed call becomes one line of the project's error tree, naming the
socket and what was asked.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from typing import Any

import grpc

from archiver.errors import ArchiverError, Conflict, InputError, NotFound, PeerError
from archiver.places.containerd import DEFAULT_NAMESPACE, DEFAULT_SOCKET
from archiver.places.containerd.messages import message

_IDENTIFIER = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
_MAX_IDENTIFIER = 76
_CONNECT_SECONDS = 5.0
_MAX_MESSAGE = 64 * 1024 * 1024


def check_namespace(namespace: str) -> str:
    """``namespace`` if containerd takes it as a name (letters and digits, joined by single
    '.', '_' or '-', at most 76 characters); InputError otherwise."""
    if not _IDENTIFIER.fullmatch(namespace) or len(namespace) > _MAX_IDENTIFIER:
        raise InputError(
            f"containerd namespace {namespace!r} is invalid: letters and digits joined by "
            f"single '.', '_' or '-', at most {_MAX_IDENTIFIER} characters"
        )
    return namespace


class Method:
    """One RPC of the API: its path and reply type, called on the client's channel."""

    def __init__(self, client: ContainerdClient, path: str, reply: str, kind: str) -> None:
        serialize = _serialize
        parse = message(reply).FromString
        channel = client.channel
        self._client = client
        self._path = path
        self._callable: Any
        if kind == "unary":
            self._callable = channel.unary_unary(path, serialize, parse)
        elif kind == "stream":
            self._callable = channel.unary_stream(path, serialize, parse)
        else:
            self._callable = channel.stream_stream(path, serialize, parse)

    def __call__(self, request: Any, what: str, *, lease: bool = True) -> Any:
        try:
            return self._callable(request, metadata=self._client.metadata(lease))
        except grpc.RpcError as exc:
            raise self._client.error(exc, what) from None

    def stream(self, request: Any, *, lease: bool = True) -> Any:
        """The call as it starts (a stream's replies, or a bidirectional call): errors
        come as grpc.RpcError while it is read; ``client.error`` turns them into ours."""
        return self._callable(request, metadata=self._client.metadata(lease))


def _serialize(request: Any) -> bytes:
    data: bytes = request.SerializeToString()
    return data


class ContainerdClient:
    """containerd at ``address`` (a unix socket path), in ``namespace``."""

    def __init__(self, address: str = DEFAULT_SOCKET, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.address = address
        self.namespace = check_namespace(namespace)
        self.origin = f"containerd {address} ({namespace})"
        self.lease: str | None = None
        try:
            mode = os.stat(address).st_mode
        except OSError as exc:
            raise NotFound(f"containerd socket {address}: {exc.strerror}") from None
        if not stat.S_ISSOCK(mode):
            raise InputError(f"containerd socket {address}: not a socket")
        self.channel = grpc.insecure_channel(
            f"unix://{os.path.abspath(address)}",
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ],
        )
        self._methods: dict[str, Method] = {}
        self.version = self._version()

    def _version(self) -> str:
        call = self.channel.unary_unary(
            "/containerd.services.version.v1.Version/Version",
            _serialize,
            message("VersionResponse").FromString,
        )
        try:
            reply = call(message("Empty")(), timeout=_CONNECT_SECONDS)
        except grpc.RpcError as exc:
            self.channel.close()
            detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise PeerError(
                f"containerd socket {self.address}: not a containerd API "
                f"({_code_name(exc)}: {_first_line(detail)})"
            ) from None
        return str(reply.version)

    def method(self, service: str, name: str, reply: str, kind: str = "unary") -> Method:
        """``/containerd.services.SERVICE/NAME`` (SERVICE as ``content.v1.Content``)."""
        path = f"/containerd.services.{service}/{name}"
        found = self._methods.get(path)
        if found is None:
            found = self._methods[path] = Method(self, path, reply, kind)
        return found

    def metadata(self, lease: bool = True) -> list[tuple[str, str]]:
        headers = [("containerd-namespace", self.namespace)]
        if lease and self.lease is not None:
            headers.append(("containerd-lease", self.lease))
        return headers

    def error(self, exc: grpc.RpcError, what: str) -> ArchiverError:
        """A failed call as one line: the socket, what was asked, containerd's answer."""
        code = exc.code() if isinstance(exc, grpc.Call) else None
        detail = _first_line(exc.details() if isinstance(exc, grpc.Call) else str(exc))
        text = f"{self.origin}: {what}: {detail}"
        if code == grpc.StatusCode.NOT_FOUND:
            return NotFound(text)
        if code == grpc.StatusCode.ALREADY_EXISTS:
            return Conflict(text)
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            return InputError(text)
        return PeerError(text)

    def plugins(self, kind: str) -> Iterator[tuple[str, bool]]:
        """The plugins of ``kind`` (``io.containerd.snapshotter.v1``): id, loaded."""
        reply = self.method("introspection.v1.Introspection", "Plugins", "PluginsResponse")(
            message("PluginsRequest")(filters=[f"type=={kind}"]), "list plugins"
        )
        for plugin in reply.plugins:
            yield plugin.id, not plugin.HasField("init_err")

    def close(self) -> None:
        self.channel.close()


def code_of(exc: grpc.RpcError) -> grpc.StatusCode | None:
    return exc.code() if isinstance(exc, grpc.Call) else None


def _code_name(exc: grpc.RpcError) -> str:
    code = code_of(exc)
    return code.name if code is not None else "error"


def _first_line(text: str | None) -> str:
    return (text or "no detail").strip().splitlines()[0] if (text or "").strip() else "no detail"
