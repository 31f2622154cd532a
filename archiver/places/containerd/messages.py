"""The few protobuf messages of containerd's gRPC API that archiver speaks, declared here.

Our own definitions, not containerd's .proto files: each message lists only the fields we
set or read, with containerd's field numbers and wire types (read in its API). Protobuf
ignores fields a message does not declare, so a reply with more fields (timestamps, say)
parses, and what we send is what a full client would send for the same values. Enums are
declared as int32 (the same varint on the wire); google.protobuf.FieldMask and Empty as
messages of their own with the same fields.

The descriptors are built at import with the protobuf runtime's descriptor API, in a pool
of our own: no protoc step, no generated code tied to one protobuf version, no .proto
files to ship. A service method is only a path (``/containerd.services.X.v1.Svc/Method``)
and the messages' bytes, so the message names here need not match containerd's.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "archiver.containerd"

_SCALARS = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}

# message name -> fields (name, number, type); a type is a scalar, "map" (string to
# string), another message's name, each optionally preceded by "repeated ".
_MESSAGES: dict[str, list[tuple[str, int, str]]] = {
    "Empty": [],
    "FieldMask": [("paths", 1, "repeated string")],
    # containerd.types
    "Descriptor": [
        ("media_type", 1, "string"),
        ("digest", 2, "string"),
        ("size", 3, "int64"),
        ("annotations", 5, "map"),
    ],
    "Mount": [
        ("type", 1, "string"),
        ("source", 2, "string"),
        ("target", 3, "string"),
        ("options", 4, "repeated string"),
    ],
    # version.v1
    "VersionResponse": [("version", 1, "string"), ("revision", 2, "string")],
    # introspection.v1 (init_err is a google.rpc.Status: only whether it is set matters)
    "Plugin": [("type", 1, "string"), ("id", 2, "string"), ("init_err", 7, "Empty")],
    "PluginsRequest": [("filters", 1, "repeated string")],
    "PluginsResponse": [("plugins", 1, "repeated Plugin")],
    # content.v1 (WriteAction: STAT 0, WRITE 1, COMMIT 2)
    "ContentInfo": [("digest", 1, "string"), ("size", 2, "int64"), ("labels", 5, "map")],
    "InfoRequest": [("digest", 1, "string")],
    "InfoResponse": [("info", 1, "ContentInfo")],
    "UpdateContentRequest": [("info", 1, "ContentInfo"), ("update_mask", 2, "FieldMask")],
    "UpdateContentResponse": [("info", 1, "ContentInfo")],
    "ReadContentRequest": [("digest", 1, "string"), ("offset", 2, "int64"), ("size", 3, "int64")],
    "ReadContentResponse": [("offset", 1, "int64"), ("data", 2, "bytes")],
    "WriteContentRequest": [
        ("action", 1, "int32"),
        ("ref", 2, "string"),
        ("total", 3, "int64"),
        ("expected", 4, "string"),
        ("offset", 5, "int64"),
        ("data", 6, "bytes"),
        ("labels", 7, "map"),
    ],
    "WriteContentResponse": [
        ("action", 1, "int32"),
        ("offset", 4, "int64"),
        ("total", 5, "int64"),
        ("digest", 6, "string"),
    ],
    "AbortRequest": [("ref", 1, "string")],
    # images.v1
    "Image": [("name", 1, "string"), ("labels", 2, "map"), ("target", 3, "Descriptor")],
    "ImageRequest": [("image", 1, "Image"), ("update_mask", 2, "FieldMask")],
    "ImageResponse": [("image", 1, "Image")],
    "ListImagesRequest": [("filters", 1, "repeated string")],
    "ListImagesResponse": [("images", 1, "repeated Image")],
    # leases.v1
    "Lease": [("id", 1, "string"), ("labels", 3, "map")],
    "CreateLeaseRequest": [("id", 1, "string"), ("labels", 3, "map")],
    "CreateLeaseResponse": [("lease", 1, "Lease")],
    "DeleteLeaseRequest": [("id", 1, "string"), ("sync", 2, "bool")],
    "LeaseResource": [("id", 1, "string"), ("type", 2, "string")],
    "AddResourceRequest": [("id", 1, "string"), ("resource", 2, "LeaseResource")],
    # snapshots.v1 (Kind: UNKNOWN 0, VIEW 1, ACTIVE 2, COMMITTED 3)
    "PrepareSnapshotRequest": [
        ("snapshotter", 1, "string"),
        ("key", 2, "string"),
        ("parent", 3, "string"),
        ("labels", 4, "map"),
    ],
    "PrepareSnapshotResponse": [("mounts", 1, "repeated Mount")],
    "CommitSnapshotRequest": [
        ("snapshotter", 1, "string"),
        ("name", 2, "string"),
        ("key", 3, "string"),
        ("labels", 4, "map"),
    ],
    "SnapshotKeyRequest": [("snapshotter", 1, "string"), ("key", 2, "string")],
    "SnapshotInfo": [("name", 1, "string"), ("parent", 2, "string"), ("kind", 3, "int32")],
    "StatSnapshotResponse": [("info", 1, "SnapshotInfo")],
    # diff.v1
    "ApplyRequest": [("diff", 1, "Descriptor"), ("mounts", 2, "repeated Mount")],
    "ApplyResponse": [("applied", 1, "Descriptor")],
    # namespaces.v1
    "Namespace": [("name", 1, "string"), ("labels", 2, "map")],
    "GetNamespaceRequest": [("name", 1, "string")],
    "GetNamespaceResponse": [("namespace", 1, "Namespace")],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="archiver/containerd.proto", package=_PACKAGE, syntax="proto3"
    )
    label = descriptor_pb2.FieldDescriptorProto
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for field_name, number, kind in fields:
            repeated = kind.startswith("repeated ")
            kind = kind.removeprefix("repeated ")
            field = message.field.add(name=field_name, number=number)
            many = repeated or kind == "map"
            field.label = label.LABEL_REPEATED if many else label.LABEL_OPTIONAL
            if kind == "map":  # map<string, string>: a repeated nested entry message
                entry_name = "".join(p.capitalize() for p in field_name.split("_")) + "Entry"
                entry = message.nested_type.add(name=entry_name)
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=_SCALARS["string"])
                entry.field.add(name="value", number=2, type=_SCALARS["string"])
                for item in entry.field:
                    item.label = label.LABEL_OPTIONAL
                field.type = label.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{name}.{entry_name}"
            elif kind in _SCALARS:
                field.type = _SCALARS[kind]
            else:
                field.type = label.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{kind}"
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def message(name: str) -> Any:
    """The message class ``name`` (one of the names above)."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
