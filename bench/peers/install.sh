#!/usr/bin/env bash
# Virtualenvs for the pipeline peers of `make bench-pipeline` (issue 18), beside the project's .venv:
#
#   bash bench/peers/install.sh          (what `make bench-peers` calls)
#
#   var/peers/quix/venv    quixstreams (pins its own confluent-kafka range, RocksDB state)
#   var/peers/faust/venv   faust-streaming (aiokafka, its own asyncio worker)
#
# Each gets the streamrec core installed without its Beam pin (`pip install --no-deps -e .`) plus
# the core's runtime dependencies the peer does not bring, so the peers run the same
# streamrec.recommend rules and the same SQLite store code as the Beam job. A peer that does not
# install leaves its reason in var/peers/<peer>/install-failed (the bench reports it and goes on).
# Idempotent: a venv is rebuilt only when setup.py, requirements-core.txt or this script is newer
# than its stamp.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
QUIX_SPEC="${QUIX_SPEC:-quixstreams>=3.10,<4}"
FAUST_SPEC="${FAUST_SPEC:-faust-streaming>=0.11,<0.12}"

install_peer() {  # name, pip spec, import check
  local name="$1" spec="$2" check="$3"
  local dir="$ROOT/var/peers/$name" venv="$ROOT/var/peers/$name/venv"
  local stamp="$venv/.installed" log="$ROOT/var/peers/$name/install.log"
  local pip=("$venv/bin/pip" install --disable-pip-version-check -q)
  if [[ -f "$stamp" && "$stamp" -nt "$ROOT/setup.py" && "$stamp" -nt "$ROOT/requirements-core.txt" && "$stamp" -nt "$0" ]]; then
    echo "$name virtualenv already in $venv"
    return 0
  fi
  echo "==> creating $venv with $spec (first run: a minute or two)"
  mkdir -p "$dir"
  rm -f "$dir/install-failed"
  {
    [[ -x "$venv/bin/python" ]] || "$PYTHON" -m venv "$venv"
    "${pip[@]}" --upgrade pip setuptools wheel &&
    "${pip[@]}" "$spec" &&
    (cd "$ROOT" && "${pip[@]}" --no-deps -e .) &&
    # The core's runtime dependencies, the one list setup.py reads too (not Beam, not the
    # Aerospike client: the peers write SQLite).
    "${pip[@]}" -r "$ROOT/requirements-core.txt" &&
    "$venv/bin/python" -c "$check"
  } >"$log" 2>&1
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "bench/peers/install.sh: $name did not install (see $log)" >&2
    tail -n 15 "$log" >"$dir/install-failed"
    return 0
  fi
  "$venv/bin/pip" freeze --disable-pip-version-check >"$dir/freeze.txt" 2>/dev/null
  touch "$stamp"
}

install_peer quix "$QUIX_SPEC" "import quixstreams, streamrec.recommend.state, streamrec.store.sqlite, confluent_kafka"
install_peer faust "$FAUST_SPEC" "import faust, streamrec.recommend.state, streamrec.store.sqlite, confluent_kafka"
