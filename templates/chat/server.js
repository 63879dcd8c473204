// A chat app that works behind Porthole: rooms, who is in each room, and the
// last messages of a room for whoever joins. Pages over HTTP on PORT, the
// WebSocket at ws?room=ROOM&name=NAME on PORT (or WS_PORT when registered with one).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { WebSocketServer } from 'ws';

const PORT = Number(process.env.PORT ?? 8080);
const WS_PORT = Number(process.env.WS_PORT ?? PORT);
// Where the gateway mounts the app (/chat/): requests carry it only with strip_prefix: false.
const BASE_PATH = process.env.BASE_PATH ?? '/';
const HISTORY = 50; // messages a newcomer sees
const MAX_TEXT = 2000; // characters per message
const ROOM = /^[a-z0-9][a-z0-9-]{0,31}$/;

function appUrl(url) {
  const u = new URL(url, 'http://app');
  if (BASE_PATH !== '/' && u.pathname.startsWith(BASE_PATH)) u.pathname = u.pathname.slice(BASE_PATH.length - 1);
  return u;
}

const page = await readFile(new URL('./public/index.html', import.meta.url));

function onRequest(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end();
  if (appUrl(req.url).pathname !== '/') return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' }).end(req.method === 'HEAD' ? undefined : page);
}

/** room name → { members: Map<ws, name>, history: message[] }; a room is forgotten when its last member leaves. */
const rooms = new Map();

const send = (ws, msg) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(msg));
const broadcast = (room, msg) => room.members.forEach((_, ws) => send(ws, msg));
const presence = (name, room) => broadcast(room, { type: 'presence', room: name, users: [...room.members.values()].sort() });

/** A name nobody in the room has yet: "ann", then "ann 2", "ann 3"… */
function uniqueName(room, wanted) {
  const taken = new Set(room.members.values());
  let name = wanted;
  for (let i = 2; taken.has(name); i++) name = `${wanted} ${i}`;
  return name;
}

const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 });
wss.on('connection', (ws, req) => {
  const query = appUrl(req.url).searchParams;
  const roomName = (query.get('room') ?? 'lobby').toLowerCase();
  if (!ROOM.test(roomName)) return ws.close(1008, 'room: lowercase letters, digits and dashes, at most 32');
  const wanted = (query.get('name') ?? '').trim().slice(0, 24) || 'guest';
  if (!rooms.has(roomName)) rooms.set(roomName, { members: new Map(), history: [] });
  const room = rooms.get(roomName);
  const name = uniqueName(room, wanted);
  room.members.set(ws, name);
  send(ws, { type: 'welcome', room: roomName, you: name, history: room.history });
  presence(roomName, room);

  ws.on('message', (data, isBinary) => {
    let text = '';
    try {
      text = isBinary ? '' : String(JSON.parse(String(data)).text ?? '');
    } catch {
      return send(ws, { type: 'error', message: 'send JSON: {"text": "…"}' });
    }
    text = text.trim().slice(0, MAX_TEXT);
    if (!text) return;
    const msg = { type: 'message', from: name, text, at: new Date().toISOString() };
    room.history.push(msg);
    if (room.history.length > HISTORY) room.history.shift();
    broadcast(room, msg);
  });
  ws.on('close', () => {
    room.members.delete(ws);
    if (room.members.size === 0) rooms.delete(roomName);
    else presence(roomName, room);
  });
});

function onUpgrade(req, socket, head) {
  if (appUrl(req.url).pathname !== '/ws') return void socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
}

// Loopback only: the gateway is the way in.
const http = createServer(onRequest).listen(PORT, '127.0.0.1');
if (WS_PORT === PORT) http.on('upgrade', onUpgrade);
else createServer((req, res) => res.writeHead(426).end()).on('upgrade', onUpgrade).listen(WS_PORT, '127.0.0.1');
console.log(`chat: pages on 127.0.0.1:${PORT}, WebSocket on 127.0.0.1:${WS_PORT} at ws, mounted at ${BASE_PATH}`);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    for (const ws of wss.clients) ws.close(1001, 'server stopping');
    process.exit(0);
  });
}
