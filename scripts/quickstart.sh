#!/usr/bin/env bash
# quickstart.sh [--smoke] - a single-node UltraCloud on loopback, state under
# work/quickstart/. Generates its secrets once, starts every daemon in
# SERVICES, waits for /readyz, creates an `admin` user (system-admin) and a
# `demo` project through the public API, starts one-member chainfire and
# flaredb clusters that trust IAM's tokens, and prints a real admin token.
#   (no flag)  keep running until Ctrl-C, then stop the daemons
#   --smoke    stop the daemons after the checks; exit 0 only if all passed
# Environment: UC_QUICKSTART_<SERVICE>_PORT (e.g. UC_QUICKSTART_IAM_PORT),
# UC_QUICKSTART_{CHAINFIRE,FLAREDB}_RAFT_PORT, UC_QUICKSTART_DIR (state),
# UC_QUICKSTART_BIN_DIR (daemons, default build/bin), UC_QUICKSTART_TIMEOUT
# (seconds to wait for readiness, 30).
# Needs only curl, openssl and python3 (for JSON).
set -euo pipefail

smoke=0
case "${1:-}" in
--smoke) smoke=1 ;;
"") ;;
*)
    sed -n '2,13p' "$0"
    exit 2
    ;;
esac

# Run from the repository unless told where the daemons are (the Nix app).
if [ -z "${UC_QUICKSTART_BIN_DIR:-}" ]; then
    cd "$(dirname "$0")/.."
fi
BIN_DIR=${UC_QUICKSTART_BIN_DIR:-build/bin}
PY=${UC_PYTHON:-/usr/bin/python3}
TIMEOUT=${UC_QUICKSTART_TIMEOUT:-30}
umask 077
mkdir -p "${UC_QUICKSTART_DIR:-work/quickstart}"
STATE=$(cd "${UC_QUICKSTART_DIR:-work/quickstart}" && pwd)
SECRETS=$STATE/secrets
LOGDIR=$STATE/logs
TMP=$STATE/tmp
mkdir -p "$SECRETS" "$LOGDIR" "$TMP"
chmod 700 "$STATE" "$SECRETS" "$TMP"

# --- the services ------------------------------------------------------------
# One entry per daemon, in start order. A service needs <svc>_port (its
# default port, DESIGN.md) and <svc>_args (its command line); <svc>_setup, if
# defined, runs once it is ready.
SERVICES=(iam chainfire flaredb)

iam_port=7100
iam_args()
{
    mkdir -p "$STATE/iam"
    ARGS=(--listen 127.0.0.1 --port "$(port_of iam)"
        --store "sqlite:$STATE/iam/iam.db"
        --signing-key-file "$SECRETS/iam-signing-key.pem"
        --bootstrap-token-file "$SECRETS/bootstrap-token"
        --cred-master-key-file "$SECRETS/cred-master-key")
}

# chainfire and flaredb: each a one-member cluster (node 1) that checks
# tokens against IAM's key set. --initial-cluster counts only on an empty
# data dir; later runs reload the member from work/quickstart/<name> (for
# flaredb also its database, flaredb.db).
chainfire_port=7200
chainfire_raft_port=7201
flaredb_port=7300
flaredb_raft_port=7301

# raft_member_args NAME: ARGS for a one-member cluster of the replicated
# service NAME, on its API port and NAME-raft port.
raft_member_args()
{
    local name=$1 raft
    raft=$(port_of "$name-raft")
    [[ $raft =~ ^[0-9]{1,5}$ ]] && [ "$raft" -ge 1 ] && [ "$raft" -le 65535 ] ||
        fail "$name" "raft port '$raft' is not a number from 1 to 65535"
    check_port_free "$name-raft" "$raft"
    mkdir -p "$STATE/$name"
    ARGS=(--node-id 1 --listen 127.0.0.1 --port "$(port_of "$name")"
        --raft-address "127.0.0.1:$raft"
        --data-dir "$STATE/$name"
        --initial-cluster "1=127.0.0.1:$raft" --bootstrap
        --iam-jwks-url "$(url_of iam)/api/v1/keys")
}
chainfire_args() { raft_member_args chainfire; }
flaredb_args() { raft_member_args flaredb; }

# --- helpers -----------------------------------------------------------------
declare -A PID=() STARTED=()
ADMIN_TOKEN=

