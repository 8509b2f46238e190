# The set-up the side-by-side benchmarks share, sourced by bench/run.sh
# (plain HTTP), bench/tls.sh (TLS termination) and
# bench/syscalls-per-request.sh, so all measure the same thing: the three
# backends the fronts stand before, and HAProxy's and nginx's
# configurations.
#
#   free_port                      a free TCP port on 127.0.0.1
#   wait_port PORT                 until something listens there (10 s, else exit 1)
#   start_backends BIN WORK        three userkey-backend processes on the embedded
#                                  dump (access log off, 1,024 lookup threads) on
#                                  free ports: their pids are added to `pids`,
#                                  their ports set in `backends`; returns once
#                                  they listen (logs: WORK/backend-N.log)
#
# Each configuration function writes one configuration to standard output:
#
#   haproxy_config [--tls CRT_PEM] PORT THREADS FRONT_MAX UPSTREAM_CAP BACKEND_PORT...
#   nginx_config [--tls CERT KEY] WORK PORT THREADS NOFILE FRONT_MAX UPSTREAM_CAP BACKEND_PORT...
#
# PORT: the front's on 127.0.0.1; THREADS: HAProxy nbthread / nginx
# worker_processes; FRONT_MAX: client connections admitted; UPSTREAM_CAP:
# connections per upstream (HAProxy server maxconn, nginx max_conns and its
# keep-alive pool); BACKEND_PORT...: the upstreams, on 127.0.0.1; WORK: the
# folder nginx keeps its pid, error log and temporary files in; NOFILE: nginx
# worker_rlimit_nofile. Both keep connections to the upstreams alive.
#
# --tls terminates TLS with the servers' policy below: HAProxy `bind ... ssl
# crt CRT_PEM` (certificate and key in one file), nginx `listen ... ssl` with
# CERT and KEY.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

start_backends() {
  local bin=$1 work=$2 i p
  backends=()
  for i in 1 2 3; do
    p=$(free_port)
    "$bin/userkey-backend" --listen "127.0.0.1:$p" --name "backend-$i" --dump dump --access-log false --threads 1024 \
      >"$work/backend-$i.log" 2>&1 &
    pids+=($!)
    backends+=("$p")
  done
  for p in "${backends[@]}"; do wait_port "$p"; done
}

# The servers' TLS policy, the same for all three fronts (userkey-lb's
# built-in one: lib/lb/tls_context.cpp).
tls12_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
tls13_suites="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
groups="X25519:prime256v1:secp384r1"

# HAProxy: the same caps (maxconn per server queues the rest), keep-alive reuse.
haproxy_config() {
  local crt=""
  if [ "$1" = --tls ]; then crt=$2; shift 2; fi
  local port=$1 threads=$2 front_max=$3 upstream_cap=$4
  shift 4
  local ssl="" i=0 p
  [ -n "$crt" ] && ssl=" ssl crt $crt alpn http/1.1"
  echo "global"; echo "  maxconn $front_max"; echo "  nbthread $threads"
  if [ -n "$crt" ]; then
    echo "  ssl-default-bind-ciphers $tls12_ciphers"
    echo "  ssl-default-bind-ciphersuites $tls13_suites"
    echo "  ssl-default-bind-curves $groups"
    echo "  ssl-default-bind-options ssl-min-ver TLSv1.2 prefer-client-ciphers"
  fi
  echo "defaults"; echo "  mode http"; echo "  maxconn $front_max"; echo "  timeout connect 1s"; echo "  timeout client 30s"
  echo "  timeout server 30s"; echo "  timeout queue 2s"; echo "  option http-keep-alive"
  echo "frontend fe"; echo "  bind 127.0.0.1:$port$ssl"; echo "  default_backend be"
  echo "backend be"; echo "  balance roundrobin"; echo "  http-reuse always"
  for p in "$@"; do echo "  server b$i 127.0.0.1:$p maxconn $upstream_cap"; i=$((i + 1)); done
}

# nginx: an upstream keep-alive pool of UPSTREAM_CAP connections.
nginx_config() {
  local cert="" key=""
  if [ "$1" = --tls ]; then cert=$2 key=$3; shift 3; fi
  local work=$1 port=$2 threads=$3 nofile=$4 front_max=$5 upstream_cap=$6
  shift 6
  local p
  echo "worker_processes $threads; worker_rlimit_nofile $nofile; pid $work/nginx.pid; error_log $work/nginx-error.log;"
  echo "events { worker_connections $((front_max + 512)); }"  # clients + upstream connections
  echo "http { access_log off;"
  echo "  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;"
  echo "  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;"
  echo "  upstream be {"
  for p in "$@"; do echo "    server 127.0.0.1:$p max_conns=$upstream_cap;"; done
  echo "    keepalive $upstream_cap; }"
  if [ -n "$cert" ]; then
    echo "  server { listen 127.0.0.1:$port ssl;"
    echo "    ssl_certificate $cert; ssl_certificate_key $key;"
    echo "    ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers $tls12_ciphers; ssl_prefer_server_ciphers off;"
    echo "    ssl_conf_command Ciphersuites $tls13_suites; ssl_ecdh_curve $groups;"
  else
    echo "  server { listen 127.0.0.1:$port;"
  fi
  echo "    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }"
}
