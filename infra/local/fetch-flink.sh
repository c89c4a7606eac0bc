#!/usr/bin/env bash
# Install what the Flink job needs, beside the project's own .venv:
#
#   bash infra/local/fetch-flink.sh      (what `make flink` calls)
#
#   var/flink/venv   a virtualenv with apache-flink 2.3.0 (it pins apache-beam<=2.61, so it cannot
#                    share .venv, which pins Beam 2.75) and the streamrec core installed without
#                    its Beam pin (`pip install --no-deps -e .` + the core's runtime dependencies)
#   var/flink/lib    the Kafka connector jar (infra/local/flink-pom.xml, Maven Central)
#
# Idempotent: each part is skipped while its stamp is newer than what it was made from.
# Needs Python 3.11, Java 17+ and Maven on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
FLINK_VERSION="${FLINK_VERSION:-2.3.0}"
VENV="$ROOT/var/flink/venv"
VENV_STAMP="$VENV/.installed"
POM="$ROOT/infra/local/flink-pom.xml"
LIB="$ROOT/var/flink/lib"
LIB_STAMP="$LIB/.installed"
PIP=("$VENV/bin/pip" install --disable-pip-version-check -q)

if [[ -f "$VENV_STAMP" && "$VENV_STAMP" -nt "$ROOT/setup.py" && "$VENV_STAMP" -nt "$ROOT/requirements-core.txt" && "$VENV_STAMP" -nt "$0" ]]; then
  echo "flink virtualenv already in $VENV"
else
  echo "==> creating $VENV with apache-flink==$FLINK_VERSION (first run: a few minutes)"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  "${PIP[@]}" --upgrade pip setuptools wheel
  "${PIP[@]}" "apache-flink==$FLINK_VERSION"
  # The core without the project's apache-beam pin (PyFlink brings its own Beam 2.61), then the
  # core's runtime dependencies (requirements-core.txt, the list setup.py reads too).
  (cd "$ROOT" && "${PIP[@]}" --no-deps -e .)
  "${PIP[@]}" -r "$ROOT/requirements-core.txt"
  # The Aerospike client (C extension) is optional here: the local runs use SQLite.
  "${PIP[@]}" 'aerospike>=15,<20' || echo "fetch-flink: aerospike client not installed (SQLite only)" >&2
  "$VENV/bin/python" -c "import pyflink, numpy, streamrec.recommend.state, streamrec.store.codec, streamrec.store.sqlite, confluent_kafka, fastavro, msgpack, msgspec, zstandard; numpy.bitwise_count"
  touch "$VENV_STAMP"
fi

if [[ -f "$LIB_STAMP" && "$LIB_STAMP" -nt "$POM" ]]; then
  echo "flink connector jars already in $LIB"
  exit 0
fi
command -v java >/dev/null || { echo "fetch-flink: java not found (Java 17+ is needed)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "fetch-flink: mvn not found (Apache Maven is needed)" >&2; exit 1; }
rm -rf "$LIB"
mkdir -p "$LIB"
mvn -B -q -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIB" -DincludeScope=runtime
n=$(find "$LIB" -name 'flink-sql-connector-kafka-*.jar' | wc -l)
if [[ "$n" -ne 1 ]]; then
  echo "fetch-flink: expected one flink-sql-connector-kafka jar in $LIB, found $n" >&2
  exit 1
fi
touch "$LIB_STAMP"
echo "flink connector jars in $LIB ($(find "$LIB" -name '*.jar' | wc -l) jars)"
