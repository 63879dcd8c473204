// The bridge workload's TCP service (a VNC-like screen stream): writes bytes
// to every connection as fast as it reads them. argv: port.
import net from 'node:net';

const chunk = Buffer.alloc(256 * 1024, 0x33);
const server = net.createServer((s) => {
  s.setNoDelay(true);
  s.on('error', () => {});
  const pump = () => {
    while (s.writable && s.write(chunk));
  };
  s.on('drain', pump);
  pump();
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(server.address().port));