say() { printf 'quickstart: %s\n' "$*"; }

# fail SERVICE MESSAGE: name the service, show its log's tail if this run
# started it, exit 1 (the EXIT trap stops whatever is running).
fail()
{
    say "$1: $2" >&2
    if [ -n "${STARTED[$1]:-}" ] && [ -s "$LOGDIR/$1.log" ]; then
        echo "--- last 20 lines of $LOGDIR/$1.log ---" >&2
        tail -n 20 "$LOGDIR/$1.log" >&2
    fi
    exit 1
}

port_of()
{
    local var
    var=UC_QUICKSTART_$(echo "$1" | tr 'a-z-' 'A-Z_')_PORT
    local def=${1//-/_}_port
    echo "${!var:-${!def}}"
}

url_of() { echo "http://127.0.0.1:$(port_of "$1")"; }

# Refuse a port something already listens on (SO_REUSEADDR, as the daemons
# use, so only a live listener counts, not old TIME_WAIT connections).
check_port_free()
{
    "$PY" - "$2" <<'EOF' && return 0
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
except OSError:
    sys.exit(1)
EOF
    fail "$1" "port $2 on 127.0.0.1 is taken; set UC_QUICKSTART_$(echo "$1" | tr 'a-z-' 'A-Z_')_PORT to a free one"
}

# secret FILE COMMAND...: create FILE (0600) from COMMAND's output unless it
# exists; an existing secret is kept across runs.
secret()
{
    local f=$1
    shift
    if [ ! -s "$f" ]; then
        "$@" >"$f.tmp" && mv "$f.tmp" "$f"
        say "generated $f"
    fi
    chmod 600 "$f"
}

# json FILE PYEXPR: evaluate PYEXPR with `d` bound to FILE's JSON; prints
# strings raw and anything else as JSON. Exit 1 when the expression fails.
json()
{
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2], {"d": d})
except Exception:
    sys.exit(1)
print(v if isinstance(v, str) else json.dumps(v))
EOF
}

# body KEY=VALUE...: a JSON object of strings, into $TMP/body.
body() { "$PY" -c 'import json, sys; print(json.dumps(dict(a.split("=", 1) for a in sys.argv[1:])))' "$@" >"$TMP/body"; }

# api METHOD URL [TOKEN] [--body]: call the API with the answer in
# $TMP/resp; prints the status. Token and body go through files, not argv.
api()
{
    local args=(-sS -o "$TMP/resp" -w '%{http_code}' --max-time 10 -X "$1"
        -H "X-Request-Id: quickstart-$$")
    if [ -n "${3:-}" ]; then
        printf 'Authorization: Bearer %s\n' "$3" >"$TMP/auth"
        args+=(-H "@$TMP/auth")
    fi
    if [ "${4:-}" = --body ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "@$TMP/body")
    fi
    # On a connection failure curl still writes the status "000".
    curl "${args[@]}" "$2" || true
}

# expect SERVICE WHAT STATUS WANTED...: fail unless STATUS is one of WANTED.
expect()
{
    local svc=$1 what=$2 got=$3 w
    shift 3
    for w in "$@"; do
        [ "$got" = "$w" ] && return 0
    done
    fail "$svc" "$what answered $got: $(head -c 400 "$TMP/resp" 2>/dev/null)"
}

# find_id URL NAME TOKEN: the id of the item called NAME in a paged list.
find_id()
{
    local page="" id st
    while :; do
        st=$(api GET "$1?limit=1000${page:+&page_token=$page}" "$3")
        expect iam "GET $1" "$st" 200
        id=$(json "$TMP/resp" "[i['id'] for i in d['items'] if i['name'] == '$2'][0]") && {
            echo "$id"
            return 0
        }
        page=$(json "$TMP/resp" "d['next_page_token']") || return 1
    done
}

