#!/usr/bin/env bash
# The whole check: lint, format, types, then every test (integration tests start real
# dockerd, containerd and skopeo themselves; with CI=true a missing one fails the run).
# Runs the tools of the README's virtualenv (.venv: ruff, mypy, python with pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

# The cgroup hierarchies this kernel has (/proc/self/cgroup), mounted where dockerd looks.
mount_cgroups() {
  if [ "$(grep -c . /proc/self/cgroup)" = 1 ]; then # cgroup v2 only
    mount -t cgroup2 cgroup2 /sys/fs/cgroup
    return
  fi
  mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
  local id controllers dir
  while IFS=: read -r id controllers _; do
    if [ "$id" = 0 ]; then
      mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
    else
      dir=${controllers#name=}
      mkdir -p "/sys/fs/cgroup/$dir"
      case $controllers in
        name=*) mount -t cgroup -o "none,$controllers" cgroup "/sys/fs/cgroup/$dir" ;;
        *) mount -t cgroup -o "$controllers" cgroup "/sys/fs/cgroup/$dir" ;;
      esac
    fi
  done </proc/self/cgroup
}

# In a chroot (a debootstrap, say) /sys/fs/cgroup can be empty, and dockerd does not start
# without cgroups: the tests then run in a mount namespace of their own, cgroups mounted.
if [ -d /sys/fs/cgroup ] && [ -z "$(ls -A /sys/fs/cgroup)" ]; then
  if [ -z "${ARCHIVER_OWN_MOUNTS:-}" ]; then
    echo "scripts/test.sh: no cgroups mounted (a chroot?): testing in a mount namespace with them" >&2
    exec env ARCHIVER_OWN_MOUNTS=1 unshare --mount --propagation private bash "$0" "$@"
  fi
  mount_cgroups
fi

if [ -x .venv/bin/python ]; then
  export PATH="$PWD/.venv/bin:$PATH"
else
  echo "scripts/test.sh: no .venv here (the README's set-up makes it): using the tools on PATH" >&2
fi
ruff check archiver tests samples bench scripts
ruff format --check archiver tests samples bench scripts
mypy
python -m pytest -q -p no:cacheprovider "$@"
