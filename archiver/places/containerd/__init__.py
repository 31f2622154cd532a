"""containerd as a place, over its own gRPC API (not by running ``ctr``).

messages.py   our declarations of the few API messages used (no generated code)
client.py     the connection: socket, namespace and lease headers, errors as one line
content.py    the content store: Info (is a blob there?), Write (digest checked), Read
leases.py     the lease a load holds what it writes under, released at the end
unpack.py     layers applied into a snapshotter (Prepare, Diff.Apply, Commit)
images.py     image records with full names; the labels that keep their blobs
sink.py       ContainerdSink: load (send what the store lacks, unpack, name)
source.py     ContainerdSource: the namespace's images and blobs

This module itself imports nothing: the CLI reads the defaults here without loading grpc.
"""

DEFAULT_SOCKET = "/run/containerd/containerd.sock"
DEFAULT_NAMESPACE = "k8s.io"
"""As kubelet uses: the images a Kubernetes node runs."""
