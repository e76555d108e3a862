#!/usr/bin/env bash
# Debian packages the project needs beyond Python/Java/Maven: PostgreSQL, MariaDB, Maven,
# Chromium and CJK fonts. Installs only what is missing
# (apt-get update runs only then), so re-running is fast. Needs root (or sudo).
set -euo pipefail
need=()
command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mvn >/dev/null 2>&1 || need+=(maven)
# headless browser for screenshots, brief PDFs and dashboard tests; CJK fonts for charts and PDFs
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# (no grep -q: with pipefail, fc-list would die of SIGPIPE and the check would always fail)
fc-list 2>/dev/null | grep -i "Noto Sans CJK" >/dev/null || need+=(fonts-noto-cjk)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# package scripts may start a system server; the project runs its own on other ports
for svc in mariadb postgresql; do $SUDO service "$svc" stop >/dev/null 2>&1 || true; done
