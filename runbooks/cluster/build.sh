#!/usr/bin/env bash
# Build the local control plane (etcd and etcdutl, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok) from the Go module proxy into a cache keyed by every version
# that shapes it. Idempotent: a complete cache dir is reused in a second; one built before etcdutl
# joined the set gets only etcdutl added (same etcd module version: no rebuild of the rest).
# One dir per Kubernetes version (K8S_VERSION, default v1.36.3); a second version hard-links
# etcd, etcdutl and KWOK from a sibling dir with the same etcd/KWOK/Go versions and builds only
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl.
# A lock keeps two builds from colliding.
# Prints the cache dir on stdout; progress and timings go to stderr.
set -euo pipefail
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE_ROOT="${RUNBOOK_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-runbooks/cluster}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
gover="$(go env GOVERSION)"; minor="${gover#go1.}"; minor="${minor%%.*}"
if (( minor < 26 )); then
  echo "[build] Kubernetes ${K8S_VERSION} and KWOK ${KWOK_VERSION} need Go >= 1.26; found ${gover}" >&2
  exit 1
fi
OUT="${CACHE_ROOT}/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_$(go env GOVERSION)"
base=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)
want=("${base[@]}" etcdutl)
have() { local b; for b in "${@:2}"; do [[ -x "$1/bin/$b" ]] || return 1; done; [[ -d "$1/stages" ]]; }
have_all() { have "$1" "${want[@]}"; }
log() { echo "[build] $*" >&2; }
started=$(date +%s)
# A complete dir appears by one rename, so it can be reused without the lock: `cluster up` of one
# version never waits for another version's build. Builds themselves take turns (2 cores).
if have_all "${OUT}"; then log "cached: ${OUT}"; echo "${OUT}"; exit 0; fi
mkdir -p "${CACHE_ROOT}"; exec 9>"${CACHE_ROOT}/.lock"; flock 9
if have_all "${OUT}"; then log "cached: ${OUT} ($(( $(date +%s) - started ))s)"; echo "${OUT}"; exit 0; fi
work="$(mktemp -d)"

# etcdutl (snapshot status/restore for the backup checks) from the etcd release etcd came from.
build_etcdutl() (
  cd "${work}" && mkdir -p etcdutl && cd etcdutl
  go mod init example.invalid/kr/etcdutl >/dev/null 2>&1
  go get -tool "go.etcd.io/etcd/etcdutl/v3@${ETCD_VERSION}"
  go build -ldflags "-s -w" -o "$1" go.etcd.io/etcd/etcdutl/v3
)
timed() { local t0; t0=$(date +%s); "$@"; log "$1 took $(( $(date +%s) - t0 ))s"; }
if have "${OUT}" "${base[@]}"; then
  trap 'rm -rf "${work}" "${OUT}/bin/etcdutl.partial.$$"' EXIT
  log "adding etcdutl ${ETCD_VERSION} to ${OUT}"
  timed build_etcdutl "${OUT}/bin/etcdutl.partial.$$"
  mv "${OUT}/bin/etcdutl.partial.$$" "${OUT}/bin/etcdutl"
  "${OUT}/bin/etcdutl" version | sed -n 1p >&2
  log "done in $(( $(date +%s) - started ))s: ${OUT}"; echo "${OUT}"; exit 0
fi
TMP_OUT="${OUT}.partial.$$"; BIN="${TMP_OUT}/bin"; mkdir -p "${BIN}"
trap 'rm -rf "${work}" "${TMP_OUT}"' EXIT

build_k8s() (
  cd "${work}" && mkdir k8s && cd k8s && go mod init example.invalid/kr/k8s >/dev/null 2>&1
  gomod="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" \
           | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  stage_ver="v0.${K8S_VERSION#v1.}"; edits=()
  while read -r mod; do edits+=("-replace=${mod}=${mod}@${stage_ver}"); done < <(
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "${gomod}")
  log "k8s staging modules replaced: ${#edits[@]}"
  (( ${#edits[@]} >= 25 )) || { log "staging list looks wrong: ${#edits[@]}"; exit 1; }
  go mod edit "${edits[@]}"
  grep -E '^godebug[[:space:]]' "${gomod}" >> go.mod || true
  gets=(); pkgs=()
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    gets+=("k8s.io/kubernetes/cmd/${c}@${K8S_VERSION}"); pkgs+=("k8s.io/kubernetes/cmd/${c}"); done
  go get -tool "${gets[@]}"
  v="${K8S_VERSION#v}"; major="${v%%.*}"; rest="${v#*.}"; minor="${rest%%.*}"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"; ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X '${p}.gitVersion=${K8S_VERSION}' -X '${p}.gitMajor=${major}' -X '${p}.gitMinor=${minor}'"
    ld+=" -X '${p}.gitTreeState=clean' -X '${p}.buildDate=${date}'"; done
  go build -ldflags "${ld}" -o "${BIN}/" "${pkgs[@]}"
)
build_etcd() (
  cd "${work}" && mkdir etcd && cd etcd && go mod init example.invalid/kr/etcd >/dev/null 2>&1
  go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
  go build -ldflags "-s -w" -o "${BIN}/etcd" go.etcd.io/etcd/server/v3
)
build_kwok() (
  GOBIN="${BIN}" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  cp -r "$(go env GOMODCACHE)/sigs.k8s.io/kwok@${KWOK_VERSION}/kustomize/stage" "${TMP_OUT}/stages"
  chmod -R u+w "${TMP_OUT}/stages"
)
# etcd, etcdutl, KWOK and its stages do not depend on the Kubernetes version: a second Kubernetes
# version takes them from a sibling dir with the same etcd/KWOK/Go versions (hard links, so no
# extra disk) and builds only its four Kubernetes binaries.
shared=(etcd etcdutl kwok)
sibling=""
for d in "${CACHE_ROOT}"/k8s-*"_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_${gover}"; do
  [[ "${d}" != "${OUT}" ]] && have "${d}" "${shared[@]}" && { sibling="${d}"; break; }
done
if [[ -n "${sibling}" ]]; then
  log "building Kubernetes ${K8S_VERSION} into ${OUT}; etcd, etcdutl, KWOK shared with ${sibling}"
  for b in "${shared[@]}"; do cp -l "${sibling}/bin/${b}" "${BIN}/${b}" 2>/dev/null || cp "${sibling}/bin/${b}" "${BIN}/${b}"; done
  cp -r "${sibling}/stages" "${TMP_OUT}/stages"
  timed build_k8s
else
  log "building into ${OUT} (first build takes tens of minutes: ~7 Go binaries from source)"
  timed build_kwok; timed build_etcd; timed build_etcdutl "${BIN}/etcdutl"; timed build_k8s
fi
"${BIN}/kube-apiserver" --version >&2; "${BIN}/etcd" --version | sed -n 1p >&2; "${BIN}/kwok" --version >&2 || true
rm -rf "${OUT}"; mv "${TMP_OUT}" "${OUT}"
log "done in $(( $(date +%s) - started ))s: ${OUT}"
echo "${OUT}"
