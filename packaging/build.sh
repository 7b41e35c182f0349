#!/usr/bin/env bash
# Build the Linux artefacts in one command:
#   dist/pyinstaller/dalal-terminal/           the one-folder PyInstaller bundle
#   dist/dalal-terminal-VERSION-linux-x86_64.tar.gz
#   dist/dalal-terminal_VERSION_amd64.deb      installs under /opt/dalal-terminal
# then print the bundle size and the cold start to first painted tick beside their targets.
#
# Usage: packaging/build.sh [--reuse-bundle]
#   --reuse-bundle   skip PyInstaller when dist/pyinstaller/dalal-terminal already exists
# Environment: PYTHON (default .venv/bin/python), DEB_COMPRESS (zstd|xz, default zstd),
#   DALAL_BUNDLE_KITE=0 / DALAL_BUNDLE_UPSTOX=0 to leave the kiteconnect / upstox-python-sdk SDK
#   out (see packaging/pyinstaller/dalal.spec).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
PYINSTALLER_VERSION="6.22.3"
DEB_COMPRESS="${DEB_COMPRESS:-zstd}"
REUSE=0
[[ "${1:-}" == "--reuse-bundle" ]] && REUSE=1

APP="dalal-terminal"
PREFIX="/opt/$APP"
DIST="$ROOT/dist"
WORK="$ROOT/build/packaging"
BUNDLE="$DIST/pyinstaller/$APP"
VERSION="$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
SIZE_TARGET_MB=250
COLD_TARGET_S=2.5

log() { printf '==> %s\n' "$*"; }

# 1. PyInstaller, pinned, into the venv if missing (not a runtime dependency of the app).
if ! "$PYTHON" -m PyInstaller --version 2>/dev/null | grep -qx "$PYINSTALLER_VERSION"; then
    log "installing pyinstaller==$PYINSTALLER_VERSION"
    "$PYTHON" -m pip install --quiet "pyinstaller==$PYINSTALLER_VERSION"
fi

# 2. The bundle. nice: the machine is shared, the build is not urgent.
if [[ $REUSE -eq 1 && -x "$BUNDLE/dalal" ]]; then
    log "reusing $BUNDLE"
else
    log "PyInstaller $APP $VERSION"
    nice -n 10 "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
        --distpath "$DIST/pyinstaller" --workpath "$WORK/pyinstaller" \
        packaging/pyinstaller/dalal.spec
fi
[[ -x "$BUNDLE/dalal" ]] || { echo "no executable at $BUNDLE/dalal" >&2; exit 1; }

# 3. Plain tarball: unpack anywhere and run ./dalal-terminal-VERSION/dalal.
TARBALL="$DIST/$APP-$VERSION-linux-$(uname -m).tar.gz"
log "tarball $TARBALL"
tar -C "$DIST/pyinstaller" --owner=0 --group=0 --numeric-owner \
    --transform "s,^$APP,$APP-$VERSION," -czf "$TARBALL" "$APP"

# 4. The .deb: bundle under /opt, /usr/bin/dalal, desktop entry, icons, systemd unit.
DEBROOT="$WORK/debroot"
rm -rf "$DEBROOT"
mkdir -p "$DEBROOT/DEBIAN" "$DEBROOT$PREFIX" "$DEBROOT/usr/bin" \
    "$DEBROOT/usr/share/applications" "$DEBROOT/usr/share/icons/hicolor/scalable/apps"
cp -a "$BUNDLE/." "$DEBROOT$PREFIX/"
ln -s "$PREFIX/dalal" "$DEBROOT/usr/bin/dalal"
install -m 0644 packaging/linux/dalal-terminal.desktop "$DEBROOT/usr/share/applications/"
install -m 0644 resources/icons/dalal.svg \
    "$DEBROOT/usr/share/icons/hicolor/scalable/apps/$APP.svg"
for size in 16 32 48 64 128 256; do
    src="resources/icons/dalal-$size.png"
    [[ $size -eq 256 ]] && src="resources/icons/dalal.png"
    install -D -m 0644 "$src" "$DEBROOT/usr/share/icons/hicolor/${size}x${size}/apps/$APP.png"
done
UNIT="packaging/systemd/dalal-headless.service"
if [[ -f "$UNIT" ]]; then
    # The unit may name another install's executable (a venv); in the .deb it is /usr/bin/dalal.
    install -d "$DEBROOT/lib/systemd/system"
    sed -E 's|^ExecStart=[^ ]*/dalal( \|$)|ExecStart=/usr/bin/dalal\1|' "$UNIT" \
        > "$DEBROOT/lib/systemd/system/dalal-headless.service"
    chmod 0644 "$DEBROOT/lib/systemd/system/dalal-headless.service"
else
    log "note: $UNIT not found, the .deb ships without the systemd unit"
fi
install -m 0755 packaging/linux/postinst packaging/linux/postrm "$DEBROOT/DEBIAN/"
INSTALLED_KB="$(du -sk --exclude=DEBIAN "$DEBROOT" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_SIZE@/$INSTALLED_KB/" \
    packaging/linux/control.in > "$DEBROOT/DEBIAN/control"
DEB="$DIST/${APP}_${VERSION}_${ARCH}.deb"
log "deb $DEB ($DEB_COMPRESS)"
FAKEROOT=()
command -v fakeroot >/dev/null && FAKEROOT=(fakeroot)
nice -n 10 "${FAKEROOT[@]}" dpkg-deb --root-owner-group -Z"$DEB_COMPRESS" --build "$DEBROOT" "$DEB" >/dev/null

# 5. Figures: the bundle's own size, then a cold start to the first painted tick (offscreen).
mb() { echo $(( ($(du -sb "$1" | cut -f1) + 500000) / 1000000 )); }  # MB = 10**6 bytes
BUNDLE_MB="$(mb "$BUNDLE")"
"$BUNDLE/dalal" --version
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
# Wall time from exec to the "first-paint" line: bootloader, interpreter, imports, first tick.
cat > "$SCRATCH/cold_start.py" <<'PY'
import subprocess, sys, threading, time
t0 = time.perf_counter()
p = subprocess.Popen([sys.argv[1]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
watchdog = threading.Timer(60, p.kill)  # a start that never paints must not hang the build
watchdog.daemon = True
watchdog.start()
for line in p.stdout:
    if line.startswith("first-paint "):
        print(f"{time.perf_counter() - t0:.2f}")
        break
p.wait(timeout=60)
PY
COLD="$(cd "$SCRATCH" && HOME="$SCRATCH" XDG_CONFIG_HOME="$SCRATCH/config" \
    XDG_DATA_HOME="$SCRATCH/data" XDG_CACHE_HOME="$SCRATCH/cache" QT_QPA_PLATFORM=offscreen \
    DALAL_EXIT_AFTER_FIRST_PAINT=1 DALAL_EPHEMERAL=1 "$PYTHON" "$SCRATCH/cold_start.py" "$BUNDLE/dalal" || true)"
printf '\n%-40s %10s   %s\n' "figure" "measured" "target"
printf '%-40s %7s MB   < %s MB\n' "bundle size (unpacked)" "$BUNDLE_MB" "$SIZE_TARGET_MB"
printf '%-40s %7s MB\n' "tarball" "$(mb "$TARBALL")"
printf '%-40s %7s MB\n' ".deb" "$(mb "$DEB")"
printf '%-40s %8s s   < %s s\n' "cold start to first painted tick" "${COLD:-FAILED}" "$COLD_TARGET_S"
[[ -n "$COLD" ]] || { echo "the bundled desktop did not paint a tick" >&2; exit 1; }
