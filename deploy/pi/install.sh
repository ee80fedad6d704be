#!/usr/bin/env bash
# Install the liftwatch agent on a Raspberry Pi (Raspberry Pi OS / Debian 12, arm64) and
# start it for one camera. Run as root from a checkout of the repository:
#
#   sudo deploy/pi/install.sh --models DIR --ca ca.crt --password-file PW CAMERA.yaml
#
#   CAMERA.yaml         the agent config (deploy/pi/camera.yaml; add-camera prints the broker
#                       part); installed as /etc/liftwatch/NAME.yaml, NAME = file name
#   --models DIR        folder with the ONNX weights (models/manifest.yaml lists them)
#   --ca FILE           the site CA certificate (deploy/mosquitto/make-certs), installed
#                       where the config's broker.tls.ca_file says
#   --password-file PW  this camera's broker password (add-camera), installed where the
#                       config's broker.password_file says, readable by the service only
#
# Run it again to upgrade the code or add another camera (each config is one unit instance).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
prefix=/opt/liftwatch
etc=/etc/liftwatch
models="" ca="" password_file=""

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --models) models="$2"; shift 2 ;;
    --ca) ca="$2"; shift 2 ;;
    --password-file) password_file="$2"; shift 2 ;;
    -h|--help) usage ;;
    --*) echo "install.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
config="$1"
name="$(basename "$config" .yaml)"
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
[ -f "$config" ] || { echo "install.sh: no config file $config" >&2; exit 1; }
[[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "install.sh: $name: use letters, digits, _ or -" >&2; exit 1; }

echo "== system packages"
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "install.sh: Python 3.10 or newer is needed" >&2; exit 1; }

echo "== user liftwatch"
if ! id liftwatch >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/liftwatch --no-create-home \
    --shell /usr/sbin/nologin --user-group liftwatch
fi
getent group video >/dev/null && usermod -a -G video liftwatch

echo "== code and virtual environment in $prefix"
install -d -m 0755 "$prefix" "$prefix/src" "$prefix/models" "$prefix/deploy"
# edge/manifest.yaml links to models/manifest.yaml; the installed package carries a copy.
tar -C "$repo" --exclude=.git --exclude=.venv --exclude=out --exclude='*.onnx' \
  -cf - pyproject.toml README.md LICENSE edge models \
  | tar -C "$prefix/src" -xf -
cp "$repo/deploy/README.md" "$prefix/deploy/README.md"
[ -x "$prefix/venv/bin/python" ] || python3 -m venv "$prefix/venv"
"$prefix/venv/bin/pip" install --quiet --upgrade pip
"$prefix/venv/bin/pip" install --quiet "$prefix/src[edge]"

if [ -n "$models" ]; then
  echo "== models from $models"
  install -m 0644 "$models"/*.onnx "$prefix/models/"
fi
LIFTWATCH_MODEL_DIR="$prefix/models" "$prefix/venv/bin/liftwatch-edge" models

echo "== configuration in $etc"
install -d -m 0750 -o root -g liftwatch "$etc"
install -m 0640 -o root -g liftwatch "$config" "$etc/$name.yaml"
# Where the config wants the CA and the password (absolute paths, as in deploy/pi/camera.yaml).
broker_path() {
  "$prefix/venv/bin/python" - "$etc/$name.yaml" "$1" <<'PY'
import sys, yaml
broker = (yaml.safe_load(open(sys.argv[1])) or {}).get("broker") or {}
value = (broker.get("tls") or {}).get("ca_file") if sys.argv[2] == "ca" else broker.get("password_file")
print(value or "")
PY
}
if [ -n "$ca" ]; then
  target="$(broker_path ca)"
  [[ "$target" == /* ]] || { echo "install.sh: set an absolute broker.tls.ca_file in $config" >&2; exit 1; }
  install -D -m 0644 "$ca" "$target"
fi
if [ -n "$password_file" ]; then
  target="$(broker_path password)"
  [[ "$target" == /* ]] || { echo "install.sh: set an absolute broker.password_file in $config" >&2; exit 1; }
  install -D -m 0640 -o root -g liftwatch "$password_file" "$target"
fi
install -d -m 0750 -o liftwatch -g liftwatch /var/lib/liftwatch

echo "== checking $etc/$name.yaml as user liftwatch"
# Loads and validates the config (password file and TLS paths included) without starting.
runuser -u liftwatch -- "$prefix/venv/bin/python" -c \
  'import sys; from edge.config import load_config; c = load_config(sys.argv[1]); print(f"{c.site}/{c.camera} -> {c.broker.host}:{c.broker.port}")' \
  "$etc/$name.yaml"

echo "== systemd unit liftwatch-edge@$name"
install -m 0644 "$repo/deploy/pi/liftwatch-edge@.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable "liftwatch-edge@$name"
systemctl restart "liftwatch-edge@$name"
echo "started; follow it with: journalctl -u liftwatch-edge@$name -f"
