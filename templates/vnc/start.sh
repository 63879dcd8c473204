#!/bin/bash
# A desktop for the browser: a virtual X display, a VNC server on it (loopback
# only), a program to look at, and the page with noVNC. The browser's
# WebSocket does not come here: Porthole bridges it to the VNC server's TCP
# port itself (ws_bridge in porthole.yaml), where websockify used to sit.
# Porthole runs this script in a process group of its own and stops the whole
# group, so everything started here with & goes with it.
set -euo pipefail
cd "$(dirname "$0")"

for tool in Xvfb x11vnc xterm node; do
  command -v "$tool" >/dev/null || { echo "start.sh: $tool is missing (Debian/Ubuntu: apt-get install xvfb x11vnc xterm)" >&2; exit 1; }
done
VNC_PORT="${VNC_PORT:?set VNC_PORT, the port of ws_bridge in porthole.yaml}"

# 1. The display. -displayfd makes Xvfb pick a free display number and write it
#    once the server accepts clients: waiting for that line is the readiness
#    check (no sleep), and two desktops on one machine never collide.
ready="$(mktemp -d)"   # a directory of our own for the pipe: no name in /tmp anyone could take first
mkfifo "$ready/display"
Xvfb -displayfd 3 -screen 0 "${SCREEN:-1280x800x24}" -nolisten tcp 3>"$ready/display" &
if ! read -r -t 30 display <"$ready/display"; then
  rm -rf "$ready"
  echo "start.sh: Xvfb did not report a display within 30 s (is another X server in the way? see the lines above)" >&2
  exit 1
fi
rm -rf "$ready"
export DISPLAY=":$display"

# 2. The VNC server. -localhost keeps it on loopback (IPv4 and IPv6; -listen
#    alone would not stop its IPv6 listener): it has no password, and the only
#    way in is the gateway. Porthole counts the app ready once this port and
#    the page's port both accept, so nobody is sent to it before that.
x11vnc -display "$DISPLAY" -rfbport "$VNC_PORT" -localhost -nopw -forever -shared -quiet &

# 3. What the desktop shows: put your own program here (a browser, an editor…).
xterm -geometry 90x28+40+40 -fa Monospace -fs 13 -bg white -fg '#1d2430' -T "$APP_NAME" \
  -e bash -c 'echo "Porthole desktop ${APP_NAME} on display ${DISPLAY}"; exec bash' &

# 4. The page (noVNC from node_modules), in the foreground.
exec node server.js
