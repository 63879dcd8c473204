/**
 * A text/event-stream parser, fed with decoded text chunks as they arrive
 * (EventSource cannot send the CSRF header, so streams are read with fetch).
 * Follows the WHATWG "event stream interpretation" rules that matter here:
 * lines end in CRLF, LF or CR; `:` starts a comment; `data:` lines of one
 * message are joined with "\n"; a blank line dispatches the message.
 * https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */

/**
 * @typedef {{ event: string, data: string }} SseMessage
 */

export class SseParser {
  /** @param {(msg: SseMessage) => void} onMessage */
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.buffer = '';
    this.event = '';
    /** @type {string[]} */
    this.data = [];
    this.afterCr = false;
  }

  /** @param {string} chunk */
  push(chunk) {
    if (!chunk) return;
    // A CR that ended the last chunk may be the first half of a CRLF: its LF is not a second line end.
    if (this.afterCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.afterCr = false;
    this.buffer += chunk;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buffer.slice(start, i));
      if (c === 13) {
        if (i === this.buffer.length - 1) this.afterCr = true;
        else if (this.buffer.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** @param {string} line */
  line(line) {
    if (line === '') {
      if (this.data.length) this.onMessage({ event: this.event || 'message', data: this.data.join('\n') });
      this.event = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }
}
