#!/usr/bin/env bash
# Fetch Apache Kafka's jars (and a log4j2 backend) from Maven Central into var/kafka/lib.
#
#   bash infra/local/fetch-kafka.sh      (what `make jars` / `make test` call)
#
# Idempotent: when var/kafka/lib/.installed is newer than kafka-pom.xml nothing is fetched again.
# Then it runs the broker once (`python -m streamrec_cli.localkafka prepare`) so later starts are fast.
# Needs Java 17+ and Maven on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
POM="$ROOT/infra/local/kafka-pom.xml"
LIB="$ROOT/var/kafka/lib"
STAMP="$LIB/.installed"

if [[ -f "$STAMP" && "$STAMP" -nt "$POM" ]]; then
  echo "kafka jars already in $LIB"
  exit 0
fi
command -v java >/dev/null || { echo "fetch-kafka: java not found (Java 17+ is needed)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "fetch-kafka: mvn not found (Apache Maven is needed)" >&2; exit 1; }

# A changed pom may drop a jar: start from an empty folder so no stale version stays on the class path.
rm -rf "$LIB"
mkdir -p "$LIB"
mvn -B -q -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIB" -DincludeScope=runtime
n=$(find "$LIB" -name 'kafka_2.13-*.jar' | wc -l)
if [[ "$n" -ne 1 ]]; then
  echo "fetch-kafka: expected one kafka_2.13 jar in $LIB, found $n" >&2
  exit 1
fi
touch "$STAMP"
echo "kafka jars in $LIB ($(find "$LIB" -name '*.jar' | wc -l) jars)"

# Run the broker once to make its JVM class archive and a formatted-storage template: every later
# start (each test session, the demo) then takes about half the time. Optional: without the
# project's venv, or if it fails, brokers just start slower.
PY="$ROOT/.venv/bin/python"
if [[ -x "$PY" ]]; then
  (cd "$ROOT" && "$PY" -m streamrec_cli.localkafka prepare) || echo "fetch-kafka: could not prepare the class archive; brokers will start slower" >&2
fi