# --- lifecycle ---------------------------------------------------------------
stop_all()
{
    local svc i
    for svc in "${!PID[@]}"; do
        kill -TERM "${PID[$svc]}" 2>/dev/null || true
    done
    for svc in "${!PID[@]}"; do
        for i in $(seq 1 100); do
            kill -0 "${PID[$svc]}" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "${PID[$svc]}" 2>/dev/null; then
            say "$svc did not stop within 10 s of SIGTERM; killing it" >&2
            kill -KILL "${PID[$svc]}" 2>/dev/null || true
        fi
        wait "${PID[$svc]}" 2>/dev/null || true
        unset "PID[$svc]"
    done
    rm -f "$TMP"/*
}
trap stop_all EXIT
# Ctrl-C ends a normal run (exit 0) but fails a smoke run. The daemons,
# started in the background, ignore the terminal's SIGINT: stop_all TERMs them.
trap 'echo; say "stopping"; [ $smoke = 0 ]; exit $?' INT TERM

start()
{
    local svc=$1 bin=$BIN_DIR/$1
    [ -x "$bin" ] || fail "$svc" "$bin not found: build it first (make)"
    local port
    port=$(port_of "$svc")
    [[ $port =~ ^[0-9]{1,5}$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
        fail "$svc" "port '$port' is not a number from 1 to 65535"
    check_port_free "$svc" "$port"
    "${svc//-/_}_args"
    # One log per run; the previous run's stays beside it as <svc>.log.1.
    [ -e "$LOGDIR/$svc.log" ] && mv "$LOGDIR/$svc.log" "$LOGDIR/$svc.log.1"
    echo "--- $(date -u +%FT%TZ) quickstart start: $bin ${ARGS[*]}" >"$LOGDIR/$svc.log"
    "$bin" "${ARGS[@]}" >>"$LOGDIR/$svc.log" 2>&1 &
    PID[$svc]=$!
    STARTED[$svc]=1
}

wait_ready()
{
    local svc=$1 deadline=$((SECONDS + TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "${PID[$svc]}" 2>/dev/null; then
            wait "${PID[$svc]}" && rc=0 || rc=$?
            unset "PID[$svc]"
            fail "$svc" "exited with status $rc before it was ready"
        fi
        curl -sf --max-time 2 -o /dev/null "$(url_of "$svc")/readyz" && return 0
        sleep 0.2
    done
    fail "$svc" "not ready within ${TIMEOUT}s ($(url_of "$svc")/readyz)"
}

# --- IAM: the first admin and project ----------------------------------------
iam_setup()
{
    local url boot pw st uid pid
    url=$(url_of iam)/api/v1
    boot=$(cat "$SECRETS/bootstrap-token")
    pw=$(cat "$STATE/admin-password")

    body name=admin password="$pw" display_name="Quickstart admin"
    st=$(api POST "$url/users" "$boot" --body)
    expect iam "POST /api/v1/users" "$st" 201 409
    if [ "$st" = 201 ]; then
        uid=$(json "$TMP/resp" "d['id']")
    else # exists from an earlier run: make its password the stored one
        uid=$(find_id "$url/users" admin "$boot") || fail iam "user admin exists but is not listed"
        body password="$pw"
        st=$(api PATCH "$url/users/$uid" "$boot" --body)
        expect iam "PATCH /api/v1/users/$uid" "$st" 200
    fi

    body principal_id="$uid" role=system-admin
    st=$(api POST "$url/role-bindings" "$boot" --body)
    expect iam "POST /api/v1/role-bindings" "$st" 201 409

    body name=demo description="Quickstart demo project"
    st=$(api POST "$url/projects" "$boot" --body)
    expect iam "POST /api/v1/projects" "$st" 201 409
    if [ "$st" = 201 ]; then
        pid=$(json "$TMP/resp" "d['id']")
    else
        pid=$(find_id "$url/projects" demo "$boot") || fail iam "project demo exists but is not listed"
    fi
    DEMO_PROJECT=$pid

    body grant_type=password username=admin password="$pw"
    st=$(api POST "$url/tokens" "" --body)
    expect iam "POST /api/v1/tokens" "$st" 201
    ADMIN_TOKEN=$(json "$TMP/resp" "d['token']")
    TOKEN_EXPIRES=$(json "$TMP/resp" "d['expires_at']")
    printf '%s\n' "$ADMIN_TOKEN" >"$STATE/admin-token"
    iam_check "$url"
}

# The token is real: IAM accepts it, says who it is, and publishes its key.
iam_check()
{
    local st
    st=$(api GET "$1/whoami" "$ADMIN_TOKEN")
    expect iam "GET /api/v1/whoami" "$st" 200
    grep -q '"admin"' "$TMP/resp" || fail iam "whoami does not name admin: $(cat "$TMP/resp")"
    st=$(api GET "$1/projects/$DEMO_PROJECT" "$ADMIN_TOKEN")
    expect iam "GET /api/v1/projects/$DEMO_PROJECT" "$st" 200
    st=$(api GET "$1/keys")
    expect iam "GET /api/v1/keys" "$st" 200
    json "$TMP/resp" "d['keys'][0]['kid']" >/dev/null || fail iam "GET /api/v1/keys lists no key"
}

# --- chainfire: a leader, then a put and get round trip -----------------------
# b64url TEXT: TEXT as base64url without padding (chainfire's key encoding).
b64url() { "$PY" -c 'import base64, sys; print(base64.urlsafe_b64encode(sys.argv[1].encode()).decode().rstrip("="))' "$1"; }

chainfire_setup()
{
    local url deadline st key val got
    url=$(url_of chainfire)/api/v1
    # /readyz does not wait for an election: wait until the status names a leader.
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        st=$(api GET "$url/cluster/status" "$ADMIN_TOKEN")
        [ "$st" = 200 ] && json "$TMP/resp" "d['leader']['id']" >/dev/null && break
        [ $SECONDS -lt $deadline ] ||
            fail chainfire "no leader known within ${TIMEOUT}s: GET /api/v1/cluster/status answered $st: $(head -c 400 "$TMP/resp")"
        sleep 0.2
    done
    key=$(b64url quickstart/smoke)
    val=$(b64url "quickstart $$ $(date -u +%FT%TZ)")
    printf '{"value": "%s"}\n' "$val" >"$TMP/body"
    st=$(api PUT "$url/kv/$key" "$ADMIN_TOKEN" --body)
    expect chainfire "PUT /api/v1/kv/$key" "$st" 200
    st=$(api GET "$url/kv/$key" "$ADMIN_TOKEN")
    expect chainfire "GET /api/v1/kv/$key" "$st" 200
    got=$(json "$TMP/resp" "d['kv']['value']") || fail chainfire "GET /api/v1/kv/$key has no kv.value: $(head -c 400 "$TMP/resp")"
    [ "$got" = "$val" ] || fail chainfire "GET /api/v1/kv/$key returned value $got, not the $val just put"
}

# --- flaredb: a leader, then SQL and KV round trips ----------------------------
# sql_bodies NOTE: flaredb request bodies into $TMP/write (create the table if
# missing, insert NOTE) and $TMP/read (select it back).
sql_bodies()
{
    "$PY" - "$1" "$TMP" <<'EOF'
import json, os, sys
note, tmp = sys.argv[1], sys.argv[2]
write = {"statements": [
    {"sql": "CREATE TABLE IF NOT EXISTS quickstart_smoke("
            "id INTEGER PRIMARY KEY, note TEXT NOT NULL)"},
    {"sql": "INSERT INTO quickstart_smoke(note) VALUES (?)", "params": [note]}]}
read = {"statements": [{"sql": "SELECT note FROM quickstart_smoke WHERE note = ?",
                        "params": [note]}]}
json.dump(write, open(os.path.join(tmp, "write"), "w"))
json.dump(read, open(os.path.join(tmp, "read"), "w"))
EOF
}

flaredb_setup()
{
    local url st note got key val deadline
    url=$(url_of flaredb)/api/v1
    # /readyz does not wait for an election: wait until the status names a leader.
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        st=$(api GET "$url/cluster/status" "$ADMIN_TOKEN")
        [ "$st" = 200 ] && json "$TMP/resp" "d['leader']['id']" >/dev/null && break
        [ $SECONDS -lt $deadline ] ||
            fail flaredb "no leader known within ${TIMEOUT}s: GET /api/v1/cluster/status answered $st: $(head -c 400 "$TMP/resp")"
        sleep 0.2
    done
    note="quickstart $$ $(date -u +%FT%TZ)"
    sql_bodies "$note"
    cp "$TMP/write" "$TMP/body"
    st=$(api POST "$url/sql" "$ADMIN_TOKEN" --body)
    expect flaredb "POST /api/v1/sql (create table, insert)" "$st" 200
    cp "$TMP/read" "$TMP/body"
    st=$(api POST "$url/sql" "$ADMIN_TOKEN" --body)
    expect flaredb "POST /api/v1/sql (select)" "$st" 200
    got=$(json "$TMP/resp" "d['results'][0]['rows'][0][0]") ||
        fail flaredb "the row just inserted is not there: $(head -c 400 "$TMP/resp")"
    [ "$got" = "$note" ] || fail flaredb "read back '$got', not the '$note' just inserted"
    key=$(b64url quickstart/smoke)
    val=$(b64url "$note")
    printf '{"value": "%s"}\n' "$val" >"$TMP/body"
    st=$(api PUT "$url/kv/quickstart/$key" "$ADMIN_TOKEN" --body)
    expect flaredb "PUT /api/v1/kv/quickstart/$key" "$st" 200
    st=$(api GET "$url/kv/quickstart/$key" "$ADMIN_TOKEN")
    expect flaredb "GET /api/v1/kv/quickstart/$key" "$st" 200
    got=$(json "$TMP/resp" "d['value']") || fail flaredb "GET /api/v1/kv/quickstart/$key has no value"
    [ "$got" = "$val" ] || fail flaredb "GET /api/v1/kv/quickstart/$key returned $got, not the $val just put"
}

# --- main ----------------------------------------------------------------------
command -v curl >/dev/null || fail quickstart "curl is not installed (make deps)"
command -v openssl >/dev/null || fail quickstart "openssl is not installed (make deps)"
[ -x "$PY" ] || fail quickstart "$PY not found (make deps)"

secret "$SECRETS/iam-signing-key.pem" openssl genpkey -algorithm ed25519
secret "$SECRETS/bootstrap-token" openssl rand -hex 32
secret "$SECRETS/cred-master-key" openssl rand -hex 32
secret "$STATE/admin-password" openssl rand -base64 24

for svc in "${SERVICES[@]}"; do
    start "$svc"
    wait_ready "$svc"
    say "$svc ready on $(url_of "$svc")"
    if declare -F "${svc//-/_}_setup" >/dev/null; then
        "${svc//-/_}_setup"
    fi
    st=$(api GET "$(url_of "$svc")/metrics")
    expect "$svc" "GET /metrics" "$st" 200
done

rel=${STATE#"$PWD"/}
cat <<EOF

UltraCloud quickstart is running (state in $rel/).

  service   endpoint                 log
EOF
for svc in "${SERVICES[@]}"; do
    printf '  %-9s %-24s %s\n' "$svc" "$(url_of "$svc")" "$rel/logs/$svc.log"
done
cat <<EOF

  admin user   admin, password in $rel/admin-password
  demo project $DEMO_PROJECT
  admin token  (system-admin, expires $TOKEN_EXPIRES; also in $rel/admin-token)
$ADMIN_TOKEN

Try it:
  TOKEN=\$(cat $rel/admin-token)
  curl -s -H "Authorization: Bearer \$TOKEN" $(url_of iam)/api/v1/whoami
  curl -s -H "Authorization: Bearer \$TOKEN" $(url_of iam)/api/v1/projects

chainfire (keys and values are base64url without padding: "app/config" is
YXBwL2NvbmZpZw, "v1" is djE):
  curl -s -X PUT -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
    -d '{"value":"djE"}' $(url_of chainfire)/api/v1/kv/YXBwL2NvbmZpZw
  curl -s -H "Authorization: Bearer \$TOKEN" $(url_of chainfire)/api/v1/kv/YXBwL2NvbmZpZw

flaredb (SQL with bound parameters; KV under a namespace, base64url as above):
  curl -s -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
    -d '{"statements":[{"sql":"SELECT id, note FROM quickstart_smoke"}]}' $(url_of flaredb)/api/v1/sql
  curl -s -H "Authorization: Bearer \$TOKEN" $(url_of flaredb)/api/v1/tables

A fresh token:
  curl -s -X POST $(url_of iam)/api/v1/tokens -H 'Content-Type: application/json' \\
    -d "{\"grant_type\":\"password\",\"username\":\"admin\",\"password\":\"\$(cat $rel/admin-password)\"}"
EOF

if [ $smoke = 1 ]; then
    stop_all
    say "smoke check passed: ${SERVICES[*]}"
    exit 0
fi
echo
say "press Ctrl-C to stop"
# Wait for Ctrl-C; a daemon that exits on its own ends the quickstart.
while :; do
    for svc in "${!PID[@]}"; do
        kill -0 "${PID[$svc]}" 2>/dev/null && continue
        wait "${PID[$svc]}" && rc=0 || rc=$?
        unset "PID[$svc]"
        fail "$svc" "exited with status $rc"
    done
    sleep 1
done
