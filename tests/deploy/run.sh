#!/usr/bin/env bash
# make test-deploy: every file in deploy/ run with real tools from Debian 12.
#   1. a Debian 12 base image made locally (debian-base.sh podman-image; cached);
#   2. the Dockerfile's runtime and proxy targets and the database image (database/Dockerfile)
#      built once with podman (layer cache kept); the binary of the runtime image is also the
#      one the nginx and systemd tests run;
#   3. container_test.py, nginx_test.py, compose_test.py, systemd_test.py, kubernetes_test.py.
# Needs root (podman, systemd-nspawn). ONLY=REGEX runs only the matching tests.
# Prints the time of each step and a closing "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/deploy
export CONTAINERS_CONF
CONTAINERS_CONF=$("$here/debian-base.sh" containers-conf)
work=$(mktemp -d /var/tmp/mailconfd-deploy.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Returns the command's status (also where `set -e` does not apply: `if step ...`).
step() {
  local start=$SECONDS status=0
  echo "== $1" >&2
  shift
  "$@" || status=$?
  echo "   $((SECONDS - start)) s" >&2
  return $status
}

step "base image" "$here/debian-base.sh" podman-image >/dev/null
# The images of the previous run, removed below once the new ones are tagged.
images=(localhost/mailconfd:latest localhost/mailconfd-proxy:latest localhost/mailconfd-database:latest)
previous=$(podman image inspect --format '{{.Id}}' "${images[@]}" 2>/dev/null || true)
step "podman build --target runtime" podman build --quiet -f deploy/container/Dockerfile \
  --target runtime -t localhost/mailconfd:latest . >/dev/null
step "podman build --target proxy" podman build --quiet -f deploy/container/Dockerfile \
  --target proxy -t localhost/mailconfd-proxy:latest . >/dev/null
step "podman build database" podman build --quiet -f deploy/container/database/Dockerfile \
  -t localhost/mailconfd-database:latest . >/dev/null
current=$(podman image inspect --format '{{.Id}}' "${images[@]}")
for image in $previous; do
  grep -q "$image" <<<"$current" || podman rmi "$image" >/dev/null 2>&1 || true
done
id=$(podman create localhost/mailconfd:latest)
podman cp "$id:/usr/bin/mailconfd" "$work/mailconfd"
podman rm "$id" >/dev/null
export MAILCONFD_BINARY=$work/mailconfd

passed=0
failed=0
for test in container nginx compose systemd kubernetes; do
  [[ -n "${ONLY:-}" && ! $test =~ $ONLY ]] && continue
  if step "$test" timeout 900 python3 "$here/${test}_test.py"; then
    passed=$((passed + 1))
  else
    echo "FAILED: $test" >&2
    failed=$((failed + 1))
  fi
done
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
